"""The model catalogue: declarative `ModelSpec` entries, torch-free and import-safe."""

from __future__ import annotations

from i2v.catalogue.models import DEFAULT_MODEL, SPECS
from i2v.catalogue.spec import ModelSpec


class UnknownModelError(KeyError):
    def __init__(self, model_id: str):
        self.model_id = model_id
        super().__init__(model_id)

    def __str__(self) -> str:
        real = ", ".join(s.id for s in SPECS.values() if not s.tiny)
        tiny = ", ".join(s.id for s in SPECS.values() if s.tiny)
        return f"unknown model {self.model_id!r}; valid ids: {real} (tiny, for tests and demo: {tiny})"


def get(model_id: str) -> ModelSpec:
    try:
        return SPECS[model_id]
    except KeyError:
        raise UnknownModelError(model_id) from None


def all_specs(include_tiny: bool = True) -> list[ModelSpec]:
    return [s for s in SPECS.values() if include_tiny or not s.tiny]


__all__ = ["DEFAULT_MODEL", "ModelSpec", "UnknownModelError", "all_specs", "get"]
