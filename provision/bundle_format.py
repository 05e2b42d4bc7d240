"""The air-gapped bundle: one uncompressed tar that carries a deployment to a host with no network.

Stdlib only (the loader runs before anything else is installed). Members, in this order:

    i2v-bundle.json       what it holds: format, image reference and id, platform, model id, when made
    SHA256SUMS            `<sha256>  <member>` for every other member (sha256sum -c reads it too)
    image.tar             `docker save` of the image
    compose.yaml          the compose file of the checkout that made it
    models/<model>/...    the model folder with its i2v-manifest.json

The two small members come first so a loader can refuse a bundle for another platform before it reads
the image.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

FORMAT = 1
META = "i2v-bundle.json"
SUMS = "SHA256SUMS"
IMAGE = "image.tar"
COMPOSE = "compose.yaml"
MODELS = "models"
CHUNK = 1 << 20


class BundleError(Exception):
    """A bundle that cannot be written or must not be loaded; the message names the file."""

    exit_code = 6  # the CLI's exit status (i2v.output.handle_errors honours it)


@dataclass(frozen=True)
class BundleMeta:
    format: int
    image: str  # the reference compose runs (I2V_IMAGE)
    image_id: str  # `docker image inspect` Id, checked after `docker load`
    platform: str  # linux/amd64 | linux/arm64
    model: str  # catalogue id; its folder is models/<model>/
    created: str  # UTC, ISO 8601

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> BundleMeta:
        try:
            data = json.loads(text)
            meta = cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{where}: {META} is not an i2v bundle description ({exc})") from exc
        if meta.format != FORMAT:
            raise BundleError(
                f"{where}: {META} has format {meta.format!r}; this checkout reads format {FORMAT}"
            )
        return meta


def host_platform() -> str:
    """linux/<arch> of this machine, as Docker names it."""
    machine = platform.machine().lower()
    return "linux/" + {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def render_sums(sums: dict[str, str]) -> str:
    return "".join(f"{digest}  {name}\n" for name, digest in sums.items())


def parse_sums(text: str, where: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not name:
            raise BundleError(f"{where}: {SUMS} line {number} is not `<sha256>  <file>`: {line!r}")
        sums[name] = digest
    return sums


def safe_member(name: str, where: str) -> str:
    """A member path that stays inside the folder it is extracted to."""
    parts = Path(name).parts
    if not name or os.path.isabs(name) or ".." in parts or name.startswith("./"):
        raise BundleError(f"{where}: member {name!r} would be written outside the bundle's folder; refused")
    return name
