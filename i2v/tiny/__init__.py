"""Tiny random-weight pipelines built locally (no download), saved in the hub layout.

``build_tiny(tiny_id, dest)`` writes ``dest`` (model_index.json + one folder per component,
safetensors weights) so that ``PipelineClass.from_pretrained(dest, use_safetensors=True)`` loads
it. `BUILDERS` maps each tiny id to its family builder; `SMOKE_CALL` gives the call arguments a
smoke run uses for each id (small sizes, 2 steps).
"""

from __future__ import annotations

import importlib
from typing import Any

from i2v.tiny.build import BUILDERS, build_pipeline, build_tiny


def smoke_call(tiny_id: str) -> dict[str, Any]:
    """Pipeline call arguments for a quick run of ``tiny_id`` (its family module's ``SMOKE_CALL``)."""
    module_name = BUILDERS[tiny_id].partition(":")[0]
    calls = getattr(importlib.import_module(module_name), "SMOKE_CALL", {})
    if tiny_id not in calls:
        raise KeyError(f"{module_name}.SMOKE_CALL has no entry for {tiny_id!r}")
    return dict(calls[tiny_id])


__all__ = ["BUILDERS", "build_pipeline", "build_tiny", "smoke_call"]
