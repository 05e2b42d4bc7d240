"""Write `.env` atomically (temp file + rename, mode 0600), keeping what the user added.

Managed keys come in two kinds: *facts* about the host (profile, image, devices) are recomputed
on every run; *choices* (model, preset, port, mirrors, ...) keep the value already in the file
unless the caller passes a new one. Unmanaged lines and comments stay where they are, so a rerun
on the same host gives a byte-identical file.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

HEADER = (
    "# i2v-deploy settings, written by `provision env`. Read by docker compose (env_file) and by\n"
    "# `i2v serve` bare-metal. Edit freely: a rerun keeps your lines and your choices.\n"
)

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


@dataclass(frozen=True)
class Entry:
    key: str
    value: str
    comment: str
    choice: bool = False  # True: a value already in the file wins over the computed one


class EnvWriteError(OSError):
    """The .env (or compose.override.yaml) could not be written; nothing was half-written."""

    exit_code = 3


def quote(value: str) -> str:
    if value == "" or re.fullmatch(r"[A-Za-z0-9_./:,@+\-=]*", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        inner = raw[1:-1]
        return inner.replace('\\"', '"').replace("\\\\", "\\") if raw[0] == '"' else inner
    return raw.split(" #", 1)[0].strip()


def parse(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and not line.lstrip().startswith("#"):
            values[m.group(1)] = unquote(m.group(2))
    return values


def render(entries: list[Entry], existing: str | None) -> str:
    """The new file text: existing lines kept in place, managed values updated, new keys appended."""
    if existing is None:
        blocks = [HEADER]
        for e in entries:
            blocks.append(f"\n# {e.comment}\n{e.key}={quote(e.value)}\n")
        return "".join(blocks)
    current = parse(existing)
    by_key = {e.key: e for e in entries}
    out: list[str] = []
    seen: set[str] = set()
    for line in existing.splitlines(keepends=True):
        m = _LINE.match(line)
        if m and not line.lstrip().startswith("#") and m.group(1) in by_key and m.group(1) not in seen:
            e = by_key[m.group(1)]
            seen.add(e.key)
            value = current[e.key] if e.choice else e.value
            out.append(f"{e.key}={quote(value)}\n")
        else:
            out.append(line)
    text = "".join(out)
    missing = [e for e in entries if e.key not in seen]
    if missing:
        if text and not text.endswith("\n"):
            text += "\n"
        for e in missing:
            text += f"\n# {e.comment}\n{e.key}={quote(e.value)}\n"
    return text


def existing_values(path: Path) -> dict[str, str]:
    try:
        return parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def write_atomic(path: Path, text: str, mode: int = 0o600) -> bool:
    """Write `text` to `path` through a temp file in the same folder; returns False if unchanged."""
    path = Path(path)
    if path.is_dir():
        raise EnvWriteError(f"{path} is a directory; pass a file path with --output; nothing was written")
    try:
        if path.read_text(encoding="utf-8") == text:
            os.chmod(path, mode)
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise EnvWriteError(f"cannot read {path}: {exc.strerror}; nothing was written") from exc
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise EnvWriteError(
            f"cannot write {path}: {exc.strerror} in {folder.resolve()}; the old file is untouched"
        ) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise EnvWriteError(f"cannot write {path}: {exc.strerror}; the old file is untouched") from exc
    return True
