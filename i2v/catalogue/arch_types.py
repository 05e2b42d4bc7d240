"""Architecture descriptions as plain data: enough to build a model with random weights.

Import-safe and torch-free. A `Component` names the class that builds it (``diffusers.X`` or
``transformers.X``), the constructor config, and (for full-size entries) the parameter count
measured by instantiating that config on the meta device; the planner's memory model reads
those counts, so they are tested against the real classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ComponentKind = Literal[
    "denoiser",
    "text_encoder",
    "image_encoder",
    "vae",
    "audio_vae",
    "vocoder",
    "connector",
    "upsampler",
    "tokenizer",
    "scheduler",
    "processor",
    "other",
]


@dataclass(frozen=True)
class Component:
    name: str  # the pipeline's attribute / hub sub-folder, e.g. "transformer_2"
    cls: str  # "diffusers.WanTransformer3DModel", "transformers.UMT5EncoderModel", ...
    kind: ComponentKind
    config: dict[str, Any] = field(default_factory=dict)
    params: int = 0  # full-size parameter count (0 for tokenizers, schedulers, processors)


@dataclass(frozen=True)
class Architecture:
    pipeline_cls: str  # "diffusers.WanImageToVideoPipeline"
    components: tuple[Component, ...]

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(f"no component {name!r}; have {[c.name for c in self.components]}")

    def params_by_kind(self, kind: ComponentKind) -> int:
        return sum(c.params for c in self.components if c.kind == kind)

    @property
    def total_params(self) -> int:
        return sum(c.params for c in self.components)
