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
    json: bool = False,
) -> None:
    from i2v.output import Output

    logging.basicConfig(
        level=os.environ.get("I2V_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s"
    )
    sink = Output(json)
    data, text = (_verify if verify else _fetch)(model, source, revision, models_dir, repo, sink)
    sink.result(data, lambda console: console.print(text))


def _models_dir(models_dir: Path | None) -> Path:
    if models_dir is not None:
        return Path(models_dir).expanduser()
    from i2v.settings import load_settings

    return Path(load_settings().models_dir).expanduser()


def _fetch(
    model: str, source: str, revision: str | None, models_dir: Path | None, repo: str | None, sink
) -> tuple[dict, str]:
    from i2v.weights.fetch import fetch, preset_assets, target
    from i2v.weights.progress import NullProgress, RichProgress

    spec = target(model)
    root = _models_dir(models_dir)

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
    model: str, source: str, revision: str | None, models_dir: Path | None, repo: str | None, sink
) -> tuple[dict, str]:
    from i2v.weights.fetch import MARKER_NAME, fetch_command, target
    from i2v.weights.manifest import read_manifest, verify

    spec = target(model)
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
