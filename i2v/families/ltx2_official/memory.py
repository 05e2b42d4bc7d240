"""LTX-2.3's memory for the planner: the package's phases (phases.py) with activations and weights. Torch-free.

Phases: which models each phase of a mode keeps alive, read off the 1.0.0 pipelines (`PHASES`): Gemma
while the prompt is encoded, the text projection, the video (and audio) encoder, stage 1 at half size,
the x2 upsample, stage 2 at full size, the decoders.

Activations: estimated, not measured - `i2v.memory` measures diffusers pipelines under fake tensors, and
ltx-pipelines is not one. They are the measured fits of diffusers' LTX-2 19B (`ltx-2` in
memory_fits.json), whose latent geometry is LTX-2.3's (32x spatial, 8x temporal, 128 channels) and whose
transformer has the same width (48 layers, 32 x 128 video heads, 32 x 64 audio heads) and the same Gemma 3
12B with its stacked hidden states; each stage at its own size, the package's tiled decode (its CLIs pass
`TilingConfig.default()`; one-stage does not, so it decodes untiled). Run `i2v plan --model ltx-2.3` on
the device and compare with the first job's peak (`result.peak_mib`) before trusting a tight plan.

Weights on the device (`phase_weights_mib`), per the warm components' residency:
- resident: every model of the mode stays on the device, each transformer variant too (stage 2's with the
  distilled LoRA fused is a second 38 GB copy in two-transformer modes);
- model offload ("host" residency): the small models stay, Gemma, the text projection and the
  transformers come to the device for their phase only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from i2v.families.ltx2_official.modes import MODES, ModeName
from i2v.families.ltx2_official.phases import _BIG, PHASES, Phase, parts_of, transformer_variants

if TYPE_CHECKING:
    from i2v.catalogue.spec import ModelSpec
    from i2v.memory.model import PhaseEstimate
    from i2v.memory.phases import PhaseSetting
    from i2v.request import GenerationRequest

MEASURED_AS = "ltx-2"  # whose fitted phases stand in (see the module docstring)
# The package's phase -> the fitted phase whose activations it holds.
_FIT = {
    "encode-prompt": "text",
    "project-prompt": "other",
    "encode-audio": "condition",
    "encode-conditions": "condition",
    "stage-1": "denoise",
    "upsample": "condition",
    "stage-2": "denoise",
    "decode": "decode",
}
_TILED_DECODE = frozenset(MODES) - {"one-stage"}


def _size(request: GenerationRequest, phase: Phase, mode: ModeName) -> tuple[int, int]:
    """The size a phase works at: stage 1 (and what it encodes for) at half size in two-stage modes."""
    half = MODES[mode].two_stage and (
        phase.name in ("stage-1", "upsample") or (phase.name == "encode-conditions" and phase.stage is None)
    )
    return (request.height // 2, request.width // 2) if half else (request.height, request.width)


def phases(spec: ModelSpec, request: GenerationRequest, setting: PhaseSetting) -> tuple[PhaseEstimate, ...]:
    from i2v.catalogue.memory import measured
    from i2v.memory.model import PhaseEstimate, request_features

    mode: ModeName = request.mode or "two-stage"  # type: ignore[assignment]
    fits = measured(MEASURED_AS)
    scale = 2 if setting.dtype == "float32" else 1
    estimates = []
    for phase in PHASES[mode]:
        height, width = _size(request, phase, mode)
        features = request_features(spec, height, width, request.frames, None)
        fit = _FIT[phase.name]
        variant = "tiled" if fit == "decode" and mode in _TILED_DECODE else None
        estimates.append(
            PhaseEstimate(
                phase.name,
                tuple(sorted(phase.parts)),
                fits.fit(fit, variant).mib(features) * scale,
                device_factor=fits.device_factor(fit),
                note=f"at {width}x{height}; activations: {MEASURED_AS}'s measured {fit} fit (estimate)",
            )
        )
    return tuple(estimates)


def phase_weights_mib(
    mode: ModeName, phase: PhaseEstimate, weights: dict[str, float], strategy: str
) -> float:
    """Weights on the device during ``phase`` of ``mode``: resident (every model warm on the device) or
    model offload (the big models only in their own phase)."""
    present = parts_of(mode)
    small = sum(w for name, w in weights.items() if name in present and name not in _BIG)
    if strategy == "resident":
        big = sum(w for name, w in weights.items() if name in present & _BIG and name != "transformer")
        return small + big + transformer_variants(mode) * weights.get("transformer", 0.0)
    if strategy == "model-offload":
        return small + sum(weights.get(name, 0.0) for name in phase.components if name in _BIG)
    raise ValueError(f"ltx-2.3 runs resident or with model offload, not {strategy!r}")


__all__ = ["MEASURED_AS", "phase_weights_mib", "phases"]
