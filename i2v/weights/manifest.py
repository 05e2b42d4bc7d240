"""The manifest of a model folder (`i2v-manifest.json`) and the checks against it.

Written once, atomically, after every file of a fetch is complete: file, size, sha256 for each
file, plus where it came from (source, endpoint, repo, revision, commit). Its presence means
"this folder was complete and right when it was written".

`verify(folder)` checks every file's size (always) and sha256. Hashing tens of GB on every start
is too slow, so a good hash is remembered in a side file (`.i2v-verified.json`, or a per-user
cache file when the folder is read-only) keyed on (size, mtime_ns, inode): the second load only
stats the files, and a file written since (a flipped byte changes its mtime) is hashed again.
`full=True` ignores the side file (`i2v fetch --verify`). Bit rot that leaves mtime alone is
found only by a full check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from i2v.weights.errors import WeightsCorruptError, WeightsError

log = logging.getLogger("i2v.weights")

MANIFEST_NAME = "i2v-manifest.json"
VERIFIED_NAME = ".i2v-verified.json"
FORMAT = 1
_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    model: str
    source: str  # modelscope | hf-mirror | huggingface | local-build
    repo: str | None
    revision: str | None  # what was asked for ("main", "master", a tag or a commit)
    commit: str | None  # what it resolved to, where the hub says
    endpoint: str | None
    variant: str | None
    files: tuple[FileEntry, ...]
    fetched_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    format: int = FORMAT

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = [asdict(f) for f in self.files]
        data["total_bytes"] = self.total_bytes
        return data

    def summary(self, folder: Path) -> dict[str, Any]:
        """What `i2v fetch --json` prints: the manifest without the per-file list, plus the folder."""
        data = {k: v for k, v in self.to_dict().items() if k != "files"}
        return {"folder": str(folder), "file_count": len(self.files), **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        files = tuple(FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in data["files"])
        known = {
            k: data.get(k) for k in ("model", "source", "repo", "revision", "commit", "endpoint", "variant")
        }
        return cls(
            files=files,
            fetched_at=data.get("fetched_at", ""),
            format=int(data.get("format", FORMAT)),
            **known,
        )  # type: ignore[arg-type]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """Git's blob id of a file (what Hugging Face lists for small, non-LFS files)."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def manifest_path(folder: Path) -> Path:
    return Path(folder) / MANIFEST_NAME


def read_manifest(folder: Path) -> Manifest | None:
    path = manifest_path(folder)
    try:
        return Manifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise WeightsError(
            f"{path} is not a readable manifest ({exc}); re-run the fetch to rewrite it"
        ) from exc


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = manifest_path(folder)
    write_json_atomic(path, manifest.to_dict())
    return path


# --- the verification side file --------------------------------------------------------------------


def _stat_key(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


class VerifiedCache:
    """Good hashes seen before, keyed on (size, mtime_ns, inode); lives beside the weights if it can."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = False
        for candidate in self._paths():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
                self.entries = dict(data.get("files", {}))
                break
            except (OSError, ValueError, AttributeError):
                continue

    def _paths(self) -> list[Path]:
        # A read-only model folder (an image layer, a read-only mount) keeps its cache per user.
        cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        key = hashlib.sha1(str(self.folder.resolve()).encode(), usedforsecurity=False).hexdigest()[:16]
        return [self.folder / VERIFIED_NAME, cache_home / "i2v-deploy" / "verified" / f"{key}.json"]

    def known_good(self, rel: str, stat: os.stat_result, sha256: str) -> bool:
        entry = self.entries.get(rel)
        return bool(entry) and entry.get("key") == _stat_key(stat) and entry.get("sha256") == sha256

    def remember(self, rel: str, stat: os.stat_result, sha256: str) -> None:
        self.entries[rel] = {"key": _stat_key(stat), "sha256": sha256}
        self.dirty = True

    def forget(self, rel: str) -> None:
        if self.entries.pop(rel, None) is not None:
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        for candidate in self._paths():
            try:
                write_json_atomic(candidate, {"format": FORMAT, "files": self.entries})
                self.dirty = False
                return
            except OSError as exc:
                log.debug("cannot write %s: %s", candidate, exc)


# --- verification ----------------------------------------------------------------------------------


def check_size(folder: Path, entry: FileEntry, fix: str) -> os.stat_result:
    path = Path(folder) / entry.path
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise WeightsCorruptError(folder, entry.path, "is missing (listed in the manifest)", fix) from None
    if stat.st_size < entry.size:
        raise WeightsCorruptError(
            folder, entry.path, f"is truncated: {stat.st_size:,} of {entry.size:,} bytes", fix
        )
    if stat.st_size > entry.size:
        raise WeightsCorruptError(
            folder, entry.path, f"has {stat.st_size:,} bytes, the manifest says {entry.size:,}", fix
        )
    return stat


def verify(
    folder: Path, manifest: Manifest | None = None, *, full: bool = False, fix: str = "", workers: int = 4
) -> Manifest:
    """Check every manifest file (sizes first, then hashes); raises `WeightsCorruptError` naming the file."""
    folder = Path(folder)
    manifest = manifest or read_manifest(folder)
    if manifest is None:
        raise WeightsError(f"{folder} has no {MANIFEST_NAME}; {fix or 'fetch the model to write one'}")
    stats = {entry.path: check_size(folder, entry, fix) for entry in manifest.files}
    cache = VerifiedCache(folder)
    todo = [e for e in manifest.files if full or not cache.known_good(e.path, stats[e.path], e.sha256)]
    if todo:
        log.info("hashing %d file(s) of %s (%s bytes)", len(todo), folder, f"{sum(e.size for e in todo):,}")

    def digest(entry: FileEntry) -> tuple[FileEntry, str]:
        return entry, sha256_file(folder / entry.path)

    failures: list[tuple[FileEntry, str]] = []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
        for entry, actual in pool.map(digest, todo):
            if actual != entry.sha256:
                cache.forget(entry.path)
                failures.append((entry, actual))
            elif _stat_key((folder / entry.path).stat()) == _stat_key(stats[entry.path]):
                cache.remember(entry.path, stats[entry.path], actual)  # unchanged while hashed
    cache.save()
    if failures:
        entry, actual = failures[0]
        more = f" (and {len(failures) - 1} more file(s))" if len(failures) > 1 else ""
        raise WeightsCorruptError(
            folder,
            entry.path,
            f"is corrupted: its sha256 {actual[:12]}... differs from "
            f"the manifest's {entry.sha256[:12]}...{more}",
            fix,
        )
    return manifest
