"""LTX-2.3 on Lightricks' own ltx-pipelines as a family adapter: what the engine, planner and API call.

Import-safe and torch-free at import. The catalogue's `GenerationRequest` becomes an `Ltx23Request`
here (`to_ltx`): the input image at frame 0, the last image at frame -1, each `--keyframe` at its
frame, the soundtrack, the retake source and range, the reference video, the LoRAs. It is checked
when the request is made (`validate`, torch-free: the media are probed, nothing loads) and again at
run time with the staged image in place. The "pipeline" the engine keeps warm is one
`WarmComponents` per worker: the package's models, built on first use and kept, so a second request
reads no weights. The plan places it: all resident on the device, or (model offload) Gemma, the text
projection and the transformers waiting in host RAM between their phases.

The package tiles its VAE itself, builds its own attention and has no diffusers hooks, so none of the
diffusers levers apply (`Levers`: LoRAs only).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from i2v.families.base import (
    FamilyAdapter,
    Levers,
    MediaInput,
    MissingModeWeightsError,
    Mode,
    ModeFiles,
    Output,
    RunContext,
)
from i2v.families.ltx2_official.modes import DEFAULT_MODE, MODES, InputKind, ModeSpec
from i2v.families.ltx2_official.request import ImageInput, Ltx23Request
from i2v.families.ltx2_official.weights import GEMMA_FOLDER, LTX_FOLDER, MissingWeightsError, ModelFiles

if TYPE_CHECKING:
    from i2v.catalogue.assets import Asset
    from i2v.catalogue.spec import ModelSpec
    from i2v.devices import Device
    from i2v.memory.model import PhaseEstimate
    from i2v.memory.phases import PhaseSetting
    from i2v.planner import Plan
    from i2v.request import GenerationRequest

_MEDIA: dict[InputKind, MediaInput] = {
    "last-image": "last_image",
    "keyframes": "keyframes",
    "audio": "audio",
    "video": "video",
    "reference-video": "reference_video",
}


def as_mode(spec: ModeSpec) -> Mode:
    """The backend's rich mode entry as the generic `Mode` the request, CLI and API read."""
    image = "required" if "image" in spec.requires else "optional" if "image" in spec.accepts else "unused"
    return Mode(
        spec.name,
        spec.summary,
        needs=frozenset(_MEDIA[k] for k in spec.requires if k in _MEDIA),
        takes=frozenset(_MEDIA[k] for k in spec.accepts if k in _MEDIA),
        image=image,
        needs_lora="ic-lora" in spec.requires,
        needs_prompt=True,  # the package encodes the prompt with Gemma; an empty one is refused
        stages=len(spec.stages),
    )


def to_ltx(request: GenerationRequest, image_path: str | None = None) -> Ltx23Request:
    """The backend's request for ``request`` (``image_path``: the input image, staged as a file)."""
    images: list[ImageInput] = []
    if image_path is not None:
        images.append(ImageInput(image_path, 0, 1.0, field="image"))
    if request.last_image is not None:
        images.append(ImageInput(request.last_image, -1, 1.0, field="last_image"))
    for n, keyframe in enumerate(request.keyframes):
        images.append(ImageInput(keyframe.path, keyframe.frame, keyframe.strength, field=f"keyframes[{n}]"))
    return Ltx23Request(
        mode=request.mode or DEFAULT_MODE,  # type: ignore[arg-type]
        prompt=request.prompt,
        negative_prompt=request.negative_prompt or None,
        height=request.height,
        width=request.width,
        frames=request.frames,
        fps=float(request.fps),
        steps=request.steps,
        guidance=float(request.guidance),
        seed=request.seed,
        images=tuple(images),
        audio=request.audio,
        video=request.video,
        start_time=request.start_time,
        end_time=request.end_time,
        reference_video=request.reference_video,
        loras=tuple(request.loras),
    )


class Ltx2Official(FamilyAdapter):
    family: ClassVar[str] = "ltx-2"
    backend: ClassVar[str] = "ltx-pipelines"  # type: ignore[assignment]
    # Model offload only: the package's big models wait in host RAM between their phases (WarmPolicy "host").
    levers: ClassVar[Levers] = Levers(lora=True, attention="none", offload=("model-offload",))
    denoiser_names: ClassVar[tuple[str, ...]] = ()
    modes: ClassVar[Mapping[str, Mode]] = MappingProxyType({name: as_mode(m) for name, m in MODES.items()})
    default_mode: ClassVar[str | None] = DEFAULT_MODE

    # --- torch-free ---------------------------------------------------------------------------------

    weights_layout: ClassVar[str] = f"{LTX_FOLDER}/ and {GEMMA_FOLDER}/"

    def weights_present(self, folder: Path) -> bool:
        return (folder / LTX_FOLDER).is_dir() and (folder / GEMMA_FOLDER).is_dir()

    def fetch_parts(self, spec: ModelSpec, modes: tuple[str, ...] = ()) -> tuple[Asset, ...]:
        if spec.tiny:
            return ()  # built locally as one folder (i2v.tiny.ltx23)
        from i2v.families.ltx2_official.weights import fetch_parts

        return fetch_parts(spec.id, modes or tuple(MODES))

    def validate(self, spec: ModelSpec, request: GenerationRequest) -> None:
        from i2v.families.ltx2_official.validate import validate_request

        mode = self.modes[request.mode or DEFAULT_MODE]
        # The prompt is checked when the request is about to run (`i2v.request.require_prompt`, and the
        # runner again): plans and /v1/models resolve requests without one.
        validate_request(to_ltx(request), image_at_start=mode.image == "required", require_prompt=False)

    def total_steps(self, spec: ModelSpec, request: GenerationRequest) -> int:
        return MODES[request.mode or DEFAULT_MODE].total_steps(request.steps)  # type: ignore[index]

    def denoiser_calls(self, spec: ModelSpec, request: GenerationRequest) -> int:
        return self.total_steps(spec, request)  # the package's guiders batch their passes in one call

    def phases(
        self, spec: ModelSpec, request: GenerationRequest, setting: PhaseSetting
    ) -> tuple[PhaseEstimate, ...]:
        from i2v.families.ltx2_official.memory import phases

        return phases(spec, request, setting)

    def phase_weights_mib(
        self,
        spec: ModelSpec,
        request: GenerationRequest,
        phase: PhaseEstimate,
        weights: dict[str, float],
        strategy: str,
    ) -> float:
        from i2v.families.ltx2_official.memory import phase_weights_mib

        return phase_weights_mib(request.mode or DEFAULT_MODE, phase, weights, strategy)

    def mode_files(self, spec: ModelSpec, request: GenerationRequest, folder: Path) -> ModeFiles:
        mode = request.mode or DEFAULT_MODE
        try:
            ModelFiles.locate(folder).require(mode)
        except MissingWeightsError as exc:
            raise MissingModeWeightsError(
                f"{exc}; run: i2v fetch {spec.id} --mode {mode} --dir {Path(folder).parent}"
            ) from None
        return ModeFiles(Path(folder), mode)

    # --- loading ------------------------------------------------------------------------------------

    def load(self, spec: ModelSpec, folder: Path, dtype: Any, files: ModeFiles | None) -> Any:
        """Where the model set lies; the models are built on the device by `apply_plan` and first use."""
        return ModelFiles.locate(folder)

    def prepare(self, pipe: Any) -> Any:
        return pipe

    def build_random(self, spec: ModelSpec, dtype: Any, device: Device) -> Any:
        raise NotImplementedError(
            f"{spec.id} runs Lightricks' own pipelines, which load single-file checkpoints only: "
            "`i2v bench --arch-only` builds diffusers pipelines (try ltx-2)"
        )

    def apply_plan(self, pipe: Any, plan: Plan, device: Device) -> Any:
        """One `WarmComponents` for the model set on ``device``: all resident, or the big models (Gemma,
        the text projection, the transformers) waiting in host RAM between their phases."""
        from i2v.families.ltx2_official import WarmComponents, WarmPolicy

        residency = "device" if plan.strategy == "resident" else "host"
        # What the warm set may keep on the device: the planned weights plus the plan's own slack; beyond
        # that the least recently used model goes (another mode's transformer variant, say).
        budget = (plan.weights_mib + max(plan.budget_mib - plan.predicted_peak_mib, 0)) * 2**20
        policy = WarmPolicy(text=residency, transformer=residency, device_budget_bytes=budget or None)
        return WarmComponents(pipe, device, policy=policy)

    # --- running ------------------------------------------------------------------------------------

    def run(
        self, pipe: Any, spec: ModelSpec, request: GenerationRequest, image: Any, ctx: RunContext
    ) -> Output:
        from i2v.families.ltx2_official import run, validate_request

        with tempfile.TemporaryDirectory(prefix="i2v-ltx-") as tmp:
            image_path = None
            if image is not None:  # the package reads its conditioning images from files
                image_path = str(Path(tmp) / "image.png")
                image.save(image_path)
            checked = validate_request(to_ltx(request, image_path), ctx.device.kind)

            def tick(step: int, total: int) -> None:
                if ctx.tracker is not None:
                    ctx.tracker.tick()

            before = pipe.stats.snapshot()
            out = run(pipe, checked.request, progress=tick, checked=checked)
            after = pipe.stats.snapshot()
        return Output(
            frames=out.frames,
            audio=out.audio,
            audio_sample_rate=out.sample_rate,
            fps=out.fps,
            notes=out.notes,
            load_s=after.load_seconds - before.load_seconds,  # models built on first use, in this run
            weights_read_bytes=after.bytes_read - before.bytes_read,
        )


__all__ = ["Ltx2Official", "as_mode", "to_ltx"]
