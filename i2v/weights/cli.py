"""`i2v fetch` behind the typer command: one output sink; exceptions become a message and an exit code
through the one error table (`i2v.errors`, via `i2v.output.handle_errors` on the command).

Exit codes: 0 fetched / verified; 2 bad arguments (unknown model, --source); 3 not fetched (--verify
with nothing there, or an unfinished fetch); 6 a file is corrupt or truncated; 7 gated on Hugging
Face; 8 refused (pickle-only component, not a diffusers repo); 9 every source failed; 10 offline.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from i2v.catalogue.spec import ModelSpec
from i2v.weights.errors import WeightsError, WeightsNotFetchedError


def run_fetch(
    model: str,
    *,
    source: str = "auto",
    revision: str | None = None,
    models_dir: Path | None = None,
    verify: bool = False,
    repo: str | None = None,
    modes: tuple[str, ...] = (),
    json: bool = False,
) -> None:
    from i2v.output import Output

    logging.basicConfig(
        level=os.environ.get("I2V_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s"
    )
    sink = Output(json)
    parts = _parts(model, modes, repo)
    if parts:
        data, text = (_verify_parts if verify else _fetch_parts)(
            model, parts, source, revision, models_dir, sink
        )
    else:
        data, text = (_verify if verify else _fetch)(model, source, revision, models_dir, repo, sink)
    sink.result(data, lambda console: console.print(text))


def _parts(model: str, modes: tuple[str, ...], repo: str | None) -> tuple[Any, ...]:
    """The hub repos a model is fetched from when it is not one diffusers repo (LTX-2.3), else ()."""
    from i2v.request import InvalidRequestError
    from i2v.weights.fetch import target

    spec = target(model)
    adapter = spec.adapter if isinstance(spec, ModelSpec) else None
    for mode in modes:
        if adapter is None or mode not in adapter.modes:
            valid = (
                ", ".join(adapter.modes) if adapter is not None and adapter.modes else "none: it has no modes"
            )
            raise InvalidRequestError("mode", mode, f"a mode of {model} ({valid})")
    parts = adapter.fetch_parts(spec, modes) if adapter is not None else ()
    if parts and repo is not None:
        raise InvalidRequestError("repo", repo, f"{model} comes from {len(parts)} repos; --repo names one")
    if modes and not parts:
        raise InvalidRequestError("mode", modes[0], f"{model} is fetched whole (one repo): leave --mode out")
    return parts


def _models_dir(models_dir: Path | None) -> Path:
    if models_dir is not None:
        return Path(models_dir).expanduser()
    from i2v.settings import load_settings

    return Path(load_settings().models_dir).expanduser()


def _fetcher(source: str, root: Path, sink) -> Any:
    """``one(item, repo, revision)``: fetch one catalogue entry or asset with progress on stderr."""
    from i2v.weights.fetch import fetch
    from i2v.weights.progress import NullProgress, RichProgress

    def one(item: Any, item_repo: str | None, item_revision: str | None) -> Any:
        if sink.json_mode:
            return fetch(
                item,
                source=source,
                revision=item_revision,
                models_dir=root,
                repo=item_repo,
                progress=NullProgress(),
            )
        with RichProgress(sink.err) as progress:
            return fetch(
                item,
                source=source,
                revision=item_revision,
                models_dir=root,
                repo=item_repo,
                progress=progress,
            )

    return one


def _fetch_parts(
    model: str, parts: tuple[Any, ...], source: str, revision: str | None, models_dir: Path | None, sink
) -> tuple[dict, str]:
    """Each part into its sub-folder, with its own manifest; a part keeps the files it already has (a
    second `--mode` adds to the first)."""
    import dataclasses

    from i2v.weights.manifest import read_manifest

    root = _models_dir(models_dir)
    one = _fetcher(source, root, sink)
    results, lines = [], []
    for part in parts:
        if part.files:
            try:
                have = read_manifest(root / part.id)
            except WeightsError:
                have = None
            kept = tuple(e.path for e in have.files) if have is not None and have.repo else ()
            part = dataclasses.replace(part, files=tuple(sorted(set(part.files) | set(kept))))
        result = one(part, None, revision)
        results.append(result)
        m = result.manifest
        lines.append(
            f"{'up to date' if result.up_to_date else 'fetched'}: {m.repo} ({len(m.files)} files, "
            f"{m.total_bytes / 1e9:.2f} GB) from {m.source} into {result.folder}"
        )
    data = {
        "model": model,
        "folder": str(root / model),
        "parts": [r.summary() for r in results],
        "files": sum(len(r.manifest.files) for r in results),
        "bytes": sum(r.manifest.total_bytes for r in results),
        "up_to_date": all(r.up_to_date for r in results),
    }
    return data, "\n".join(lines)


def _verify_parts(
    model: str, parts: tuple[Any, ...], source: str, revision: str | None, models_dir: Path | None, sink
) -> tuple[dict, str]:
    root = _models_dir(models_dir)
    checked = [_verify(part.id, source, revision, root, None, sink, spec=part) for part in parts]
    data = {"model": model, "verified": True, "parts": [d for d, _ in checked]}
    return data, "\n".join(text for _, text in checked)


def _fetch(
    model: str, source: str, revision: str | None, models_dir: Path | None, repo: str | None, sink
) -> tuple[dict, str]:
    from i2v.weights.fetch import preset_assets, target

    spec = target(model)
    root = _models_dir(models_dir)
    one = _fetcher(source, root, sink)
    result = one(spec, repo, revision)
    # The model's presets' assets (distillation LoRAs): a failure leaves the model usable and its
    # fast preset on its fallback, so it is reported, not raised.
    assets, asset_lines = [], []
    for asset in preset_assets(spec) if isinstance(spec, ModelSpec) else []:
        try:
            fetched = one(asset, None, None)
            assets.append({**fetched.summary(), "asset": asset.id})
            asset_lines.append(
                f"asset {asset.id}: {'up to date' if fetched.up_to_date else 'fetched'} into {fetched.folder}"
            )
        except WeightsError as exc:
            assets.append({"asset": asset.id, "error": str(exc)})
            asset_lines.append(
                f"asset {asset.id} NOT fetched ({str(exc).splitlines()[0][:300]}); the presets that need it fall back"
            )
    m = result.manifest
    where = f"{m.source} {m.repo}@{(m.commit or m.revision or '')[:12]}" if m.repo else m.source
    verb = "up to date" if result.up_to_date else "fetched"
    text = (
        f"{verb}: {spec.id} ({len(m.files)} files, {m.total_bytes / 1e9:.2f} GB) from {where}\n"
        f"into {result.folder}; manifest {result.folder / 'i2v-manifest.json'}"
    )
    if asset_lines:
        text += "\n" + "\n".join(asset_lines)
    return result.summary() | ({"assets": assets} if assets else {}), text


def _verify(
    model: str,
    source: str,
    revision: str | None,
    models_dir: Path | None,
    repo: str | None,
    sink,
    spec: Any = None,
) -> tuple[dict, str]:
    from i2v.weights.fetch import MARKER_NAME, fetch_command, target
    from i2v.weights.manifest import read_manifest, verify

    spec = spec if spec is not None else target(model)
    root = _models_dir(models_dir)
    folder = root / spec.id
    command = fetch_command(spec, root)
    manifest = read_manifest(folder)
    if manifest is None or (folder / MARKER_NAME).exists():
        state = "an unfinished fetch" if (folder / MARKER_NAME).exists() else "no i2v-manifest.json"
        raise WeightsNotFetchedError(f"{spec.id} is not fetched in {folder} ({state}); run: {command}")
    if not sink.json_mode:
        sink.info(f"hashing {len(manifest.files)} files ({manifest.total_bytes:,} bytes) in {folder} ...")
    verify(folder, manifest, full=True, fix=f"re-fetch it: {command}")
    text = f"verified: {spec.id} ({len(manifest.files)} files, {manifest.total_bytes:,} bytes) match {folder}"
    return {**manifest.summary(folder), "verified": True}, text
