"""The hosts of a many-host deployment, as `provision env --role` writes them. Torch-free.

- single (the default): API + workers + a SQLite job store on this host; `.env` as before.
- head: API + workers (if it has cards) + the PostgreSQL job store (compose profile `head`).
  `I2V_DATABASE_URL` points at the `postgres` service; a password is made once and kept.
- worker: workers only (compose profile `worker-<device>`: `i2v workers`, no API), against the head's
  store (`--database-url`, the head's URL with the head's address for `postgres`).

Every host of one deployment mounts the same folder at /outputs (`I2V_SHARED_OUTPUTS`: an NFS or CPFS
mount, at the same host path everywhere): uploads are written there by the API replicas, videos by the
workers, and any replica serves any video. Object storage (S3, OSS) is not supported.
"""

from __future__ import annotations

import secrets
import socket
from typing import Literal

from i2v.request import InvalidRequestError
from provision.envfile import Entry

Role = Literal["single", "head", "worker"]
ROLES: tuple[str, ...] = ("single", "head", "worker")
LOCAL_OUTPUTS = "outputs"  # compose.yaml's named volume: one host only


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgresql+"))


def entries(
    role: str,
    profile: str,
    existing: dict[str, str],
    *,
    database_url: str | None,
    shared_outputs: str | None,
    node_name: str | None,
) -> tuple[list[Entry], list[str]]:
    """The entries `role` adds to (or replaces in) the single-host `.env`, and notes for the user."""
    if role not in ROLES:
        raise InvalidRequestError("role", role, f"one of {', '.join(ROLES)}")
    if role == "single":
        return [], []
    if database_url is not None and not _is_postgres(database_url):
        raise InvalidRequestError(
            "database-url", database_url, "hosts share the job store on PostgreSQL: postgresql+psycopg://..."
        )
    outputs = shared_outputs or existing.get("I2V_SHARED_OUTPUTS") or LOCAL_OUTPUTS
    name = node_name or existing.get("I2V_NODE_NAME") or socket.gethostname()
    common = [
        Entry(
            "I2V_NODE_NAME", name, "this host's name in the job store's worker rows", choice=node_name is None
        ),
        Entry(
            "I2V_SHARED_OUTPUTS",
            outputs,
            "host folder every host of the deployment mounts at /outputs (NFS/CPFS, same path everywhere); "
            f"'{LOCAL_OUTPUTS}': this host's own compose volume (one host only)",
            choice=shared_outputs is None,
        ),
    ]
    known = existing.get("I2V_DATABASE_URL", "")
    if role == "head":
        password = existing.get("I2V_POSTGRES_PASSWORD") or secrets.token_urlsafe(24)
        url = database_url or (
            known if _is_postgres(known) else f"postgresql+psycopg://i2v:{password}@postgres:5432/i2v"
        )
        notes = [
            "worker hosts: provision env --role worker --database-url "
            f"{url.replace('@postgres:', f'@{name}:')} --shared-outputs <the folder mounted here as {outputs}>"
        ]
        if outputs == LOCAL_OUTPUTS:
            notes.append(
                "I2V_SHARED_OUTPUTS is this host's compose volume: worker hosts need a shared folder"
            )
        return [
            Entry(
                "COMPOSE_PROFILES",
                f"{profile},head",
                "compose profiles: this host's device + head (PostgreSQL)",
            ),
            Entry(
                "I2V_POSTGRES_PASSWORD",
                password,
                "password of the job store's `i2v` role (made once)",
                choice=True,
            ),
            Entry("I2V_DATABASE_URL", url, "the job store every host shares", choice=database_url is None),
            *common,
        ], notes
    url = database_url or (known if _is_postgres(known) else "")
    if not url:
        raise InvalidRequestError(
            "database-url",
            None,
            "a worker host needs the head's job store: the head's I2V_DATABASE_URL with its address for `postgres`",
        )
    if outputs == LOCAL_OUTPUTS:
        raise InvalidRequestError(
            "shared-outputs",
            None,
            "a worker host writes the videos the head serves: the shared folder (NFS/CPFS mount) the head uses",
        )
    return [
        Entry("COMPOSE_PROFILES", f"worker-{profile}", "compose profile: workers only, no API"),
        Entry("I2V_DATABASE_URL", url, "the head's job store", choice=database_url is None),
        *common,
    ], []


def merge(base: list[Entry], extra: list[Entry]) -> list[Entry]:
    """`base` with `extra`'s keys replaced in place and its new keys appended."""
    by_key = {e.key: e for e in extra}
    merged = [by_key.pop(e.key, e) for e in base]
    return merged + list(by_key.values())
