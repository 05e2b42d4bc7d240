"""Model families: one adapter per (family, backend), found by name, imported when first asked for.

Import-safe and torch-free: an adapter's class attributes (levers, modes) are data the planner, the
request validation, `provision` and the API read without torch; its methods import torch and the
pipeline library when they build or run something. The engine, planner, bench and server reach a
family only through `adapter_for(spec)`; nothing else branches on family names.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from i2v.families.base import (
    MEDIA_INPUTS,
    FamilyAdapter,
    Levers,
    MediaInput,
    MissingModeWeightsError,
    Mode,
    ModeFiles,
    Output,
    RunContext,
    resolve_class,
)

if TYPE_CHECKING:
    from i2v.catalogue.spec import ModelSpec

# (family, backend) -> "module:Class"
ADAPTERS: dict[tuple[str, str], str] = {
    ("i2vgen-xl", "diffusers"): "i2v.families.i2vgen:I2VGenXL",
    ("svd", "diffusers"): "i2v.families.svd:StableVideoDiffusion",
    ("ltx-video", "diffusers"): "i2v.families.ltx_video:LtxVideo",
    ("ltx-2", "diffusers"): "i2v.families.ltx2:Ltx2Diffusers",
    ("wan2.1", "diffusers"): "i2v.families.wan:Wan",
    ("wan2.2", "diffusers"): "i2v.families.wan:Wan",
    ("ltx-2", "ltx-pipelines"): "i2v.families.ltx2_official.adapter:Ltx2Official",
}


@cache
def _adapter(family: str, backend: str) -> FamilyAdapter:
    try:
        target = ADAPTERS[(family, backend)]
    except KeyError:
        known = ", ".join(f"{f}/{b}" for f, b in ADAPTERS)
        raise KeyError(f"no adapter for family {family!r} on backend {backend!r}; known: {known}") from None
    module_name, _, cls_name = target.partition(":")
    return getattr(importlib.import_module(module_name), cls_name)()


def adapter_for(spec: ModelSpec) -> FamilyAdapter:
    """The adapter that knows how ``spec``'s family runs on its backend."""
    return _adapter(spec.family, spec.backend)


__all__ = [
    "ADAPTERS",
    "MEDIA_INPUTS",
    "FamilyAdapter",
    "Levers",
    "MediaInput",
    "MissingModeWeightsError",
    "Mode",
    "ModeFiles",
    "Output",
    "RunContext",
    "adapter_for",
    "resolve_class",
]
