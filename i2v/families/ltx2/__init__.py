"""LTX-2 (Lightricks, 19B audio + video) through diffusers 0.42.1: the adapter, its modes and NPU policy.

Import-safe and torch-free at import (the mode table is data; `run` imports diffusers when a mode runs).

Files the modes read from the model folder (the hub layout of ``Lightricks/LTX-2``):

- ``latent_upsampler/``: every two-stage mode; missing is an error naming it.
- ``ltx-2-19b-distilled-lora-384.safetensors``: stage 2's distilled LoRA. When it is missing, stage 2
  runs without it and the plan notes say so: the refine still brings the half-size stage-1 latents
  to the requested size with the mode's 3 guidance-free steps, only with the dev weights' softer
  detail. Refusing would take the recommended mode away from anyone who fetched the diffusers
  sub-folders only (the LoRA is a single file at the repository root).
- mode distilled: ``transformer_distilled/`` (the distilled transformer in diffusers format; loaded in
  place of ``transformer/``), else the distilled LoRA above at 1.0 in both stages (Lightricks: the LoRA
  is the dev -> distilled difference); neither is an error naming both.

NPU policy (diffusers 0.42.1 paths): `LTX2AudioVideoRotaryPosEmbed.forward`
(models/transformers/transformer_ltx2.py:1029) builds the RoPE grid with float64 `torch.linspace` on
the device when `double_precision` (the config's `rope_double_precision`, handed to the transformer's
four RoPE modules), and the text connectors' `LTX2RotaryPosEmbed1d` (pipelines/ltx2/connectors.py:125)
does the same. The flag is read at every forward, so a built model is fixed by switching it off on
those modules (`register_to_config` keeps the saved config truthful). Nothing else in the LTX-2 path
makes float64 or complex tensors on the device: ltx2_diffusion_decoder.py:120 already asks
`maybe_adjust_dtype_for_device`, the vocoder's CausalSTFT is a conv1d against precomputed DFT bases,
and the schedulers cast numpy float64 sigmas to float32 before they reach the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from i2v.families.base import (
    FamilyAdapter,
    Levers,
    MissingModeWeightsError,
    Mode,
    ModeFiles,
    Output,
    RunContext,
)
from i2v.families.ltx2.modes import (
    DEFAULT_MODE,
    DISTILLED_LORA,
    DISTILLED_LORA_SCALE,
    DISTILLED_TRANSFORMER,
    MODES,
    UPSAMPLER_SUBFOLDER,
    DiffusersLtx2Mode,
)
from i2v.request import InvalidRequestError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from i2v.catalogue.spec import ModelSpec, Preset
    from i2v.devices import Device
    from i2v.request import GenerationRequest

# diffusers classes that read a `double_precision` flag at forward time (see the module docstring).
_FLOAT64_ROPE_CLASSES = frozenset({"LTX2AudioVideoRotaryPosEmbed", "LTX2RotaryPosEmbed1d"})
_ROPE_COMPONENTS = ("transformer", "connectors")


class Ltx2Diffusers(FamilyAdapter):
    family: ClassVar[str] = "ltx-2"
    # FirstBlockCache/MagCache raise on LTX-2's transformer (ARCHITECTURE.md): its fast preview is fewer steps.
    # One card a job: diffusers 0.42.1's LTX-2 context-parallel plan leaves the per-token timestep whole
    # (the first block fails: "size of tensor a (4) must match ... (8)"), its masked attention expands
    # masks per head like LTX-Video's, and the audio stream is not split; CFG runs as three differently
    # guided calls (CFG batch, STG, modality guidance), no pair to split. Not attempted here.
    levers: ClassVar[Levers] = Levers(lora=True, vae_tiling=True, compile="regional", fp8_weights=True)
    modes: ClassVar[Mapping[str, Mode]] = MODES
    default_mode: ClassVar[str | None] = DEFAULT_MODE

    def _mode(self, request: GenerationRequest) -> DiffusersLtx2Mode:
        return MODES[request.mode or DEFAULT_MODE]

    # --- torch-free ---------------------------------------------------------------------------------

    def validate(self, spec: ModelSpec, request: GenerationRequest) -> None:
        mode = self._mode(request)
        if mode.size_factor == 1.0:
            return
        # Two-stage modes run stage 1 at a fraction of the size, which must itself fit the VAE's stride.
        c = spec.constraints
        multiple = round(c.size_multiple / mode.size_factor)
        for name in ("height", "width"):
            value = getattr(request, name)
            if value % multiple:
                lowest, highest = -(-c.min_size // multiple) * multiple, c.max_size // multiple * multiple
                nearest = min(max((value + multiple // 2 - 1) // multiple * multiple, lowest), highest)
                raise InvalidRequestError(
                    name,
                    value,
                    f"mode {mode.name!r} runs stage 1 at {mode.size_factor:g}x the size, so {spec.id} needs a "
                    f"multiple of {multiple}",
                    nearest,
                )

    def total_steps(self, spec: ModelSpec, request: GenerationRequest) -> int:
        mode = self._mode(request)
        first = mode.stage1.steps(request.steps)
        return first + (mode.stage2.steps(0) if mode.stage2 is not None else 0)

    def denoiser_calls(self, spec: ModelSpec, request: GenerationRequest) -> int:
        """Guided steps call the transformer three times (CFG batch, STG, modality guidance); the
        distilled and stage-2 steps once."""
        mode = self._mode(request)
        first = mode.stage1.steps(request.steps) * (3 if mode.stage1.guided and request.guidance > 1.0 else 1)
        return first + (mode.stage2.steps(0) if mode.stage2 is not None else 0)

    def preset_missing(self, spec: ModelSpec, preset: Preset, models_dir: Path) -> str | None:
        """A preset's mode needs its files in the model folder (the distilled mode: distilled weights)."""
        missing = super().preset_missing(spec, preset, models_dir)
        if missing is not None or preset.mode is None:
            return missing
        try:
            self._files(MODES[preset.mode], models_dir / spec.id)
        except MissingModeWeightsError as exc:
            return str(exc)
        return None

    def mode_files(self, spec: ModelSpec, request: GenerationRequest, folder: Path) -> ModeFiles:
        """Check the files the request's mode needs; raises `MissingModeWeightsError` naming what is missing."""
        return self._files(self._mode(request), Path(folder))

    def _files(self, mode: DiffusersLtx2Mode, folder: Path) -> ModeFiles:
        if mode.stage2 is None:
            return ModeFiles(folder, mode.name)
        upsampler = folder / UPSAMPLER_SUBFOLDER
        if not (upsampler / "config.json").is_file():
            raise MissingModeWeightsError(
                f"mode {mode.name!r} needs the x2 latent upsampler, and {upsampler}/ is missing (Lightricks/LTX-2 "
                f"sub-folder {upsampler.name}: config.json + safetensors)"
            )
        lora = folder / DISTILLED_LORA
        found = {"distilled_lora": lora} if lora.is_file() else {}
        if mode.distilled:
            distilled = folder / DISTILLED_TRANSFORMER
            if (distilled / "config.json").is_file():
                return ModeFiles(
                    folder,
                    mode.name,
                    load_variant=DISTILLED_TRANSFORMER,
                    notes=(f"distilled: transformer from {DISTILLED_TRANSFORMER}/",),
                )
            if found:
                return ModeFiles(
                    folder,
                    mode.name,
                    paths=found,
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
        if not found:
            return ModeFiles(
                folder,
                mode.name,
                notes=(
                    f"{mode.name}: stage 2 runs without the distilled LoRA: {lora} is missing (fetch it from "
                    "Lightricks/LTX-2 for the upstream recipe; without it stage 2 is the dev weights' 3 "
                    "guidance-free steps, with softer detail)",
                ),
            )
        return ModeFiles(folder, mode.name, paths=found)

    # --- loading ------------------------------------------------------------------------------------

    def load(self, spec: ModelSpec, folder: Path, dtype: Any, files: ModeFiles | None) -> Any:
        from i2v.families.base import resolve_class

        parts = {}
        if files is not None and files.load_variant:
            denoiser = resolve_class(spec.architecture.component("transformer").cls)
            parts["transformer"] = denoiser.from_pretrained(
                folder, subfolder=files.load_variant, dtype=dtype, use_safetensors=True
            )
        cls = resolve_class(spec.pipeline_cls)
        return cls.from_pretrained(folder, dtype=dtype, use_safetensors=True, **parts)

    def configure_for_device(self, pipe: Any, device: Device) -> tuple[str, ...]:
        if device.allow_float64:
            return ()
        return tuple(disable_float64_rope(pipe))

    # --- running ------------------------------------------------------------------------------------

    def call_kwargs(
        self, spec: ModelSpec, request: GenerationRequest, image: Any, ctx: RunContext
    ) -> dict[str, Any]:
        return (
            super().call_kwargs(spec, request, image, ctx)
            | self.text_kwargs(request)
            | dict(frame_rate=float(request.fps))
        )

    def run(
        self, pipe: Any, spec: ModelSpec, request: GenerationRequest, image: Any, ctx: RunContext
    ) -> Output:
        notes: list[str] = []
        output = self.extract(self.call(pipe, spec, request, image, ctx, notes), pipe)
        output.notes = notes
        return output

    def call(
        self,
        pipe: Any,
        spec: ModelSpec,
        request: GenerationRequest,
        image: Any,
        ctx: RunContext,
        notes: list[str] | None = None,
    ) -> Any:
        from i2v.families.ltx2.run import Job, run

        files = ctx.files if ctx.files is not None else ModeFiles(Path("."), self._mode(request).name)
        kwargs = self.call_kwargs(spec, request, image, ctx)
        job = Job(pipe, request, self._mode(request), kwargs, files, spec.latent[1], list(files.notes))
        with self.progress(pipe, ctx, kwargs):
            result = run(job)
        if notes is not None:
            notes.extend(job.notes)
        return result

    def extract(self, result: Any, pipe: Any) -> Output:
        import numpy as np

        output = super().extract(result, pipe)
        audio = getattr(result, "audio", None)
        if audio is not None:
            if hasattr(audio, "detach"):
                audio = audio.detach().float().cpu().numpy()
            audio = np.asarray(audio)
            while audio.ndim > 2:
                audio = audio[0]
            output.audio = audio
            # diffusers' LTX-2 docs: the waveform comes out of the vocoder at its output_sampling_rate.
            output.audio_sample_rate = int(pipe.vocoder.config.output_sampling_rate)
        return output


def disable_float64_rope(pipe: Any) -> list[str]:
    """Switch LTX-2's float64 RoPE (transformer and text connectors, or a bare model) to float32."""
    components = [(name, getattr(pipe, name, None)) for name in _ROPE_COMPONENTS]
    components = [(name, c) for name, c in components if c is not None] or [(type(pipe).__name__, pipe)]
    changed = []
    for name, component in components:
        if not hasattr(component, "named_modules"):
            continue
        for sub_name, module in component.named_modules():
            if type(module).__name__ in _FLOAT64_ROPE_CLASSES and getattr(module, "double_precision", False):
                module.double_precision = False
                changed.append(f"{name}.{sub_name}.double_precision=False")
        config = getattr(component, "config", None)
        if config is not None and config.get("rope_double_precision", False):
            component.register_to_config(rope_double_precision=False)
            changed.append(f"{name}.config.rope_double_precision=False")
    return changed


__all__ = ["Ltx2Diffusers", "disable_float64_rope"]
