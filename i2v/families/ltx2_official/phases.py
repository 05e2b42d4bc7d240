"""Memory phases of each mode: which models are alive together, read off the 1.0.0 pipelines. Torch-free.

Every pipeline loads a model, uses it and drops it (``del`` + ``cleanup_memory()``) before the
next big one, so its weight peak is the largest phase, not the sum: Gemma (12.2B) alone while the
prompt is encoded, then the text projection, then the 19B transformer with at most the video VAE
encoder and the upsampler beside it, then the decoders. `Phase.parts` is what is resident at once.
Two transformers of one mode (stage 1 and the LoRA-fused stage 2) are never alive together; they
differ in fused LoRAs, so a warm cache that keeps both holds two copies (`transformer_variants`).

`upstream_peak_bytes(mode)` is the cold peak (ltx-pipelines alone: models rebuilt per request);
`warm_device_bytes(mode, ...)` what a warm worker keeps on the device when every model of the
mode stays there, or when Gemma and the transformers wait in host RAM ("host" residency): then
the device holds the small models plus the biggest model of the current phase.
Activations are not counted here (the planner adds them per size and frame count).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from .arch import Part, bf16_bytes
from .modes import MODES, ModeName, Stage

PhaseName = Literal[
    "encode-prompt",
    "project-prompt",
    "encode-audio",
    "encode-conditions",
    "stage-1",
    "upsample",
    "stage-2",
    "decode",
]
_BIG: frozenset[Part] = frozenset(
    {"text_encoder", "embeddings_processor", "transformer"}
)  # components.HOST_CAPABLE


@dataclass(frozen=True)
class Phase:
    name: PhaseName
    parts: frozenset[Part]
    stage: int | None = None  # the resident transformer is the one of MODES[mode].stages[stage]


def _p(name: PhaseName, *parts: Part, stage: int | None = None) -> Phase:
    return Phase(name, frozenset(parts), stage)


def _prompt() -> tuple[Phase, ...]:
    # helpers.encode_prompts: Gemma encodes and is freed, then the embeddings processor.
    return _p("encode-prompt", "text_encoder"), _p("project-prompt", "embeddings_processor")


def _decode(audio: bool = True) -> Phase:
    # decode_audio runs inside __call__ while the video decoder's lazy iterator is still alive.
    return (
        _p("decode", "video_decoder", "audio_decoder", "vocoder") if audio else _p("decode", "video_decoder")
    )


def _phases(mode: ModeName) -> tuple[Phase, ...]:
    if mode in ("two-stage", "two-stage-hq"):
        return (
            *_prompt(),
            _p("encode-conditions", "video_encoder"),
            _p("stage-1", "transformer", stage=0),
            _p("upsample", "video_encoder", "upsampler"),
            _p("stage-2", "transformer", stage=1),
            _decode(),
        )
    if mode == "one-stage":
        return (
            *_prompt(),
            _p("encode-conditions", "video_encoder"),
            _p("stage-1", "transformer", stage=0),
            _decode(),
        )
    if mode == "distilled":
        # One transformer for both stages, built next to the video encoder; both live to the end.
        return (
            *_prompt(),
            _p("stage-1", "video_encoder", "transformer", stage=0),
            _p("upsample", "video_encoder", "transformer", "upsampler", stage=0),
            _p("stage-2", "video_encoder", "transformer", stage=0),
            _decode(),
        )
    if mode in ("keyframes", "ic-lora"):
        # The video encoder is kept from stage 1 to the end of stage 2.
        return (
            *_prompt(),
            _p("stage-1", "video_encoder", "transformer", stage=0),
            _p("upsample", "video_encoder", "upsampler"),
            _p("stage-2", "video_encoder", "transformer", stage=1),
            _decode(),
        )
    if mode == "audio-to-video":
        # The output carries the input audio: no audio decoder or vocoder.
        return (
            *_prompt(),
            _p("encode-audio", "audio_encoder"),
            _p("encode-conditions", "video_encoder"),
            _p("stage-1", "transformer", stage=0),
            _p("upsample", "video_encoder", "upsampler"),
            _p("stage-2", "transformer", stage=1),
            _decode(audio=False),
        )
    if mode == "retake":
        return (
            _p("encode-conditions", "video_encoder"),
            _p("encode-audio", "audio_encoder"),
            *_prompt(),
            _p("stage-1", "transformer", stage=0),
            _decode(),
        )
    raise AssertionError(mode)


PHASES: Mapping[ModeName, tuple[Phase, ...]] = MappingProxyType({m: _phases(m) for m in MODES})


def phase_bytes(phase: Phase) -> int:
    return sum(bf16_bytes(p) for p in phase.parts)


def parts_of(mode: ModeName) -> frozenset[Part]:
    return frozenset(p for phase in PHASES[mode] for p in phase.parts)


def transformer_variants(mode: ModeName) -> int:
    """Distinct transformers (checkpoint x fused LoRAs) one run of `mode` builds, with request LoRAs
    counted as present (an IC-LoRA always is; ic-lora fuses it into stage 1 only)."""
    spec = MODES[mode]

    def variant(index: int) -> tuple[str, float | None, bool]:
        stage: Stage = spec.stages[index]
        return stage.checkpoint, stage.distilled_lora_scale, index == 0 or spec.loras_in_stage_2

    return len({variant(ph.stage) for ph in PHASES[mode] if ph.stage is not None})


def upstream_peak_bytes(mode: ModeName) -> int:
    """Weight peak of ltx-pipelines on its own: the largest phase."""
    return max(phase_bytes(ph) for ph in PHASES[mode])


def warm_device_bytes(mode: ModeName, big_on_host: bool) -> int:
    """Weights on the device during a warm run of `mode`.

    ``big_on_host=False``: every model of the mode stays on the device (each transformer variant
    too). ``True``: Gemma, the text projection and the transformers wait in host RAM and come to
    the device for their phase, so the device holds the small models plus the largest big model
    of any one phase.
    """
    small = sum(bf16_bytes(p) for p in parts_of(mode) - _BIG)
    if not big_on_host:
        return (
            small
            + bf16_bytes("text_encoder")
            + bf16_bytes("embeddings_processor")
            + transformer_variants(mode) * bf16_bytes("transformer")
        )
    return small + max(sum(bf16_bytes(p) for p in ph.parts & _BIG) for ph in PHASES[mode])
