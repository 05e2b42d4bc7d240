"""`fetch`: put one catalogue model into `<models_dir>/<model id>/` (hub layout) and write its manifest.

One function for `i2v fetch`, the image build and the compose `fetch` job. For each source in the
chain (`auto`: ModelScope, the `HF_ENDPOINT` mirror, the official hub) it lists the repo, picks the
files (`select.select_files`), drops local files that no longer match what the hub lists, lets the
client download the rest, hashes every file against the hub's sha256 (or git blob id), and only
then writes `i2v-manifest.json` atomically. While a fetch is under way the folder carries
`.i2v-fetch-incomplete`, so the runtime never loads a half-fetched folder.

A failing source passes to the next; a Hugging Face licence gate ends the Hugging Face part of the
chain (another endpoint sees the same token). Offline mode (`I2V_OFFLINE=1`) downloads nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from i2v import catalogue
from i2v.catalogue.assets import ASSETS, Asset
from i2v.catalogue.spec import ModelSpec
from i2v.weights.errors import (
    FetchFailedError,
    GatedRepoError,
    NotAPipelineError,
    OfflineError,
    PickleOnlyError,
    WeightsCorruptError,
    WeightsError,
    WeightsIncompleteError,
)
from i2v.weights.manifest import (
    FileEntry,
    Manifest,
    VerifiedCache,
    git_blob_sha1,
    read_manifest,
    sha256_file,
    verify,
    write_json_atomic,
    write_manifest,
)
from i2v.weights.progress import FileProgress, NullProgress
from i2v.weights.select import RemoteFile, select_files, select_named, select_patterns
from i2v.weights.sources import Listing, Source, SourceError, default_sources

log = logging.getLogger("i2v.weights")

MARKER_NAME = ".i2v-fetch-incomplete"


@dataclass(frozen=True)
class FetchResult:
    folder: Path
    manifest: Manifest
    up_to_date: bool  # nothing was downloaded: the folder already matched the hub

    def summary(self) -> dict:
        return {**self.manifest.summary(self.folder), "up_to_date": self.up_to_date}


def fetch_command(spec: ModelSpec | Asset, models_dir: Path) -> str:
    if isinstance(spec, Asset) and spec.fetch_as:  # a part of a model: fetched with the model
        return f"i2v fetch {spec.fetch_as} --dir {models_dir}"
    return f"i2v fetch {spec.id} --dir {models_dir}"


def offline_env() -> None:
    """Offline mode for the hub libraries too: HF_HUB_OFFLINE=1 (also patched where already imported)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True  # read once at import; diffusers may have imported it already


def fetch(
    model: str | ModelSpec | Asset,
    *,
    source: str = "auto",
    revision: str | None = None,
    models_dir: Path | str | None = None,
    repo: str | None = None,
    progress: FileProgress | None = None,
    offline: bool | None = None,
    sources: list[Source] | None = None,
) -> FetchResult:
    """Fetch `model` (a catalogue model or asset: id or entry) into `<models_dir>/<id>/`; returns the
    written manifest.

    `repo` overrides the catalogue's hub id (a fork, a private mirror, a test repo); `sources`
    replaces the chain `source` names. Tiny catalogue models and assets with no repo are built locally.
    """
    spec = target(model) if isinstance(model, str) else model
    if models_dir is None or offline is None:
        from i2v.settings import load_settings

        settings = load_settings()
        models_dir = settings.models_dir if models_dir is None else models_dir
        offline = settings.offline if offline is None else offline
    models_dir = Path(models_dir).expanduser()
    folder = models_dir / spec.id
    progress = progress or NullProgress()
    if offline:
        offline_env()
        return _offline(spec, folder, models_dir)
    if spec.tiny and repo is None and sources is None:
        if isinstance(spec, Asset):
            from i2v.tiny.lora import build_asset

            build_asset(spec.id, folder)
            return FetchResult(folder, write_local_manifest(spec, folder), up_to_date=False)
        return FetchResult(folder, build_tiny_with_manifest(spec, folder), up_to_date=False)
    chain = sources if sources is not None else default_sources(source)
    attempts: list[tuple[str, str]] = []
    gated: SourceError | None = None
    refused: WeightsError | None = None
    for src in chain:
        repo_id = repo or src.repo_for(spec)
        if repo_id is None:
            attempts.append((src.label, f"the catalogue has no {src.family} id for {spec.id}"))
            continue
        if gated is not None and src.family == "huggingface":
            attempts.append((f"{src.label} ({src.endpoint})", "skipped: the same token meets the same gate"))
            continue
        try:
            return _fetch_from(src, repo_id, spec, folder, revision, progress, models_dir)
        except SourceError as exc:
            attempts.append((f"{src.label} ({src.endpoint})", str(exc)))
            if exc.gated and src.family == "huggingface":
                gated = gated or exc
        except (PickleOnlyError, NotAPipelineError, WeightsCorruptError) as exc:
            attempts.append((f"{src.label} ({src.endpoint})", str(exc)))
            refused = refused or exc
        progress.note(f"{src.label}: {attempts[-1][1]}")
    if gated is not None:
        hf_repo = repo or spec.hf_id or ""
        others = "".join(f"\n  {label}: {reason}" for label, reason in attempts)
        raise GatedRepoError(hf_repo, spec.modelscope_id if repo is None else None, f"\ntried:{others}")
    if refused is not None:
        raise refused
    raise FetchFailedError(spec.id, attempts)


def target(name: str) -> ModelSpec | Asset:
    """A catalogue model, or else a catalogue asset, by id (unknown: the catalogue's error)."""
    if name in ASSETS:
        return ASSETS[name]
    return catalogue.get(name)


def preset_assets(spec: ModelSpec) -> list[Asset]:
    """The assets ``spec``'s presets load (its distillation LoRAs), each once, in preset order."""
    ids = dict.fromkeys(lora.asset for preset in spec.presets.values() for lora in preset.loras)
    return [ASSETS[i] for i in ids]


def _offline(spec: ModelSpec, folder: Path, models_dir: Path) -> FetchResult:
    manifest = read_manifest(folder) if folder.is_dir() else None
    if manifest is None or (folder / MARKER_NAME).exists():
        raise OfflineError(
            f"offline mode (I2V_OFFLINE=1): {spec.id} is not complete in {folder} and nothing is "
            f"downloaded; run `{fetch_command(spec, models_dir)}` where the network is allowed "
            "(unset I2V_OFFLINE), or copy the folder here"
        )
    verify(folder, manifest, fix=f"re-fetch it: {fetch_command(spec, models_dir)}")
    return FetchResult(folder, manifest, up_to_date=True)


def _fetch_from(
    src: Source,
    repo_id: str,
    spec: ModelSpec,
    folder: Path,
    revision: str | None,
    progress: FileProgress,
    models_dir: Path,
) -> FetchResult:
    listing = src.list(repo_id, revision)
    if listing.gated and not src.has_token():
        raise SourceError(f"{repo_id} at {src.endpoint}: gated, and no token is set", gated=True)
    if isinstance(spec, Asset) and spec.patterns:
        selection = select_patterns(repo_id, listing.files, spec.patterns)
    elif isinstance(spec, Asset):
        selection = select_named(repo_id, listing.files, spec.files)
    else:
        selection = select_files(repo_id, listing.files, spec.allow_patterns, spec.variant)
    folder.mkdir(parents=True, exist_ok=True)
    current = _current_manifest(folder)
    if (
        current is not None
        and current.repo == repo_id
        and listing.commit in (None, current.commit)
        and _same_files(current, selection.files)
        and not (folder / MARKER_NAME).exists()
    ):
        try:
            verify(folder, current)
            progress.note(f"{spec.id}: up to date in {folder} ({src.label} {repo_id})")
            return FetchResult(folder, current, up_to_date=True)
        except WeightsError as exc:
            progress.note(f"{spec.id}: {exc}; fetching again")
    marker = folder / MARKER_NAME
    write_json_atomic(
        marker,
        {
            "model": spec.id,
            "repo": repo_id,
            "source": src.label,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )
    (folder / "i2v-manifest.json").unlink(missing_ok=True)
    cache = VerifiedCache(folder)
    _drop_stale(folder, selection.files, cache)
    src.download(listing, selection, spec, folder, progress)
    progress.note(
        f"{spec.id}: checking the sha256 of {len(selection.files)} files ({selection.total_bytes:,} bytes)"
    )
    entries = [_checked_entry(folder, remote, cache, src.label) for remote in selection.files]
    cache.save()
    manifest = Manifest(
        model=spec.id,
        source=src.label,
        repo=repo_id,
        revision=listing.revision,
        commit=listing.commit,
        endpoint=src.endpoint,
        variant=spec.variant,
        files=tuple(entries),
    )
    write_manifest(folder, manifest)
    marker.unlink(missing_ok=True)
    log.info("fetched %s from %s %s into %s", spec.id, src.label, repo_id, folder)
    return FetchResult(folder, manifest, up_to_date=False)


def _current_manifest(folder: Path) -> Manifest | None:
    try:
        return read_manifest(folder)
    except WeightsError:
        return None


def _same_files(manifest: Manifest, remote: tuple[RemoteFile, ...]) -> bool:
    have = {e.path: e for e in manifest.files}
    return len(have) == len(remote) and all(
        r.path in have and have[r.path].size == r.size and r.sha256 in (None, have[r.path].sha256)
        for r in remote
    )


def _local_sha256(folder: Path, rel: str, cache: VerifiedCache) -> str:
    path = folder / rel
    stat = path.stat()
    known = cache.entries.get(rel)
    if known and known.get("key") == [stat.st_size, stat.st_mtime_ns, stat.st_ino]:
        return str(known["sha256"])
    digest = sha256_file(path)
    cache.remember(rel, stat, digest)
    return digest


def _matches_remote(folder: Path, remote: RemoteFile, cache: VerifiedCache) -> tuple[bool, str, str]:
    """(matches, local sha256, what differs) for a file on disk against the hub's listing."""
    path = folder / remote.path
    size = path.stat().st_size
    if size != remote.size:
        return False, "", f"has {size:,} bytes, the hub lists {remote.size:,}"
    digest = _local_sha256(folder, remote.path, cache)
    if remote.sha256 and digest != remote.sha256.lower():
        return False, digest, f"sha256 {digest[:12]}... differs from the hub's {remote.sha256[:12]}..."
    if not remote.sha256 and remote.git_oid and git_blob_sha1(path) != remote.git_oid:
        return False, digest, f"git blob id differs from the hub's {remote.git_oid[:12]}..."
    return True, digest, ""


def _drop_stale(folder: Path, files: tuple[RemoteFile, ...], cache: VerifiedCache) -> None:
    """Delete local copies that do not match the listing, so the client fetches them again."""
    for remote in files:
        if (folder / remote.path).is_file() and not _matches_remote(folder, remote, cache)[0]:
            log.info("%s differs from the hub's copy; fetching it again", remote.path)
            (folder / remote.path).unlink()
            cache.forget(remote.path)


def _checked_entry(folder: Path, remote: RemoteFile, cache: VerifiedCache, label: str) -> FileEntry:
    if not (folder / remote.path).is_file():
        raise WeightsCorruptError(folder, remote.path, f"was not delivered by {label}", "re-run the fetch")
    ok, digest, detail = _matches_remote(folder, remote, cache)
    if not ok:
        (folder / remote.path).unlink(missing_ok=True)
        cache.forget(remote.path)
        cache.save()
        raise WeightsCorruptError(
            folder,
            remote.path,
            f"as downloaded from {label}: {detail}; deleted it",
            "re-run the fetch (or try another --source)",
        )
    return FileEntry(remote.path, remote.size, digest)


def build_tiny_with_manifest(spec: ModelSpec, folder: Path) -> Manifest:
    """Build a tiny catalogue model locally (no download) and write its manifest (source local-build)."""
    from i2v.tiny import build_tiny

    folder.parent.mkdir(parents=True, exist_ok=True)
    build_tiny(spec.id, folder)
    return write_local_manifest(spec, folder)


def write_local_manifest(spec: ModelSpec, folder: Path) -> Manifest:
    """A manifest for a folder made here (a tiny build): every regular file but our own side files."""
    cache = VerifiedCache(folder)
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(".") or "/." in rel or rel == "i2v-manifest.json":
            continue
        entries.append(FileEntry(rel, path.stat().st_size, _local_sha256(folder, rel, cache)))
    cache.save()
    manifest = Manifest(
        model=spec.id,
        source="local-build",
        repo=None,
        revision=None,
        commit=None,
        endpoint=None,
        variant=None,
        files=tuple(entries),
    )
    write_manifest(folder, manifest)
    return manifest


def check_for_load(spec: ModelSpec, folder: Path, models_dir: Path) -> Manifest | None:
    """What the runtime calls before any loader: the fetch finished and every file matches its manifest.

    Sizes always, hashes unless remembered for this (size, mtime_ns, inode). A folder without a
    manifest (weights put there by hand) loads with a warning.
    """
    fix = f"re-fetch it: {fetch_command(spec, models_dir)}"
    marker = folder / MARKER_NAME
    if marker.exists():
        started = ""
        try:
            started = " (started " + json.loads(marker.read_text(encoding="utf-8")).get("started", "?") + ")"
        except (OSError, ValueError, AttributeError):
            pass
        raise WeightsIncompleteError(
            f"the fetch of {spec.id} into {folder} did not finish{started}; "
            f"run `{fetch_command(spec, models_dir)}` (it resumes)"
        )
    manifest = read_manifest(folder)
    if manifest is None:
        log.warning(
            "%s has no i2v-manifest.json: its files are not verified (%s writes one)",
            folder,
            fetch_command(spec, models_dir),
        )
        return None
    return verify(folder, manifest, fix=fix)


__all__ = [
    "FetchResult",
    "Listing",
    "build_tiny_with_manifest",
    "check_for_load",
    "fetch",
    "offline_env",
    "preset_assets",
    "target",
]
