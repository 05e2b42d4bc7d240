"""The memory model the planner predicts with: per-phase fits over request features. Torch-free.

A request runs in phases, and its device peak is the largest of them: what the phase's components keep
resident (the planner's business: weights under the chosen offload strategy) plus the activations the
phase holds above them. This module turns a request and its levers into the activations of each phase
from the catalogue's fitted coefficients (`PhaseFit`, fitted by `python -m i2v.memory.fit` from
fake-tensor measurements of the full-size pipelines), and a family adapter may replace the whole list
(`FamilyAdapter.phases`): the phases are typed data, not a formula the planner owns.

Every activation figure is for a 2-byte compute dtype; float32 doubles it (measured on I2VGen-XL:
28.4 GiB against 14.2 on the H100, ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# "other": what runs between the named phases (latent preparation, post-processing of the frames).
PhaseName = Literal["text", "condition", "other", "denoise", "decode"]
PHASE_NAMES: tuple[PhaseName, ...] = ("text", "condition", "other", "denoise", "decode")
FEATURES = ("mpixel", "mpixel_frame", "mtoken", "mpixel_decoded")


@dataclass(frozen=True)
class Features:
    """What a phase's activations grow with (all in millions)."""

    mpixel: float  # height x width
    mpixel_frame: float  # height x width x frames: the whole video
    mtoken: float  # latent tokens the denoiser attends over, times its batch
    mpixel_decoded: float  # height x width x frames the VAE decodes at once (decode_chunk)

    def values(self) -> tuple[float, ...]:
        return (self.mpixel, self.mpixel_frame, self.mtoken, self.mpixel_decoded)


def request_features(spec: Any, height: int, width: int, frames: int, decode_chunk: int | None) -> Features:
    """The features of a request on ``spec`` (a `ModelSpec`), as the fits and the planner take them."""
    spatial, temporal, patch = spec.latent
    latent_frames = (frames - 1) // temporal + 1 if temporal > 1 else frames
    tokens = latent_frames * (height // spatial // patch) * (width // spatial // patch)
    mpixel = height * width / 1e6
    chunk = decode_chunk if (decode_chunk and spec.adapter.levers.decode_chunk) else 0
    return Features(mpixel, mpixel * frames, tokens / 1e6, mpixel * chunk)


@dataclass(frozen=True)
class PhaseFit:
    """MiB above the resident weights while a phase runs: ``base_mib + sum(coefficient x feature)``."""

    base_mib: float = 0.0
    per_mpixel: float = 0.0
    per_mpixel_frame: float = 0.0
    per_mtoken: float = 0.0
    per_mpixel_decoded: float = 0.0

    def mib(self, features: Features) -> float:
        coefficients = (self.per_mpixel, self.per_mpixel_frame, self.per_mtoken, self.per_mpixel_decoded)
        return self.base_mib + sum(c * v for c, v in zip(coefficients, features.values(), strict=True))

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> PhaseFit:
        return cls(**{k: float(v) for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class DeviceFactor:
    """Extra memory a real accelerator needs in a phase that fake tensors cannot see (kernel
    workspaces): the phase's peak (resident weights + activations) times ``factor``."""

    factor: float
    source: str


@dataclass(frozen=True)
class PhaseEstimate:
    """One phase of a request: the components whose weights it needs on the device, the activations it
    holds above them, and (where a real device adds cost fake tensors miss) a factor on its peak.

    ``weights_extra_mib``: weights the phase adds that no catalogue component holds (a preset's LoRA,
    an LTX-2 upsampler loaded on the side)."""

    name: str
    components: tuple[str, ...]
    activations_mib: float
    device_factor: float = 1.0
    weights_extra_mib: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class PhaseFits:
    """A model's fitted phases; lever variants (`denoise+chunked`, `decode+tiled`) replace the plain fit
    when the lever is on. ``source`` names the command, date and versions that produced them.

    ``fp8_weights_mib``: each denoiser's weights with float8 layerwise casting (the layers diffusers
    keeps in bf16 included); ``fp8_upcast_mib``: what the per-layer upcast adds to the denoise phase.
    ``overhead_mib``: what no tensor holds (CUDA context, allocator slack), added to every phase."""

    fits: dict[str, PhaseFit] = field(default_factory=dict)
    device_factors: dict[str, DeviceFactor] = field(default_factory=dict)
    fp8_weights_mib: dict[str, float] = field(default_factory=dict)
    fp8_upcast_mib: float = 0.0
    overhead_mib: float = 512.0
    source: str = "estimate"

    def fit(self, phase: str, variant: str | None = None) -> PhaseFit:
        if variant is not None and f"{phase}+{variant}" in self.fits:
            return self.fits[f"{phase}+{variant}"]
        return self.fits.get(phase, PhaseFit())

    def device_factor(self, phase: str) -> float:
        factor = self.device_factors.get(phase)
        return factor.factor if factor is not None else 1.0


__all__ = [
    "FEATURES",
    "PHASE_NAMES",
    "DeviceFactor",
    "Features",
    "PhaseEstimate",
    "PhaseFit",
    "PhaseFits",
    "PhaseName",
]
