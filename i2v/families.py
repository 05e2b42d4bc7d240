"""How each family's diffusers pipeline is called and what it returns: one adapter per family.

The request is already validated against the catalogue; this only spells it the way each
pipeline's `__call__` wants it (diffusers 0.42.1 signatures) and pulls frames (+ audio) out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from i2v.catalogue.spec import ModelSpec
from i2v.request import GenerationRequest


@dataclass
class Output:
    frames: Any  # numpy (F, H, W, 3) float in [0, 1]
    audio: Any = None  # numpy (channels, samples) float in [-1, 1] or None
    audio_sample_rate: int | None = None


def prepare_pipeline(family: str, pipe: Any) -> Any:
    """Compatibility fixes a family's pipeline needs after loading (diffusers 0.42.1, transformers 5)."""
    if family == "i2vgen-xl":
        # transformers 5 dropped CLIPTextModel.text_model; I2VGen-XL's encode_prompt still reads
        # `text_encoder.text_model.final_layer_norm` (clip_skip defaults to 1). An alias in the
        # instance __dict__: no submodule, no state-dict keys, nothing saved.
        encoder = getattr(pipe, "text_encoder", None)
        if encoder is not None and not hasattr(encoder, "text_model"):
            object.__setattr__(encoder, "text_model", encoder)
    return pipe


def call_kwargs(
    spec: ModelSpec, request: GenerationRequest, image: Any, *, generator: Any, decode_chunk: int
) -> dict[str, Any]:
    common = dict(
        image=image,
        height=request.height,
        width=request.width,
        num_frames=request.frames,
        num_inference_steps=request.steps,
        generator=generator,
        output_type="np",
    )
    family = spec.family
    if family == "i2vgen-xl":
        return common | dict(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            guidance_scale=request.guidance,
            target_fps=request.fps,
            decode_chunk_size=decode_chunk,
        )
    if family == "svd":
        # SVD conditions on fps-1 (diffusers' docstring: "fps ... after generation, minus one").
        return common | dict(
            max_guidance_scale=max(request.guidance, 1.0),
            min_guidance_scale=1.0,
            fps=max(request.fps - 1, 1),
            decode_chunk_size=decode_chunk,
        )
    if family == "ltx-video":
        return common | dict(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            guidance_scale=request.guidance,
            frame_rate=request.fps,
        )
    if family == "ltx-2":
        return common | dict(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            guidance_scale=request.guidance,
            frame_rate=float(request.fps),
        )
    if family in ("wan2.1", "wan2.2"):
        return common | dict(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            guidance_scale=request.guidance,
        )
    raise ValueError(f"family {family!r} has no call adapter")


def supports_step_callback(pipe: Any) -> bool:
    import inspect

    return "callback_on_step_end" in inspect.signature(pipe.__call__).parameters


def extract(spec: ModelSpec, result: Any, pipe: Any) -> Output:
    import numpy as np

    frames = result.frames
    if isinstance(frames, (list, tuple)):
        frames = frames[0]
    frames = np.asarray(frames)
    if frames.ndim == 5:  # (batch, frames, H, W, C)
        frames = frames[0]
    audio = getattr(result, "audio", None)
    rate = None
    if audio is not None:
        if hasattr(audio, "detach"):
            audio = audio.detach().float().cpu().numpy()
        audio = np.asarray(audio)
        while audio.ndim > 2:
            audio = audio[0]
        # diffusers' LTX-2 docs: the waveform comes out of the vocoder at its output_sampling_rate.
        rate = int(pipe.vocoder.config.output_sampling_rate)
    return Output(frames=frames.astype("float32"), audio=audio, audio_sample_rate=rate)
