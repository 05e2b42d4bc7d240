"""LTX-2 modes at run time through diffusers 0.42.1 (the typed table is `i2v.families.ltx2.modes`).

Stage 1 runs on the engine's warm pipeline, or on a pipeline of another class built from the same
component objects (`derived`), so nothing is loaded twice; the x2 latent upsampler is loaded once
per warm pipeline and shares its VAE. Both are dropped with the pipeline when the engine unloads it.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from i2v.families.base import ModeFiles, resolve_class
from i2v.families.ltx2.modes import (
    DISTILLED_LORA_SCALE,
    LTX2_0_CALL_KWARGS,
    MODES,
    UPSAMPLER_SUBFOLDER,
    DiffusersLtx2Mode,
    Sampling,
)
from i2v.lora import LoraRef, activate
from i2v.request import InvalidRequestError

if TYPE_CHECKING:
    from i2v.request import GenerationRequest

log = logging.getLogger("i2v.families.ltx2")

_UPSAMPLER_CLS = "diffusers.pipelines.ltx2.LTX2LatentUpsamplerModel"
_UPSAMPLE_PIPELINE_CLS = "diffusers.LTX2LatentUpsamplePipeline"

# Per warm pipeline: pipelines of other classes over its components, and the upsample pipeline.
_DERIVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class Job:
    """One request in its mode: the warm pipeline, the shared call kwargs, the files found for it."""

    pipe: Any
    request: GenerationRequest
    mode: DiffusersLtx2Mode
    kwargs: dict[str, Any]  # the family's call kwargs (+ the step callback)
    files: ModeFiles
    temporal_factor: int
    notes: list[str] = field(default_factory=list)

    @property
    def image(self) -> Any:
        return self.kwargs.get("image")

    def base(self) -> dict[str, Any]:
        """The call kwargs shared by every stage: no image (pipelines take it differently)."""
        return {k: v for k, v in self.kwargs.items() if k != "image"} | LTX2_0_CALL_KWARGS

    def distilled_loras(self) -> list[LoraRef]:
        lora = self.files.paths.get("distilled_lora")
        return [LoraRef(str(lora), DISTILLED_LORA_SCALE)] if lora is not None else []


def run(job: Job) -> Any:
    """Run the job's mode; the pipeline output (frames, audio). Notes land in ``job.notes``."""
    output = RUNNERS[job.mode.name](job)
    for note in job.notes:
        log.info("%s", note)
    return output


def _one_stage(job: Job) -> Any:
    activate(job.pipe, job.request.loras)
    return job.pipe(image=job.image, **job.base())


def _two_stage(job: Job) -> Any:
    user = list(job.request.loras)
    return _stages(
        job, job.pipe, {"image": job.image}, {"image": job.image}, user, user + job.distilled_loras()
    )


def _distilled(job: Job) -> Any:
    # With transformer_distilled/ the engine loaded it as the denoiser; otherwise the LoRA distils.
    loras = list(job.request.loras) + job.distilled_loras()
    first, second = job.mode.stage1.steps(job.request.steps), job.mode.stage2.steps(0)  # type: ignore[union-attr]
    if job.request.steps != first:
        job.notes.append(
            f"distilled: `steps` = {job.request.steps} not used; the distilled schedule is fixed "
            f"({first} + {second} steps, no guidance)"
        )
    return _stages(job, job.pipe, {"image": job.image}, {"image": job.image}, loras, loras)


def _keyframes(job: Job) -> Any:
    from diffusers.pipelines.ltx2 import LTX2VideoCondition

    from i2v.images import load_image

    last = load_image(job.request.last_image)
    conditions = [
        LTX2VideoCondition(frames=job.image, index=0, strength=1.0),
        LTX2VideoCondition(frames=last, index=-1, strength=1.0),
    ]
    pipe = derived(job.pipe, job.mode.pipeline_cls)
    user = list(job.request.loras)
    inputs = {"conditions": conditions}
    return _stages(job, pipe, inputs, inputs, user, user + job.distilled_loras())


def _ic_lora(job: Job) -> Any:
    from diffusers.pipelines.ltx2 import LTX2ReferenceCondition, LTX2VideoCondition

    ic_loras = list(job.request.loras)
    reference = read_reference(job.request.reference_video, job.request.frames, job.temporal_factor)
    frame_conditions = (
        [LTX2VideoCondition(frames=job.image, index=0, strength=1.0)] if job.image is not None else None
    )
    stage1 = {
        "conditions": frame_conditions,
        "reference_conditions": [LTX2ReferenceCondition(frames=reference, strength=1.0)],
        "reference_downscale_factor": reference_downscale_factor(ic_loras),
    }
    pipe = derived(job.pipe, job.mode.pipeline_cls)
    # ltx-pipelines ic_lora: stage 2 refines without the IC-LoRA and without the reference.
    return _stages(
        job, pipe, stage1, {"conditions": frame_conditions}, ic_loras, job.distilled_loras(), keep=ic_loras
    )


RUNNERS: dict[str, Callable[[Job], Any]] = {
    "one-stage": _one_stage,
    "two-stage": _two_stage,
    "distilled": _distilled,
    "keyframes": _keyframes,
    "ic-lora": _ic_lora,
}
assert set(RUNNERS) == {name for name, mode in MODES.items() if mode.supported}


def _stages(
    job: Job,
    pipe: Any,
    inputs1: dict[str, Any],
    inputs2: dict[str, Any],
    loras1: list[LoraRef],
    loras2: list[LoraRef],
    keep: list[LoraRef] | None = None,
) -> Any:
    """Stage 1 at the mode's fraction of the size -> x2 latent upsample -> stage 2 at the requested size."""
    mode, request = job.mode, job.request
    stage2: Sampling = mode.stage2  # type: ignore[assignment]
    keep = list(keep or []) + job.distilled_loras()
    height1, width1 = round(request.height * mode.size_factor), round(request.width * mode.size_factor)
    activate(pipe, loras1, keep=keep)
    stage1 = {**job.base(), **inputs1, **mode.stage1.call_kwargs(), "output_type": "latent"}
    latents, audio_latents = pipe(**{**stage1, "height": height1, "width": width1, "return_dict": False})
    upsampled = upsample(job, latents)
    activate(pipe, loras2, keep=keep)
    used = ", ".join(f"{Path(r.path).name} at {r.scale:g}" for r in loras2) if loras2 else "no LoRA"
    job.notes.append(
        f"{mode.name}: stage 1 at {width1}x{height1}, x2 latent upsample, stage 2 at "
        f"{request.width}x{request.height} with {used}"
    )
    with _scheduler(pipe, stage2):
        return pipe(
            **{
                **job.base(),
                **inputs2,
                **stage2.call_kwargs(),
                "latents": upsampled,
                "audio_latents": audio_latents,
            }
        )


@contextmanager
def _scheduler(pipe: Any, sampling: Sampling) -> Iterator[None]:
    """Stage 2's scheduler (no dynamic shifting: the distilled sigmas are used as they are), then back."""
    if sampling.dynamic_shift:
        yield
        return
    original = pipe.scheduler
    pipe.scheduler = type(original).from_config(
        original.config, use_dynamic_shifting=False, shift_terminal=None
    )
    try:
        yield
    finally:
        pipe.scheduler = original


def derived(pipe: Any, dotted: str) -> Any:
    """``pipe``'s components under another pipeline class (cached per warm pipeline; no weights loaded)."""
    import inspect

    cls = resolve_class(dotted)
    if type(pipe) is cls:
        return pipe
    cache = _DERIVED.setdefault(pipe, {})
    if dotted not in cache:
        accepted = inspect.signature(cls.__init__).parameters
        other = cls(**{name: part for name, part in pipe.components.items() if name in accepted})
        other.set_progress_bar_config(disable=True)
        cache[dotted] = other
    return cache[dotted]


def upsample(job: Job, latents: Any) -> Any:
    """x2 spatial upsample of stage-1 latents with the folder's latent_upsampler and the pipeline's VAE."""
    cache = _DERIVED.setdefault(job.pipe, {})
    key = ("upsample", str(job.files.folder))
    if key not in cache:
        vae = job.pipe.vae
        model = resolve_class(_UPSAMPLER_CLS).from_pretrained(
            job.files.folder, subfolder=UPSAMPLER_SUBFOLDER, torch_dtype=vae.dtype, use_safetensors=True
        )
        model.to(job.pipe._execution_device)
        upsampler = resolve_class(_UPSAMPLE_PIPELINE_CLS)(vae=vae, latent_upsampler=model)
        upsampler.set_progress_bar_config(disable=True)
        cache[key] = upsampler
    return cache[key](latents=latents, output_type="latent", return_dict=False)[0]


def read_reference(path: str | None, frames: int, temporal_factor: int = 8) -> list[Any]:
    """The first frames of the reference mp4 as PIL images: at most ``frames``, trimmed to k*8+1.

    Decoded with PyAV and stopped after ``frames`` frames (a long reference is not read whole).
    """
    import av
    from PIL import Image

    if path is None:
        raise InvalidRequestError("reference_video", None, "mode 'ic-lora' needs it (--reference-video PATH)")
    images: list[Any] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InvalidRequestError("reference_video", path, "has no video stream")
            for frame in container.decode(video=0):
                images.append(Image.fromarray(frame.to_ndarray(format="rgb24")))
                if len(images) >= frames:
                    break
    except av.FFmpegError as exc:
        raise InvalidRequestError("reference_video", path, f"is not a readable video: {exc}") from None
    if not images:
        raise InvalidRequestError("reference_video", path, "has no frames")
    keep = (len(images) - 1) // temporal_factor * temporal_factor + 1
    return images[:keep]


def reference_downscale_factor(loras: list[LoraRef]) -> int:
    """IC-LoRAs trained on downscaled references say so in their safetensors metadata (one value for all)."""
    from safetensors import safe_open

    factors = set()
    for ref in loras:
        with safe_open(ref.path, framework="pt") as handle:
            value = (handle.metadata() or {}).get("reference_downscale_factor")
        if value is not None:
            factors.add(int(float(value)))
    if len(factors) > 1:
        raise InvalidRequestError(
            "lora",
            ", ".join(r.path for r in loras),
            f"the IC-LoRAs disagree on reference_downscale_factor ({sorted(factors)})",
        )
    return factors.pop() if factors else 1


__all__ = ["RUNNERS", "Job", "derived", "read_reference", "reference_downscale_factor", "run", "upsample"]
