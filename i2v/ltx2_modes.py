"""LTX-2 modes at run time: the catalogue's `LTX2_MODES` recipes run through diffusers 0.42.1.

Import-safe: torch and diffusers are imported inside the functions. The engine calls `mode_files`
before it plans or loads anything (a missing upsampler or distilled weights is refused there), and
`run` instead of calling the pipeline itself. Stage 1 runs on the engine's warm pipeline, or on a
pipeline of another class built from the same component objects, so nothing is loaded twice; the
x2 latent upsampler is loaded once per warm pipeline and shares its VAE.

| mode       | diffusers classes                                                   | inputs                          |
| ---------- | ------------------------------------------------------------------- | ------------------------------- |
| one-stage  | LTX2ImageToVideoPipeline                                            | image                           |
| two-stage  | LTX2ImageToVideoPipeline -> LTX2LatentUpsamplePipeline -> same      | image                           |
| distilled  | the same three, distilled transformer or distilled LoRA, no CFG     | image                           |
| keyframes  | LTX2ConditionPipeline (LTX2VideoCondition index 0 and -1) -> upsample -> same | image, last_image     |
| ic-lora    | LTX2InContextPipeline (LTX2ReferenceCondition) -> upsample -> same without the reference | image (optional), reference_video, IC-LoRA |

two-stage-hq, audio-to-video and retake are refused by request validation with the recipe's reason.

Files the modes read from the model folder (the hub layout of ``Lightricks/LTX-2``):

- ``latent_upsampler/``: every two-stage mode; missing is an error naming it.
- ``ltx-2-19b-distilled-lora-384.safetensors``: stage 2's distilled LoRA. When it is missing, stage 2
  runs without it and the plan notes say so: the refine still brings the half-size stage-1 latents
  to the requested size with the recipe's 3 guidance-free steps, only with the dev weights' softer
  detail. Refusing would take the recommended mode away from anyone who fetched the diffusers
  sub-folders only (the LoRA is a single file at the repository root).
- mode distilled: ``transformer_distilled/`` (the distilled transformer in diffusers format; the
  engine loads it in place of ``transformer/``), else the distilled LoRA above at 1.0 in both stages
  (Lightricks: the LoRA is the dev -> distilled difference); neither is an error naming both.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from i2v.catalogue.spec import ModelSpec
from i2v.lora import LoraRef, activate
from i2v.request import GenerationRequest, InvalidRequestError, UnsupportedModeError, mode_of

log = logging.getLogger("i2v.ltx2_modes")

UPSAMPLER_SUBFOLDER = "latent_upsampler"
DISTILLED_TRANSFORMER = "transformer_distilled"
DISTILLED_LORA = "ltx-2-19b-distilled-lora-384.safetensors"
# diffusers' LTX-2 docs: set_adapters("stage_2_distilled", 1.0). (ltx-pipelines' examples pass 0.8
# with the LTX-2.3 LoRA.)
DISTILLED_LORA_SCALE = 1.0
_UPSAMPLER_CLS = "diffusers.pipelines.ltx2.LTX2LatentUpsamplerModel"


class MissingModeWeightsError(FileNotFoundError):
    """A mode needs a file the model folder does not have."""


@dataclass(frozen=True)
class ModeFiles:
    """What `mode_files` found for one request: loaded by the engine (transformer) or by `run`."""

    folder: Path
    mode: str
    transformer_subfolder: str | None = None  # load the denoiser from here instead of transformer/
    distilled_lora: Path | None = None  # present in the folder
    notes: tuple[str, ...] = ()


def _staged(recipe: dict[str, Any]) -> bool:
    return "stage2" in recipe


def mode_files(spec: ModelSpec, request: GenerationRequest, folder: Path) -> ModeFiles:
    """Check the files the request's mode needs; raises `MissingModeWeightsError` naming what is missing."""
    mode = mode_of(spec, request)
    recipe = spec.modes[mode]
    if not recipe.get("supported"):
        raise UnsupportedModeError(mode, recipe.get("reason", ""))
    folder = Path(folder)
    lora = folder / recipe.get("stage2_lora", DISTILLED_LORA)
    lora = lora if lora.is_file() else None
    if not _staged(recipe):
        return ModeFiles(folder, mode)
    upsampler = folder / recipe.get("upsampler_subfolder", UPSAMPLER_SUBFOLDER)
    if not (upsampler / "config.json").is_file():
        raise MissingModeWeightsError(
            f"mode {mode!r} needs the x2 latent upsampler, and {upsampler}/ is missing (Lightricks/LTX-2 "
            f"sub-folder {upsampler.name}: config.json + safetensors)"
        )
    if mode == "distilled":
        distilled = folder / DISTILLED_TRANSFORMER
        if (distilled / "config.json").is_file():
            return ModeFiles(
                folder,
                mode,
                transformer_subfolder=DISTILLED_TRANSFORMER,
                notes=(f"distilled: transformer from {DISTILLED_TRANSFORMER}/",),
            )
        if lora is not None:
            return ModeFiles(
                folder,
                mode,
                distilled_lora=lora,
                notes=(
                    f"distilled: dev weights + {lora.name} at {DISTILLED_LORA_SCALE:g} in both stages "
                    f"(no {DISTILLED_TRANSFORMER}/ in {folder})",
                ),
            )
        raise MissingModeWeightsError(
            f"mode 'distilled' needs distilled weights, and {folder} has neither {DISTILLED_TRANSFORMER}/ (the "
            f"distilled transformer in diffusers format: config.json + safetensors, e.g. the transformer/ of a "
            f"diffusers conversion of ltx-2-19b-distilled) nor {DISTILLED_LORA} (Lightricks/LTX-2; at "
            f"{DISTILLED_LORA_SCALE:g} it turns the dev weights into the distilled model)"
        )
    if lora is None:
        return ModeFiles(
            folder,
            mode,
            notes=(
                f"{mode}: stage 2 runs without the distilled LoRA: {folder / recipe.get('stage2_lora', DISTILLED_LORA)} "
                "is missing (fetch it from Lightricks/LTX-2 for the upstream recipe; without it stage 2 is the dev "
                "weights' 3 guidance-free steps, with softer detail)",
            ),
        )
    return ModeFiles(folder, mode, distilled_lora=lora)


def total_steps(spec: ModelSpec, request: GenerationRequest) -> int:
    """Denoising steps the request runs in all (progress total)."""
    mode = mode_of(spec, request)
    recipe = spec.modes.get(mode, {}) if mode else {}
    if not _staged(recipe):
        return request.steps
    stage1 = recipe.get("stage1", {})
    first = len(stage1["sigmas"]) if "sigmas" in stage1 else request.steps
    return first + int(recipe["stage2"]["num_inference_steps"])


# --- running ------------------------------------------------------------------------------------

# Per warm pipeline: pipelines of other classes over its components, and the upsample pipeline.
# Dropped with the pipeline when the engine unloads it.
_DERIVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class _Run:
    pipe: Any
    spec: ModelSpec
    request: GenerationRequest
    recipe: dict[str, Any]
    kwargs: dict[str, Any]  # i2v.families.call_kwargs (+ the step callback)
    files: ModeFiles
    notes: list[str] = field(default_factory=list)

    @property
    def image(self) -> Any:
        return self.kwargs.get("image")

    def base(self) -> dict[str, Any]:
        """The call kwargs shared by every stage: no image (pipelines take it differently)."""
        return {k: v for k, v in self.kwargs.items() if k != "image"} | dict(
            self.recipe.get("call_kwargs", {})
        )


def run(
    pipe: Any, spec: ModelSpec, request: GenerationRequest, kwargs: dict[str, Any], files: ModeFiles
) -> tuple[Any, list[str]]:
    """Run ``request`` in its mode on the warm ``pipe``; returns the pipeline output and plan notes."""
    recipe = spec.modes[files.mode]
    job = _Run(pipe, spec, request, recipe, kwargs, files, list(files.notes))
    output = RUNNERS[files.mode](job)
    for note in job.notes:
        log.info("%s", note)
    return output, job.notes


def _one_stage(job: _Run) -> Any:
    activate(job.pipe, job.request.loras)
    return job.pipe(image=job.image, **job.base())


def _two_stage(job: _Run) -> Any:
    user = list(job.request.loras)
    stage2 = user + _distilled(job)
    return _stages(job, job.pipe, {"image": job.image}, {"image": job.image}, user, stage2)


def _distilled_mode(job: _Run) -> Any:
    # With transformer_distilled/ the engine loaded it as the denoiser; otherwise the LoRA distils.
    loras = list(job.request.loras) + _distilled(job)
    fixed = len(job.recipe["stage1"]["sigmas"]), job.recipe["stage2"]["num_inference_steps"]
    if job.request.steps != fixed[0]:
        job.notes.append(
            f"distilled: `steps` = {job.request.steps} not used; the distilled schedule is fixed "
            f"({fixed[0]} + {fixed[1]} steps, no guidance)"
        )
    return _stages(job, job.pipe, {"image": job.image}, {"image": job.image}, loras, loras)


def _keyframes(job: _Run) -> Any:
    from diffusers.pipelines.ltx2 import LTX2VideoCondition

    from i2v.images import load_image

    last = load_image(job.request.last_image)
    conditions = [
        LTX2VideoCondition(frames=job.image, index=0, strength=1.0),
        LTX2VideoCondition(frames=last, index=-1, strength=1.0),
    ]
    pipe = derived(job.pipe, job.recipe["pipeline_cls"])
    user = list(job.request.loras)
    return _stages(
        job, pipe, {"conditions": conditions}, {"conditions": conditions}, user, user + _distilled(job)
    )


def _ic_lora(job: _Run) -> Any:
    from diffusers.pipelines.ltx2 import LTX2ReferenceCondition, LTX2VideoCondition

    ic_loras = list(job.request.loras)
    reference = read_reference(job.request.reference_video, job.request.frames, job.spec.latent[1])
    frame_conditions = (
        [LTX2VideoCondition(frames=job.image, index=0, strength=1.0)] if job.image is not None else None
    )
    stage1 = {
        "conditions": frame_conditions,
        "reference_conditions": [LTX2ReferenceCondition(frames=reference, strength=1.0)],
        "reference_downscale_factor": reference_downscale_factor(ic_loras),
    }
    pipe = derived(job.pipe, job.recipe["pipeline_cls"])
    # ltx-pipelines ic_lora: stage 2 refines without the IC-LoRA and without the reference.
    return _stages(
        job, pipe, stage1, {"conditions": frame_conditions}, ic_loras, _distilled(job), keep=ic_loras
    )


RUNNERS = {
    "one-stage": _one_stage,
    "two-stage": _two_stage,
    "distilled": _distilled_mode,
    "keyframes": _keyframes,
    "ic-lora": _ic_lora,
}


def _distilled(job: _Run) -> list[LoraRef]:
    lora = job.files.distilled_lora
    return [LoraRef(str(lora), DISTILLED_LORA_SCALE)] if lora is not None else []


def _stages(
    job: _Run,
    pipe: Any,
    inputs1: dict[str, Any],
    inputs2: dict[str, Any],
    loras1: list[LoraRef],
    loras2: list[LoraRef],
    keep: list[LoraRef] | None = None,
) -> Any:
    """Stage 1 at the recipe's fraction of the size -> x2 latent upsample -> stage 2 at the requested size."""
    recipe, request = job.recipe, job.request
    keep = list(keep or []) + _distilled(job)
    factor = recipe["stage1_size_factor"]
    stage1 = dict(recipe["stage1"])
    if "sigmas" in stage1:  # a fixed (distilled) schedule replaces steps and guidance
        stage1["sigmas"] = list(stage1["sigmas"])
    else:  # guided: the request's steps and guidance
        stage1.pop("num_inference_steps", None)
        stage1.pop("guidance_scale", None)
    height1, width1 = round(request.height * factor), round(request.width * factor)
    activate(pipe, loras1, keep=keep)
    latents, audio_latents = pipe(
        **{**job.base(), **inputs1, **stage1, "height": height1, "width": width1, "return_dict": False}
    )
    upsampled = upsample(job, latents)
    stage2 = dict(recipe["stage2"])
    overrides = stage2.pop("scheduler_overrides", {})
    stage2["sigmas"] = list(stage2["sigmas"])
    activate(pipe, loras2, keep=keep)
    job.notes.append(
        f"{job.files.mode}: stage 1 at {width1}x{height1}, x2 latent upsample, stage 2 at "
        f"{request.width}x{request.height} with "
        + (", ".join(f"{Path(r.path).name} at {r.scale:g}" for r in loras2) if loras2 else "no LoRA")
    )
    with _scheduler(pipe, overrides):
        return pipe(
            **{**job.base(), **inputs2, **stage2, "latents": upsampled, "audio_latents": audio_latents}
        )


@contextmanager
def _scheduler(pipe: Any, overrides: dict[str, Any]) -> Iterator[None]:
    """Stage 2's scheduler (no dynamic shifting: the distilled sigmas are used as they are), then back."""
    if not overrides:
        yield
        return
    original = pipe.scheduler
    pipe.scheduler = type(original).from_config(original.config, **overrides)
    try:
        yield
    finally:
        pipe.scheduler = original


def derived(pipe: Any, dotted: str) -> Any:
    """``pipe``'s components under another pipeline class (cached per warm pipeline; no weights loaded)."""
    import inspect

    from i2v.tiny.build import resolve

    cls = resolve(dotted)
    if type(pipe) is cls:
        return pipe
    cache = _DERIVED.setdefault(pipe, {})
    if dotted not in cache:
        accepted = inspect.signature(cls.__init__).parameters
        other = cls(**{name: part for name, part in pipe.components.items() if name in accepted})
        other.set_progress_bar_config(disable=True)
        cache[dotted] = other
    return cache[dotted]


def upsample(job: _Run, latents: Any) -> Any:
    """x2 spatial upsample of stage-1 latents with the folder's latent_upsampler and ``pipe``'s VAE."""
    from i2v.tiny.build import resolve

    cache = _DERIVED.setdefault(job.pipe, {})
    key = ("upsample", str(job.files.folder))
    if key not in cache:
        vae = job.pipe.vae
        model = resolve(_UPSAMPLER_CLS).from_pretrained(
            job.files.folder,
            subfolder=job.recipe.get("upsampler_subfolder", UPSAMPLER_SUBFOLDER),
            torch_dtype=vae.dtype,
            use_safetensors=True,
        )
        model.to(job.pipe._execution_device)
        upsampler = resolve(job.recipe["upsampler_pipeline_cls"])(vae=vae, latent_upsampler=model)
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


__all__ = [
    "DISTILLED_LORA",
    "DISTILLED_TRANSFORMER",
    "MissingModeWeightsError",
    "ModeFiles",
    "RUNNERS",
    "UPSAMPLER_SUBFOLDER",
    "derived",
    "mode_files",
    "read_reference",
    "reference_downscale_factor",
    "run",
    "total_steps",
    "upsample",
]
