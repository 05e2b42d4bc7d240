"""What the catalogue says about a model: pure data, torch-free, import-safe.

A `ModelSpec` is everything the planner, the fetcher and the runtime need to know about one
model without loading it: where its weights live (ModelScope first, Hugging Face fallback),
which files a pipeline needs, the request constraints and defaults, the presets, and the memory
model (`i2v.memory.model.PhaseFits`) whose coefficients say where they were measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from i2v.catalogue.arch_types import Architecture
from i2v.memory.model import PhaseFits

if TYPE_CHECKING:
    from i2v.families.base import FamilyAdapter

Family = Literal["i2vgen-xl", "svd", "ltx-video", "ltx-2", "wan2.1", "wan2.2"]
# Which library runs the family: diffusers, or Lightricks' own ltx-pipelines (i2v.families.ADAPTERS).
Backend = Literal["diffusers", "ltx-pipelines"]
PresetName = Literal["fast", "standard", "hq"]
PRESET_NAMES: tuple[str, ...] = ("fast", "standard", "hq")


@dataclass(frozen=True)
class Constraints:
    """Request rules, in the words of the pipeline's own `check_inputs` (plus what trains well)."""

    size_multiple: int  # height and width must be multiples of this
    frames_step: int = 1  # frames must be frames_step * k + frames_offset
    frames_offset: int = 0
    min_size: int = 64
    max_size: int = 2048
    min_frames: int = 1
    max_frames: int = 257
    max_steps: int = 150
    min_guidance: float = 0.0
    max_guidance: float = 20.0

    def frames_rule(self) -> str:
        if self.frames_step == 1:
            return f"{self.min_frames}..{self.max_frames}"
        return f"{self.frames_step}k+{self.frames_offset} in {self.min_frames}..{self.max_frames}"

    def frames_ok(self, frames: int) -> bool:
        return (
            self.min_frames <= frames <= self.max_frames
            and (frames - self.frames_offset) % self.frames_step == 0
        )

    def nearest_frames(self, frames: int) -> int:
        """The valid frame count closest to `frames` (ties go down: fewer frames is the safe side)."""
        valid = [f for f in range(self.min_frames, self.max_frames + 1) if self.frames_ok(f)]
        return min(valid, key=lambda f: (abs(f - frames), f))

    def nearest_size(self, value: int) -> int:
        m = self.size_multiple
        lo = max(self.min_size, (value // m) * m)
        hi = min(self.max_size, lo + m)
        lo = min(lo, self.max_size)
        return lo if abs(value - lo) <= abs(hi - value) else hi


@dataclass(frozen=True)
class PresetLora:
    """A LoRA a preset loads: a file of a catalogue asset (`i2v.catalogue.assets`, fetched by `i2v fetch`),
    the denoiser it goes into (Wan 2.2 A14B: one per expert) and its scale."""

    asset: str
    file: str
    target: str = "transformer"
    scale: float = 1.0


@dataclass(frozen=True)
class Preset:
    """Overrides on top of the model defaults, and the levers that preset allows.

    ``loras``: step-distillation LoRAs the preset runs with; ``mode``: the family's mode it runs (LTX-2
    fast: ``distilled``; a backend with modes of its own fills it the same way). When those files are
    missing, ``fallback`` runs instead and the request says so. ``fp8_weights``: weights may be stored
    in float8 when that is what fits (lossy: never for hq); ``lossy_attention``: SageAttention may
    replace exact attention (fast only).
    """

    name: PresetName
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)
    cache: str | None = None  # e.g. "first-block-cache:0.05" (lossy; fast preview only)
    lossy: bool = False
    mode: str | None = None
    loras: tuple[PresetLora, ...] = ()
    fallback: Preset | None = None
    fp8_weights: bool = True
    lossy_attention: bool = False

    @property
    def distilled(self) -> bool:
        return bool(self.loras) or self.mode is not None


@dataclass(frozen=True)
class Defaults:
    height: int
    width: int
    frames: int
    steps: int
    guidance: float
    fps: int


@dataclass(frozen=True)
class ModelSpec:
    id: str
    family: Family
    title: str
    pipeline_cls: str
    modelscope_id: str | None
    hf_id: str | None
    variant: str | None  # weight variant to fetch ("fp16") or None for the default files
    allow_patterns: tuple[str, ...]
    preferred_dtype: Literal["float16", "bfloat16"]
    defaults: Defaults
    constraints: Constraints
    presets: dict[str, Preset]
    memory: PhaseFits
    latent: tuple[int, int, int]  # (spatial VAE factor, temporal VAE factor, patch size)
    denoiser_blocks: int  # repeated blocks: group-offload granularity
    backend: Backend = "diffusers"
    tiny: bool = False
    notes: str = ""

    @property
    def adapter(self) -> FamilyAdapter:
        """What the family can do and how it runs (levers, modes, load and call): `i2v.families`."""
        from i2v.families import adapter_for

        return adapter_for(self)

    @property
    def architecture(self) -> Architecture:
        from i2v.catalogue.architectures import architecture_for

        return architecture_for(self.id)

    def weights_params(self) -> dict[str, int]:
        """Parameter count of each weighted component (name -> params)."""
        return {c.name: c.params for c in self.architecture.components if c.params}

    def running_preset(self, request: Any) -> Preset:
        """The preset ``request`` (a `GenerationRequest`) runs: its named one, or that one's fallback
        when resolving found the distilled files missing (no preset LoRAs, not the preset's mode)."""
        preset = self.preset(request.preset)
        if preset.fallback is None:
            return preset
        if (preset.loras and not request.preset_loras) or (preset.mode and request.mode != preset.mode):
            return preset.fallback
        return preset

    def preset(self, name: str) -> Preset:
        try:
            return self.presets[name]
        except KeyError:
            raise ValueError(
                f"preset {name!r} is not one of {', '.join(self.presets)} for model {self.id}"
            ) from None
