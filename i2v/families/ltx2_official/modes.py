"""The eight pipelines of Lightricks' ``ltx-pipelines==1.0.0`` for LTX-2.3 22B, as typed data.

Torch-free and import-safe: the planner, the request validator, ``i2v fetch`` and the web page
read this table without importing torch or the ltx packages. Everything here was read off the
pinned 1.0.0 sources (``ltx_pipelines/<module>.py`` and ``utils/args.py`` / ``utils/constants.py``);
the line a value comes from is named where it is not obvious.

A mode is a `ModeSpec`: the ltx_pipelines module and class, the request inputs it needs or takes,
the weight files it reads (`WeightRole`, resolved to names in `weights.py`), its stages
(checkpoint, LoRA, sampler, schedule, guidance) and its defaults. The x2 spatial upsampler runs
between the two stages of every two-stage mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

ModeName = Literal[
    "two-stage",
    "two-stage-hq",
    "one-stage",
    "distilled",
    "keyframes",
    "audio-to-video",
    "retake",
    "ic-lora",
]
MODE_NAMES: tuple[ModeName, ...] = get_args(ModeName)

# Request inputs beyond the prompt and the numbers. Images carry a frame index: "image" is the one
# at frame 0, "last-image" the one at the last frame (index -1), "keyframes" any other index.
# "video" comes with a [start, end) time range; "ic-lora" is an IC-LoRA file among the LoRAs.
InputKind = Literal["image", "last-image", "keyframes", "audio", "video", "reference-video", "ic-lora"]
_IMAGES: frozenset[InputKind] = frozenset({"image", "last-image", "keyframes"})
# Files of Lightricks/LTX-2.3 (and the Gemma root) a mode reads; names in weights.py.
WeightRole = Literal["dev", "distilled", "distilled-lora", "upsampler-x2", "gemma"]
Checkpoint = Literal["dev", "distilled"]
Sampler = Literal["euler", "res2s"]
# "ltx2": LTX2Scheduler().execute(steps) (steps + 1 sigmas); "distilled": DISTILLED_SIGMA_VALUES
# (8 steps); "distilled-stage-2": STAGE_2_DISTILLED_SIGMA_VALUES (3 steps).
Schedule = Literal["ltx2", "distilled", "distilled-stage-2"]
# "multimodal": CFG + STG + modality guidance (MultiModalGuider); "video-only-multimodal": the same
# for video with the audio latent frozen (audio-to-video); "none": one transformer call a step.
Guidance = Literal["multimodal", "video-only-multimodal", "none"]

DISTILLED_STEPS = 8  # len(DISTILLED_SIGMA_VALUES) - 1
STAGE_2_STEPS = 3  # len(STAGE_2_DISTILLED_SIGMA_VALUES) - 1
# The seed (seeds/001) runs every two-stage mode with `--distilled-lora $DLORA 0.8`.
DISTILLED_LORA_SCALE = 0.8
# ti2vid_two_stages_hq's CLI defaults (utils/args.py hq_2_stage_arg_parser).
HQ_LORA_SCALE_STAGE_1 = 0.25
HQ_LORA_SCALE_STAGE_2 = 0.5


@dataclass(frozen=True)
class Stage:
    """One denoising pass of a mode."""

    checkpoint: Checkpoint
    distilled_lora_scale: float | None  # None: no distilled LoRA fused into this stage's transformer
    sampler: Sampler
    schedule: Schedule
    guidance: Guidance
    resolution: Literal["half", "full"]  # "half": height // 2, width // 2 (stage 1 of two-stage modes)

    def steps(self, request_steps: int) -> int:
        """Denoising steps (progress ticks) this stage runs for a request asking `request_steps`."""
        if self.schedule == "distilled":
            return DISTILLED_STEPS
        if self.schedule == "distilled-stage-2":
            return STAGE_2_STEPS
        return request_steps


@dataclass(frozen=True)
class Defaults:
    """The package's CLI defaults for a mode (LTX_2_3_PARAMS / LTX_2_3_HQ_PARAMS)."""

    height: int
    width: int
    frames: int = 121
    fps: float = 24.0
    steps: int = 30  # used by "ltx2" schedules only
    video_cfg: float = 3.0
    audio_cfg: float = 7.0
    seed: int = 10


@dataclass(frozen=True)
class ModeSpec:
    name: ModeName
    module: str  # ltx_pipelines.<module>
    cls: str  # the pipeline class in that module
    summary: str
    requires: frozenset[InputKind]
    accepts: frozenset[InputKind]  # optional inputs (requires is a subset)
    weights: tuple[WeightRole, ...]
    stages: tuple[Stage, ...]
    defaults: Defaults
    size_multiple: int  # assert_resolution: 64 two-stage, 32 one-stage
    takes_steps: bool  # False where every stage has a fixed distilled schedule
    takes_negative_prompt: bool
    output_size_from_source: bool = False  # retake: the output is the source video's size and length
    # The request's LoRAs are fused into both stages' transformers, except in ic-lora, whose
    # stage 2 ledger is built with loras=[] (ic_lora.py ICLoraPipeline.__init__).
    loras_in_stage_2: bool = True

    @property
    def runs_cfg(self) -> bool:
        return any(stage.guidance != "none" for stage in self.stages)

    @property
    def two_stage(self) -> bool:
        return len(self.stages) == 2

    def total_steps(self, request_steps: int) -> int:
        """Progress total: every stage's denoising steps."""
        return sum(stage.steps(request_steps) for stage in self.stages)


def _stages(
    first: Stage,
    lora_scale: float | None = DISTILLED_LORA_SCALE,
    checkpoint: Checkpoint = "dev",
    sampler: Sampler = "euler",
) -> tuple[Stage, Stage]:
    """`first`, then the x2-upsampled refine: 3 distilled-schedule steps without guidance."""
    return first, Stage(checkpoint, lora_scale, sampler, "distilled-stage-2", "none", "full")


_GUIDED_HALF = Stage("dev", None, "euler", "ltx2", "multimodal", "half")
_TWO_STAGE_WEIGHTS: tuple[WeightRole, ...] = ("dev", "distilled-lora", "upsampler-x2", "gemma")
_DISTILLED_WEIGHTS: tuple[WeightRole, ...] = ("distilled", "upsampler-x2", "gemma")
_BIG = Defaults(height=1024, width=1536)
_ONE = Defaults(height=512, width=768)

_MODES: tuple[ModeSpec, ...] = (
    ModeSpec(
        name="two-stage",
        module="ti2vid_two_stages",
        cls="TI2VidTwoStagesPipeline",
        summary="text/image to video: guided stage 1 at half size, x2 upsample, distilled-LoRA refine",
        requires=frozenset(),
        accepts=_IMAGES,
        weights=_TWO_STAGE_WEIGHTS,
        stages=_stages(_GUIDED_HALF),
        defaults=_BIG,
        size_multiple=64,
        takes_steps=True,
        takes_negative_prompt=True,
    ),
    ModeSpec(
        name="two-stage-hq",
        module="ti2vid_two_stages_hq",
        cls="TI2VidTwoStagesHQPipeline",
        summary="two-stage with the res2s second-order sampler and the distilled LoRA in both stages",
        requires=frozenset(),
        accepts=_IMAGES,
        weights=_TWO_STAGE_WEIGHTS,
        stages=_stages(
            Stage("dev", HQ_LORA_SCALE_STAGE_1, "res2s", "ltx2", "multimodal", "half"),
            lora_scale=HQ_LORA_SCALE_STAGE_2,
            sampler="res2s",
        ),
        defaults=Defaults(height=1088, width=1920, steps=15),
        size_multiple=64,
        takes_steps=True,
        takes_negative_prompt=True,
    ),
    ModeSpec(
        name="one-stage",
        module="ti2vid_one_stage",
        cls="TI2VidOneStagePipeline",
        summary="text/image to video in one guided pass at the requested size",
        requires=frozenset(),
        accepts=_IMAGES,
        weights=("dev", "gemma"),
        stages=(Stage("dev", None, "euler", "ltx2", "multimodal", "full"),),
        defaults=_ONE,
        size_multiple=32,
        takes_steps=True,
        takes_negative_prompt=True,
    ),
    ModeSpec(
        name="distilled",
        module="distilled",
        cls="DistilledPipeline",
        summary="the distilled checkpoint: 8 + 3 steps, no guidance",
        requires=frozenset(),
        accepts=_IMAGES,
        weights=_DISTILLED_WEIGHTS,
        stages=_stages(
            Stage("distilled", None, "euler", "distilled", "none", "half"),
            lora_scale=None,
            checkpoint="distilled",
        ),
        defaults=_BIG,
        size_multiple=64,
        takes_steps=False,
        takes_negative_prompt=False,
    ),
    ModeSpec(
        name="keyframes",
        module="keyframe_interpolation",
        cls="KeyframeInterpolationPipeline",
        summary="interpolate between keyframe images (every image is a guiding latent at its frame)",
        requires=frozenset({"image", "last-image"}),
        accepts=_IMAGES,
        weights=_TWO_STAGE_WEIGHTS,
        stages=_stages(_GUIDED_HALF),
        defaults=_BIG,
        size_multiple=64,
        takes_steps=True,
        takes_negative_prompt=True,
    ),
    ModeSpec(
        name="audio-to-video",
        module="a2vid_two_stage",
        cls="A2VidPipelineTwoStage",
        summary="video for a given audio track (audio latent frozen); the output carries the input audio",
        requires=frozenset({"audio"}),
        accepts=_IMAGES | {"audio"},
        weights=_TWO_STAGE_WEIGHTS,
        stages=_stages(Stage("dev", None, "euler", "ltx2", "video-only-multimodal", "half")),
        defaults=_BIG,
        size_multiple=64,
        takes_steps=True,
        takes_negative_prompt=True,
    ),
    ModeSpec(
        # 1.0.0's RetakePipeline takes `checkpoint_path` (the seed's `--distilled-checkpoint-path` is
        # 1.1.x) and runs guided on the dev checkpoint; its __call__ defaults to 40 steps.
        name="retake",
        module="retake",
        cls="RetakePipeline",
        summary="regenerate [start, end) seconds of a source video (video and audio), keep the rest",
        requires=frozenset({"video"}),
        accepts=frozenset({"video"}),
        weights=("dev", "gemma"),
        stages=(Stage("dev", None, "euler", "ltx2", "multimodal", "full"),),
        defaults=Defaults(height=512, width=768, steps=40, seed=42),
        size_multiple=32,
        takes_steps=True,
        takes_negative_prompt=True,
        output_size_from_source=True,
    ),
    ModeSpec(
        name="ic-lora",
        module="ic_lora",
        cls="ICLoraPipeline",
        summary="video-to-video with an IC-LoRA (depth, pose, edges...) on the distilled checkpoint",
        requires=frozenset({"reference-video", "ic-lora"}),
        accepts=_IMAGES | {"reference-video", "ic-lora"},
        weights=_DISTILLED_WEIGHTS,
        # The IC-LoRA is fused into stage 1 only; stage 2 is the plain distilled checkpoint.
        stages=_stages(
            Stage("distilled", None, "euler", "distilled", "none", "half"),
            lora_scale=None,
            checkpoint="distilled",
        ),
        defaults=_BIG,
        size_multiple=64,
        takes_steps=False,
        takes_negative_prompt=False,
        loras_in_stage_2=False,
    ),
)

MODES: Mapping[ModeName, ModeSpec] = MappingProxyType({m.name: m for m in _MODES})
DEFAULT_MODE: ModeName = "two-stage"


def get(name: str) -> ModeSpec:
    """The mode called `name`; ValueError naming the valid modes otherwise."""
    try:
        return MODES[name]  # type: ignore[index]
    except KeyError:
        raise ValueError(
            f"mode {name!r} is not an ltx-pipelines mode; modes are {', '.join(MODE_NAMES)}"
        ) from None
