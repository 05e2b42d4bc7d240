"""Run one request on warm components: `run(components, request, progress) -> Ltx23Output`.

Validates (torch-free, before anything loads), asks `WarmComponents` for the mode's pipeline,
calls it with the same arguments its CLI ``main()`` passes (guider parameters from
``detect_params`` / ``LTX_2_3_HQ_PARAMS``, the request's guidance as the video CFG scale,
``TilingConfig.default()`` where the CLI tiles), inside ``torch.inference_mode`` and a
`scope.run_scope` (the compat patches follow the run's Device and tick its progress), and decodes
the frames and audio to numpy. Progress is ``progress(step, total)`` once per denoising step,
counted across all stages (`ModeSpec.total_steps`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ltx_core.components.guiders import MultiModalGuiderParams
from ltx_core.model.video_vae import TilingConfig
from ltx_pipelines.utils.args import ImageConditioningInput
from ltx_pipelines.utils.constants import DEFAULT_NEGATIVE_PROMPT, LTX_2_3_HQ_PARAMS, detect_params

from .modes import ModeSpec, get
from .pipelines import WarmComponents
from .request import Ltx23Output, Ltx23Request
from .scope import ProgressFn, StepTicker, run_scope
from .validate import Checked, validate_request


def _guiders(
    spec: ModeSpec, checkpoint: str, video_cfg: float
) -> tuple[MultiModalGuiderParams, MultiModalGuiderParams]:
    params = LTX_2_3_HQ_PARAMS if spec.name == "two-stage-hq" else detect_params(checkpoint)
    return dataclasses.replace(params.video_guider_params, cfg_scale=video_cfg), params.audio_guider_params


def _images(req: Ltx23Request) -> list[ImageConditioningInput]:
    return [
        ImageConditioningInput(path=str(im.path), frame_idx=req.frame_index(im), strength=float(im.strength))
        for im in req.images
    ]


@contextlib.contextmanager
def _stereo(path: str, channels: int) -> Iterator[str]:
    """`path`, or a temporary stereo WAV of it when it is mono (the audio VAE takes 2 channels)."""
    if channels == 2:
        yield path
        return
    import av

    with tempfile.TemporaryDirectory(prefix="i2v-ltx-audio-") as tmp:
        out_path = str(Path(tmp) / "stereo.wav")
        with av.open(path) as src, av.open(out_path, "w") as dst:
            stream = next(s for s in src.streams if s.type == "audio")
            out = dst.add_stream("pcm_s16le", rate=stream.rate, layout="stereo")
            resampler = av.AudioResampler(format="s16", layout="stereo", rate=stream.rate)
            for frame in src.decode(stream):
                for converted in resampler.resample(frame):
                    dst.mux(out.encode(converted))
            for converted in resampler.resample(None):
                dst.mux(out.encode(converted))
            dst.mux(out.encode(None))
        yield out_path


def _call(
    pipe: Any, spec: ModeSpec, checked: Checked, components: WarmComponents, audio_path: str | None
) -> tuple[Any, Any]:
    """The pipeline's __call__ with the arguments its CLI main() gives it, from the request."""
    req = checked.request
    negative = DEFAULT_NEGATIVE_PROMPT if req.negative_prompt is None else req.negative_prompt
    files = components.files
    checkpoint = str(files.distilled if spec.stages[0].checkpoint == "distilled" else files.dev)
    video_guider, audio_guider = _guiders(spec, checkpoint, float(req.guidance))
    steps, images, tiling = int(req.steps), _images(req), TilingConfig.default()
    h, w, f, fps, seed = int(req.height), int(req.width), int(req.frames), float(req.fps), int(req.seed)
    if spec.name in ("two-stage", "two-stage-hq", "keyframes"):
        return pipe(
            prompt=req.prompt,
            negative_prompt=negative,
            seed=seed,
            height=h,
            width=w,
            num_frames=f,
            frame_rate=fps,
            num_inference_steps=steps,
            video_guider_params=video_guider,
            audio_guider_params=audio_guider,
            images=images,
            tiling_config=tiling,
        )
    if spec.name == "one-stage":  # its CLI passes no tiling config
        return pipe(
            prompt=req.prompt,
            negative_prompt=negative,
            seed=seed,
            height=h,
            width=w,
            num_frames=f,
            frame_rate=fps,
            num_inference_steps=steps,
            video_guider_params=video_guider,
            audio_guider_params=audio_guider,
            images=images,
        )
    if spec.name == "audio-to-video":
        return pipe(
            prompt=req.prompt,
            negative_prompt=negative,
            seed=seed,
            height=h,
            width=w,
            num_frames=f,
            frame_rate=fps,
            num_inference_steps=steps,
            video_guider_params=video_guider,
            images=images,
            audio_path=audio_path,
            audio_start_time=float(req.audio_start_s),
            audio_max_duration=f / fps,
            tiling_config=tiling,
        )
    if spec.name == "distilled":
        return pipe(
            prompt=req.prompt,
            seed=seed,
            height=h,
            width=w,
            num_frames=f,
            frame_rate=fps,
            images=images,
            tiling_config=tiling,
        )
    if spec.name == "ic-lora":
        return pipe(
            prompt=req.prompt,
            seed=seed,
            height=h,
            width=w,
            num_frames=f,
            frame_rate=fps,
            images=images,
            video_conditioning=[(str(req.reference_video), float(req.reference_strength))],
            tiling_config=tiling,
        )
    if spec.name == "retake":
        return pipe(
            video_path=str(req.video),
            prompt=req.prompt,
            start_time=float(req.start_time),
            end_time=float(req.end_time),
            seed=seed,
            negative_prompt=negative,
            num_inference_steps=steps,
            video_guider_params=video_guider,
            audio_guider_params=audio_guider,
            tiling_config=tiling,
        )
    raise AssertionError(f"no call for mode {spec.name!r}")


def _frames(chunks: Any) -> np.ndarray:
    """The decoder's uint8 (F, H, W, 3) chunks -> one float32 array in [0, 1]."""
    parts = [chunk.to("cpu").numpy() for chunk in ([chunks] if isinstance(chunks, torch.Tensor) else chunks)]
    return np.concatenate(parts, axis=0).astype(np.float32) / 255.0


def _audio(audio: Any) -> tuple[np.ndarray, int]:
    waveform = audio.waveform.detach().to("cpu", torch.float32)
    if waveform.ndim == 1:
        waveform = waveform[None]
    return np.clip(waveform.numpy(), -1.0, 1.0), int(audio.sampling_rate)


def run(
    components: WarmComponents,
    request: Ltx23Request,
    progress: ProgressFn | None = None,
    checked: Checked | None = None,
) -> Ltx23Output:
    """Generate one video (and its audio). Raises `InvalidRequestError` before loading anything.

    `checked` lets a caller that already ran `validate_request` (the engine, at submit time) skip
    the probes; otherwise the request is validated here against `components.device.kind`.
    """
    checked = checked if checked is not None else validate_request(request, components.device.kind)
    req = checked.request
    spec = get(req.mode)
    components.files.require(spec.name)
    ticker = StepTicker(total=spec.total_steps(int(req.steps)), callback=progress)
    channels = checked.audio.channels if checked.audio is not None else 2
    with components.lock, contextlib.ExitStack() as stack:
        audio_path = stack.enter_context(_stereo(req.audio, channels)) if req.audio is not None else None
        pipe = components.pipeline(spec.name, req.loras, quantization=req.quantization)
        try:
            with run_scope(components.device, ticker), torch.inference_mode():
                video, audio = _call(pipe, spec, checked, components, audio_path)
                frames = _frames(video)  # the decoder is lazy: decoding runs here
                waveform, rate = _audio(audio)
        finally:
            components.park()
    notes = list(checked.notes)
    if ticker.done != ticker.total:
        notes.append(f"progress: {ticker.done} denoising steps ran, {ticker.total} expected")
    return Ltx23Output(frames=frames, audio=waveform, sample_rate=rate, fps=float(req.fps), notes=notes)
