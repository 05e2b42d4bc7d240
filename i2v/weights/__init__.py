"""Model weights: fetch (ModelScope -> HF mirror -> HF), a sha256 manifest per model folder, checks.

Import-safe and light: no hub client, torch or diffusers is imported until a fetch runs.

    fetch("wan2.1-i2v-14b-480p", source="auto")   # -> FetchResult(folder, manifest, up_to_date)
    verify(folder, full=True)                      # raises WeightsCorruptError naming the file
    check_for_load(spec, folder, models_dir)       # what the runtime runs before any loader

Layout: `<models_dir>/<model id>/` in the hub layout (model_index.json + one folder per
component), `i2v-manifest.json` beside it, `.i2v-verified.json` remembering good hashes.
"""

from __future__ import annotations

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
from i2v.weights.fetch import FetchResult, build_tiny_with_manifest, check_for_load, fetch, offline_env
from i2v.weights.manifest import MANIFEST_NAME, FileEntry, Manifest, read_manifest, verify

__all__ = [
    "MANIFEST_NAME",
    "FetchFailedError",
    "FetchResult",
    "FileEntry",
    "GatedRepoError",
    "Manifest",
    "NotAPipelineError",
    "OfflineError",
    "PickleOnlyError",
    "WeightsCorruptError",
    "WeightsError",
    "WeightsIncompleteError",
    "build_tiny_with_manifest",
    "check_for_load",
    "fetch",
    "offline_env",
    "read_manifest",
    "verify",
]
