"""The default phase list of a request: the catalogue's fits, the architecture's components. Torch-free.

`FamilyAdapter.phases` returns this unless a family knows better (a backend whose pipeline runs other
phases: Gemma encode, stage-1 transformer, upsampler, stage-2 with its LoRA, decode). Each phase names
the components whose weights it needs on the device; the planner decides how many of those bytes are
there under each offload strategy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from i2v.memory.model import PHASE_NAMES, PhaseEstimate, request_features

if TYPE_CHECKING:
    from i2v.catalogue.spec import ModelSpec
    from i2v.request import GenerationRequest

DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}
# Component kinds (i2v.catalogue.arch_types) whose weights each phase runs.
PHASE_KINDS: dict[str, tuple[str, ...]] = {
    "text": ("text_encoder", "connector"),
    "condition": ("image_encoder", "vae"),
    "other": ("image_encoder", "vae"),
    "denoise": ("denoiser",),
    "decode": ("vae", "audio_vae", "vocoder"),
}


@dataclass(frozen=True)
class PhaseSetting:
    """The levers of one planner rung that change a phase's activations."""

    dtype: str
    decode_chunk: int
    vae_tiling: bool = False
    forward_chunking: bool = False
    fp8_weights: bool = False


def default_phases(
    spec: ModelSpec, request: GenerationRequest, setting: PhaseSetting
) -> tuple[PhaseEstimate, ...]:
    """text, condition, denoise, decode from ``spec.memory``'s fits (float32 doubles the activations)."""
    memory = spec.memory
    features = request_features(spec, request.height, request.width, request.frames, setting.decode_chunk)
    scale = DTYPE_BYTES[setting.dtype] / 2
    kinds = {c.name: c.kind for c in spec.architecture.components if c.params}
    phases = []
    for name in PHASE_NAMES:
        variant = None
        if name == "denoise" and setting.forward_chunking:
            variant = "chunked"
        elif name == "decode" and setting.vae_tiling:
            variant = "tiled"
        activations = memory.fit(name, variant).mib(features) * scale
        extra, note = 0.0, ""
        if name == "denoise":
            if setting.fp8_weights:
                activations += memory.fp8_upcast_mib
            extra, note = preset_lora_mib(spec, request)
        components = tuple(n for n, kind in kinds.items() if kind in PHASE_KINDS[name])
        phases.append(
            PhaseEstimate(
                name,
                components,
                activations,
                device_factor=memory.device_factor(name),
                weights_extra_mib=extra,
                note=note,
            )
        )
    return tuple(phases)


def preset_lora_mib(spec: ModelSpec, request: GenerationRequest) -> tuple[float, str]:
    """The distillation LoRAs the request's preset loads (unfused: they stay on the device)."""
    refs = request.preset_loras
    if not refs:
        return 0.0, ""
    from i2v.catalogue.assets import lora_mib

    total = sum(lora_mib(ref.path) for ref in refs)
    return total, f"{len(refs)} distillation LoRA(s), {total:.0f} MiB"


__all__ = ["DTYPE_BYTES", "PHASE_KINDS", "PhaseSetting", "default_phases", "preset_lora_mib"]
