"""What every family adapter is: levers and modes as data, the load/run path as a few methods.

Import-safe and torch-free at import: the class attributes (`Levers`, `Mode` tables) are read by the
planner, request validation, `provision` and the API process, none of which may import torch. The
methods that build or run a pipeline import torch and diffusers when called.

`FamilyAdapter` is the diffusers default: `from_pretrained` into the spec's pipeline class, the
plan applied with diffusers' own mechanisms (`i2v.apply`), one pipeline call with the step
callback, frames (+ audio) pulled out. A family overrides only what differs (I2VGen-XL's
compatibility alias and scheduler-wrapped progress, SVD's call signature, LTX-2's modes, ...).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from i2v.parallel.layout import CfgSplit

if TYPE_CHECKING:
    from i2v.catalogue.assets import Asset
    from i2v.catalogue.spec import ModelSpec, Preset
    from i2v.devices import Device
    from i2v.memory.model import PhaseEstimate
    from i2v.memory.phases import PhaseSetting
    from i2v.planner import Plan
    from i2v.progress import StepTracker
    from i2v.request import GenerationRequest

Backend = Literal["diffusers", "ltx-pipelines"]
CompileMode = Literal["regional", "whole", "none"]
# How a device's attention choice reaches the denoiser: diffusers' `set_attention_backend` (transformers),
# `enable_npu_flash_attention()` (UNets, whose attention processors ignore backends), or not at all.
AttentionHook = Literal["backend", "npu-flash", "none"]
# Media a request can carry besides the main image, each taken by the modes that name it.
OffloadStrategy = Literal["model-offload", "group-offload", "sequential-offload"]
MediaInput = Literal["last_image", "keyframes", "audio", "video", "reference_video"]
MEDIA_INPUTS: tuple[MediaInput, ...] = ("last_image", "keyframes", "audio", "video", "reference_video")


# How classifier-free guidance reaches the denoiser: one call on a batch of 2 (UNets, LTX), or one
# batch-1 call per branch (Wan: conditional then unconditional).
CfgForm = Literal["batch", "passes"]


@dataclass(frozen=True)
class Levers:
    """Which of the planner's levers a family's pipeline really has (each checked against diffusers 0.42.1)."""

    lora: bool = False  # `load_lora_weights` on the pipeline
    decode_chunk: bool = False  # `decode_chunk_size` is a call argument
    vae_tiling: bool = False  # `pipe.vae.enable_tiling()`
    forward_chunking: bool = False  # feed-forward chunking on the denoiser's blocks (i2v.levers)
    cache_hooks: bool = False  # diffusers' FirstBlockCache works on the denoiser
    compile: CompileMode = "none"  # regional: `compile_repeated_blocks`; whole: torch.compile(denoiser)
    attention: AttentionHook = "backend"
    # The planner's offload strategies the pipeline can run: diffusers' model/group/sequential hooks, or
    # (Lightricks' own backend) model offload only: its big models wait in host RAM between phases.
    offload: tuple[OffloadStrategy, ...] = ("model-offload", "group-offload", "sequential-offload")
    fp8_weights: bool = False  # `enable_layerwise_casting` (float8 storage) on the denoisers
    cfg: CfgForm = "batch"
    context_parallel: bool = False  # diffusers' `enable_parallelism` works on the denoisers (i2v.parallel)
    cfg_parallel: bool = False  # the CFG pair (`cfg`) can run on two cards (i2v.parallel.shard.CfgParallel)


@dataclass(frozen=True)
class Mode:
    """One way a family runs a request (LTX-2's pipelines); families without modes have none.

    ``needs``: media the mode cannot run without; ``takes``: media it accepts (``needs`` included).
    ``image``: whether the main image is required, optional (ic-lora is video-to-video, LTX-2.3's
    two-stage also text-to-video) or unused (a retake regenerates part of its source video).
    An unsupported mode stays in the table with the ``reason``, so asking for it says why.
    """

    name: str
    summary: str
    needs: frozenset[MediaInput] = frozenset()
    takes: frozenset[MediaInput] = frozenset()
    image: Literal["required", "optional", "unused"] = "required"
    needs_lora: bool = False  # ic-lora: the IC-LoRA is the point of the mode
    needs_prompt: bool = False  # checked when a request is about to run (plans are made without one)
    stages: int = 1
    supported: bool = True
    reason: str = ""

    def accepts(self, name: MediaInput) -> bool:
        return name in self.takes or name in self.needs


@dataclass
class Output:
    """What a run produced: frames (F, H, W, 3) float in [0, 1], audio (channels, samples) in [-1, 1]."""

    frames: Any
    audio: Any = None
    audio_sample_rate: int | None = None
    fps: float | None = None  # None: the request's (a retake keeps its source video's rate)
    notes: list[str] = field(default_factory=list)
    # Weights a backend built lazily during this run (ltx-pipelines: on first use): seconds and bytes read.
    load_s: float = 0.0
    weights_read_bytes: int | None = None


@dataclass(frozen=True)
class ModeFiles:
    """Files a request's mode needs beyond the pipeline's own, found before anything is planned or loaded."""

    folder: Path
    mode: str | None
    load_variant: str | None = None  # part of the warm-pipeline key (e.g. another denoiser sub-folder)
    paths: Mapping[str, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass
class RunContext:
    """Everything a run needs besides the request: the device, the seeded generator, the plan's decode
    chunk (None: the pipeline's own default, as plain diffusers runs it), the progress tracker and the
    mode's files."""

    device: Device
    generator: Any
    tracker: StepTracker | None
    decode_chunk: int | None
    files: ModeFiles | None = None
    output_type: str = "np"  # "pt" keeps frames as tensors (the fake-tensor measurement, i2v.memory)
    cfg_position: int = 0  # which CFG pass this card computes first (i2v.parallel; 0 on one card)


class MissingModeWeightsError(FileNotFoundError):
    """A mode needs a file the model folder does not have."""


def resolve_class(dotted: str) -> Any:
    """``"diffusers.WanTransformer3DModel"`` -> the class (imports the library on first use)."""
    module_name, _, attr = dotted.rpartition(".")
    if not module_name:
        raise ValueError(f"expected 'library.ClassName', got {dotted!r}")
    return getattr(importlib.import_module(module_name), attr)


class FamilyAdapter:
    """One family (and backend). Subclasses set the class attributes and override what differs."""

    family: ClassVar[str]
    backend: ClassVar[Backend] = "diffusers"
    levers: ClassVar[Levers] = Levers()
    denoiser_names: ClassVar[tuple[str, ...]] = ("transformer",)
    modes: ClassVar[Mapping[str, Mode]] = {}
    default_mode: ClassVar[str | None] = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # What a fetched model folder of this family holds (said when it is missing).
    weights_layout: ClassVar[str] = "model_index.json"

    def weights_present(self, folder: Path) -> bool:
        """Whether ``folder`` holds a fetched model of this family (diffusers: ``model_index.json``)."""
        return (folder / self.weights_layout).is_file()

    # --- torch-free: validation and the steps a request runs -------------------------------------------

    def mode(self, request: GenerationRequest) -> Mode | None:
        name = request.mode if request.mode is not None else self.default_mode
        return self.modes.get(name) if name is not None else None

    def validate(self, spec: ModelSpec, request: GenerationRequest) -> None:
        """Family rules beyond the catalogue's constraints (the request is otherwise valid)."""

    def total_steps(self, spec: ModelSpec, request: GenerationRequest) -> int:
        """Denoising steps the request runs in all (the progress total)."""
        return request.steps

    @property
    def cfg_split(self) -> CfgSplit:
        """How the CFG pair splits over two cards: two forwards a step ("separate"), halves of the batch
        ("batched"), or not at all ("none")."""
        if not self.levers.cfg_parallel:
            return "none"
        return "separate" if self.levers.cfg == "passes" else "batched"

    def attention_heads(self, spec: ModelSpec) -> int:
        """Attention heads of the first denoiser (the Ulysses degree must divide them)."""
        config = spec.architecture.component(self.denoiser_names[0]).config
        heads = config.get("num_attention_heads")
        return heads if isinstance(heads, int) else 1  # UNets: None or one per block; no context parallel

    def uses_cfg(self, request: GenerationRequest) -> bool:
        """Whether the pipeline runs a guided (conditional + unconditional) pass for ``request``."""
        return request.guidance > 1.0

    def mode_files(self, spec: ModelSpec, request: GenerationRequest, folder: Path) -> ModeFiles | None:
        """Check the files the request's mode needs (raise `MissingModeWeightsError` naming them)."""
        return None

    def preset_missing(self, spec: ModelSpec, preset: Preset, models_dir: Path) -> str | None:
        """Why ``preset`` cannot run from ``models_dir`` (its LoRA files are not there), or None."""
        missing = [
            f"{lora.asset}/{lora.file}"
            for lora in preset.loras
            if not (models_dir / lora.asset / lora.file).is_file()
        ]
        if missing:
            return f"{', '.join(missing)} not in {models_dir}"
        return None

    def denoiser_calls(self, spec: ModelSpec, request: GenerationRequest) -> int:
        """Denoiser forwards per video: CFG as one batched call, or one call per branch (`Levers.cfg`)."""
        per_step = 2 if self.levers.cfg == "passes" and request.guidance > 1.0 else 1
        return self.total_steps(spec, request) * per_step

    def phases(
        self, spec: ModelSpec, request: GenerationRequest, setting: PhaseSetting
    ) -> tuple[PhaseEstimate, ...]:
        """The request's phases with the components each needs and its activations (the planner takes the
        largest peak). Default: the catalogue's fitted phases (`i2v.memory.phases.default_phases`); a
        backend that runs other phases (its own text encoder, an upsampler, a second stage with a LoRA)
        returns its own list."""
        from i2v.memory.phases import default_phases

        return default_phases(spec, request, setting)

    def fetch_parts(self, spec: ModelSpec, modes: tuple[str, ...] = ()) -> tuple[Asset, ...]:
        """Hub repos `i2v fetch` brings into sub-folders of the model folder when the model is not one
        diffusers repo (``modes``: only what those modes read). Empty: the catalogue entry's repo."""
        return ()

    def phase_weights_mib(
        self,
        spec: ModelSpec,
        request: GenerationRequest,
        phase: PhaseEstimate,
        weights: dict[str, float],
        strategy: str,
    ) -> float:
        """The weights on the device while ``phase`` runs under ``strategy`` (``weights``: component ->
        MiB). Default: diffusers' offload hooks (`i2v.planner.phase_weights_mib`)."""
        from i2v.planner import phase_weights_mib

        return phase_weights_mib(spec, phase, weights, strategy)

    # --- loading --------------------------------------------------------------------------------------

    def load(self, spec: ModelSpec, folder: Path, dtype: Any, files: ModeFiles | None) -> Any:
        """The pipeline from its hub-layout folder, in ``dtype``, on the host (the plan places it)."""
        cls = resolve_class(spec.pipeline_cls)
        # One precision variant on disk (i2v fetch takes e.g. only *.fp16.safetensors): load that one.
        variant = {"variant": spec.variant} if spec.variant else {}
        return cls.from_pretrained(folder, dtype=dtype, use_safetensors=True, **variant)

    def build_random(self, spec: ModelSpec, dtype: Any, device: Device) -> Any:
        """The full-size architecture with random weights, built on ``device`` (benchmarks; no download)."""
        import torch

        from i2v.catalogue.architectures import pipeline_config_for
        from i2v.tiny.build import assemble  # random-weight models are built by the tiny factory

        previous = torch.get_default_dtype()
        torch.manual_seed(0)
        try:
            torch.set_default_dtype(dtype if dtype.is_floating_point else previous)
            pipe = assemble(spec.architecture, pipeline_config_for(spec.id), device=device.torch_device())
        finally:
            torch.set_default_dtype(previous)
        return pipe.to(dtype=dtype)

    def prepare(self, pipe: Any) -> Any:
        """Compatibility fixes a loaded pipeline needs (diffusers 0.42.1, transformers 5)."""
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def denoisers(self, pipe: Any) -> list[Any]:
        return [m for m in (getattr(pipe, n, None) for n in self.denoiser_names) if m is not None]

    def configure_for_device(self, pipe: Any, device: Device) -> tuple[str, ...]:
        """Make a built pipeline follow the device's precision policy; return what was changed."""
        return ()

    def apply_attention(self, pipe: Any, device: Device, backend: str | None = None) -> str | None:
        """Apply the plan's attention backend (else the device's choice) to the denoisers; return what
        was set. Cheap: the engine applies it before every run (a warm pipeline serves presets with
        different backends).

        Errors from diffusers (e.g. "_native_npu ... Please install torch_npu") propagate: a silent
        fallback would hide a slow path.
        """
        applied = None
        backend = backend if backend is not None else device.attention_backend()
        for model in self.denoisers(pipe):
            if self.levers.attention == "backend" and backend is not None:
                model.set_attention_backend(backend)
                applied = backend
            elif self.levers.attention == "npu-flash" and device.unet_flash_attention:
                model.enable_npu_flash_attention()
                applied = "npu_flash_attention"
        return applied

    def apply_plan(self, pipe: Any, plan: Plan, device: Device) -> Any:
        """Put the plan into effect; returns the object the engine keeps warm and runs on."""
        from i2v.apply import apply

        return apply(pipe, plan, device, self)

    def context_parallel_plan(self, model: Any) -> dict[str, Any] | None:
        """The context-parallel plan for one denoiser (None: the model class's own `_cp_plan`)."""
        return None

    def prepare_context_parallel(self, model: Any) -> None:
        """Fix-ups a denoiser needs before diffusers' `enable_parallelism` (attention processors)."""

    def cfg_pass_kwargs(self, kwargs: dict[str, Any], position: int) -> dict[str, Any]:
        """Call arguments for the card that computes CFG pass ``position`` first ("separate" CFG).

        Every card of a CFG pair runs the same pipeline loop; the card at position 1 gets the prompts
        swapped, so its first forward of each step is the unconditional one (i2v.parallel.shard returns
        each card both results in the pipeline's own order). Prompt encoding is symmetric in both.
        """
        if position == 0:
            return kwargs
        swapped = dict(kwargs)
        swapped["prompt"] = kwargs.get("negative_prompt") or ""
        swapped["negative_prompt"] = kwargs.get("prompt") or ""
        return swapped

    # --- running --------------------------------------------------------------------------------------

    def call_kwargs(
        self, spec: ModelSpec, request: GenerationRequest, image: Any, ctx: RunContext
    ) -> dict[str, Any]:
        """The pipeline's `__call__` arguments for ``request`` (diffusers 0.42.1 signatures)."""
        kwargs = dict(
            image=image,
            height=request.height,
            width=request.width,
            num_frames=request.frames,
            num_inference_steps=request.steps,
            generator=ctx.generator,
            output_type=ctx.output_type,
        )
        if self.levers.decode_chunk and ctx.decode_chunk is not None:
            kwargs["decode_chunk_size"] = ctx.decode_chunk
        return kwargs

    @staticmethod
    def text_kwargs(request: GenerationRequest) -> dict[str, Any]:
        """The prompt, negative prompt and CFG scale, as the text-guided diffusers pipelines take them."""
        return dict(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            guidance_scale=request.guidance,
        )

    def run(
        self, pipe: Any, spec: ModelSpec, request: GenerationRequest, image: Any, ctx: RunContext
    ) -> Output:
        """One request on a warm pipeline: LoRAs set for this request, the call, frames out."""
        return self.extract(self.call(pipe, spec, request, image, ctx), pipe)

    def call(
        self, pipe: Any, spec: ModelSpec, request: GenerationRequest, image: Any, ctx: RunContext
    ) -> Any:
        """The pipeline call(s) for ``request``; the pipeline's own output (`extract` pulls the frames)."""
        kwargs = self.call_kwargs(spec, request, image, ctx)
        if ctx.cfg_position and self.cfg_split == "separate":
            kwargs = self.cfg_pass_kwargs(kwargs, ctx.cfg_position)
        if self.levers.lora:
            from i2v.lora import activate

            # also unloads the previous request's LoRAs (a distilled preset's included)
            activate(pipe, [*request.loras, *request.preset_loras])
        with self.progress(pipe, ctx, kwargs):
            return pipe(**kwargs)

    def progress(self, pipe: Any, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        """Count denoising steps: diffusers' `callback_on_step_end` where the pipeline has it."""
        from contextlib import nullcontext

        if ctx.tracker is not None:
            if "callback_on_step_end" not in inspect.signature(pipe.__call__).parameters:
                raise TypeError(f"{type(pipe).__name__} has no callback_on_step_end; override progress()")
            kwargs["callback_on_step_end"] = ctx.tracker.callback
        return nullcontext()

    def extract(self, result: Any, pipe: Any) -> Output:
        import numpy as np

        frames = result.frames
        if isinstance(frames, (list, tuple)):
            frames = frames[0]
        frames = np.asarray(frames)
        if frames.ndim == 5:  # (batch, frames, H, W, C)
            frames = frames[0]
        return Output(frames=frames.astype("float32"))


__all__ = [
    "MEDIA_INPUTS",
    "AttentionHook",
    "Backend",
    "CfgForm",
    "CfgSplit",
    "CompileMode",
    "FamilyAdapter",
    "Levers",
    "MediaInput",
    "MissingModeWeightsError",
    "Mode",
    "ModeFiles",
    "Output",
    "RunContext",
    "resolve_class",
]
