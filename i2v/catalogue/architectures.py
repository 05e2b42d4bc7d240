"""One lookup over the per-family architecture tables (arch_*.py), imported on first use."""

from __future__ import annotations

import importlib
from functools import lru_cache

from i2v.catalogue.arch_types import Architecture

_MODULES = ("arch_i2vgen", "arch_svd", "arch_wan", "arch_ltx", "arch_ltx2", "arch_ltx23")


@lru_cache(maxsize=1)
def _table() -> dict[str, Architecture]:
    table: dict[str, Architecture] = {}
    for name in _MODULES:
        module = importlib.import_module(f"i2v.catalogue.{name}")
        table.update(module.FULL)
        table.update(module.TINY)
    return table


def architecture_for(model_id: str) -> Architecture:
    try:
        return _table()[model_id]
    except KeyError:
        raise KeyError(f"no architecture recorded for {model_id!r}") from None


def pipeline_config_for(model_id: str) -> dict:
    """The pipeline's own registered options for a model (Wan's boundary_ratio, expand_timesteps)."""
    for name in _MODULES:
        module = importlib.import_module(f"i2v.catalogue.{name}")
        config = getattr(module, "PIPELINE_CONFIG", {})
        if model_id in config:
            return dict(config[model_id])
    return {}
