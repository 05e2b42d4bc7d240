"""LTX-2.3 22B through Lightricks' own ``ltx-pipelines==1.0.0`` / ``ltx-core==1.0.0``: eight modes.

Import-safe: importing this package (or `modes`, `weights`, `arch`, `phases`, `request`, `npu`,
`scope`, `validate`, `media`) imports neither torch nor the ltx packages. The run-time half
(`WarmComponents`, `WarmPolicy`, `run`, `LoadStats`) is imported on first attribute access.

The engine's calls, in order::

    checked = validate_request(request, device.kind)      # torch-free; InvalidRequestError
    files = ModelFiles.locate(models_dir); files.require(mode)   # MissingWeightsError
    components = WarmComponents(files, device)             # once per worker (model set x device)
    output = run(components, request, progress, checked)   # frames, audio, rate, notes

Data for the catalogue, planner and ``i2v fetch``: `MODES` (modes.py), `files_for(mode)`
(weights.py), `arch.PARAMS` / `arch.CHECKPOINT_CONFIG` (arch.py), `PHASES` and the byte helpers
(phases.py).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .modes import DEFAULT_MODE, MODE_NAMES, MODES, ModeName, ModeSpec
from .request import ImageInput, Ltx23Output, Ltx23Request
from .weights import WEIGHT_FILES, MissingWeightsError, ModelFiles, WeightFile, files_for

_LAZY = {
    "WarmComponents": ".pipelines",
    "WarmPolicy": ".components",
    "LoadStats": ".components",
    "run": ".runner",
    "validate_request": ".validate",
    "Checked": ".validate",
}

__all__ = [
    "DEFAULT_MODE",
    "MODES",
    "MODE_NAMES",
    "WEIGHT_FILES",
    "ImageInput",
    "Ltx23Output",
    "Ltx23Request",
    "MissingWeightsError",
    "ModeName",
    "ModeSpec",
    "ModelFiles",
    "WeightFile",
    "files_for",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
