"""LTX-2's eight ltx-pipelines modes mapped onto what diffusers 0.42.1 ships: typed data, torch-free.

| mode           | diffusers classes                                                             | inputs                  |
| -------------- | ----------------------------------------------------------------------------- | ----------------------- |
| one-stage      | LTX2ImageToVideoPipeline                                                      | image                   |
| two-stage      | LTX2ImageToVideoPipeline -> LTX2LatentUpsamplePipeline -> same                | image                   |
| distilled      | the same three, distilled transformer or distilled LoRA, no CFG               | image                   |
| keyframes      | LTX2ConditionPipeline (LTX2VideoCondition index 0 and -1) -> upsample -> same | image, last_image       |
| ic-lora        | LTX2InContextPipeline (LTX2ReferenceCondition) -> upsample -> same, no ref    | reference_video, IC-LoRA|
| two-stage-hq, audio-to-video, retake: no diffusers pipeline; refused with the reason                                   |

Guided stages take steps and guidance from the request (model defaults, then the preset); fixed
(distilled) schedules come from here. The sigmas are diffusers.pipelines.ltx2.utils' values, copied
so this module stays torch-free (tests/test_ltx2_modes.py compares them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from i2v.families.base import Mode

DISTILLED_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875)
STAGE_2_DISTILLED_SIGMAS = (0.909375, 0.725, 0.421875)

# Guidance-free sampling for distilled weights and distilled-LoRA refinement. The audio scales must be
# given too: the pipelines default audio_guidance_scale to 7.0, which alone re-enables the CFG batch.
NO_GUIDANCE: dict[str, float] = {
    "guidance_scale": 1.0,
    "stg_scale": 0.0,
    "modality_scale": 1.0,
    "guidance_rescale": 0.0,
    "audio_guidance_scale": 1.0,
    "audio_stg_scale": 0.0,
    "audio_modality_scale": 1.0,
    "audio_guidance_rescale": 0.0,
}

# LTX2 pipelines in diffusers 0.42.1 default to the LTX-2.3 recipe; the LTX-2.0 checkpoint (the
# diffusers-format Lightricks/LTX-2) wants the legacy cross-modal timestep and STG on block 29.
LTX2_0_CALL_KWARGS: dict[str, Any] = {"use_cross_timestep": False, "spatio_temporal_guidance_blocks": [29]}

UPSAMPLER_SUBFOLDER = "latent_upsampler"
DISTILLED_TRANSFORMER = "transformer_distilled"
DISTILLED_LORA = "ltx-2-19b-distilled-lora-384.safetensors"  # Lightricks/LTX-2, a single file at the root
# diffusers' LTX-2 docs: set_adapters("stage_2_distilled", 1.0).
DISTILLED_LORA_SCALE = 1.0


@dataclass(frozen=True)
class Sampling:
    """How one stage samples: the request's steps and guidance, or a fixed schedule without guidance."""

    sigmas: tuple[float, ...] | None = None
    guided: bool = True
    noise_scale: float | None = None
    dynamic_shift: bool = True  # False: a scheduler without dynamic shifting (stage 2's fixed sigmas)

    def steps(self, requested: int) -> int:
        return len(self.sigmas) if self.sigmas is not None else requested

    def call_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.sigmas is not None:
            kwargs |= {"sigmas": list(self.sigmas), "num_inference_steps": len(self.sigmas)}
        if not self.guided:
            kwargs |= NO_GUIDANCE
        if self.noise_scale is not None:
            kwargs["noise_scale"] = self.noise_scale
        return kwargs


STAGE_2 = Sampling(
    sigmas=STAGE_2_DISTILLED_SIGMAS,
    guided=False,
    noise_scale=STAGE_2_DISTILLED_SIGMAS[0],
    dynamic_shift=False,
)


@dataclass(frozen=True)
class DiffusersLtx2Mode(Mode):
    """A mode as diffusers runs it: the stage-1 pipeline class and sampling, and for two-stage modes the
    x2 latent upsample and stage 2 (3 fixed steps at full size from stage 1 at ``size_factor``)."""

    pipeline_cls: str = "diffusers.LTX2ImageToVideoPipeline"
    stage1: Sampling = Sampling()
    stage2: Sampling | None = None
    size_factor: float = 1.0
    stage2_lora: bool = False  # the distilled LoRA refines stage 2 (when the file is there)
    distilled: bool = False  # distilled weights in both stages (transformer_distilled/ or the LoRA)


MODES: dict[str, DiffusersLtx2Mode] = {
    m.name: m
    for m in (
        DiffusersLtx2Mode(
            "two-stage",
            "stage 1 with CFG/STG at half size, x2 latent upsample, 3 distilled steps at full size",
            stages=2,
            stage2=STAGE_2,
            size_factor=0.5,
            stage2_lora=True,
        ),
        DiffusersLtx2Mode(
            "two-stage-hq",
            "two-stage with the res_2s second-order sampler",
            supported=False,
            reason="ti2vid_two_stages_hq samples with ltx-pipelines' second-order res_2s sampler (float64 "
            "internally). diffusers 0.42.1 has no res_2s scheduler, and the LTX-2 pipelines index "
            "scheduler.sigmas[i] by loop step (convert_velocity_to_x0), so a second-order scheduler "
            "such as FlowMatchHeunDiscreteScheduler (order 2, repeated timesteps) cannot be swapped in. "
            "Closest: 'two-stage' with more stage-1 steps, or the ltx-2.3 model (Lightricks' own pipelines).",
        ),
        DiffusersLtx2Mode("one-stage", "one guided pass at the requested size"),
        DiffusersLtx2Mode(
            "distilled",
            "8 distilled steps without guidance at half size, x2 upsample, 3 steps at full size",
            stages=2,
            stage1=Sampling(sigmas=DISTILLED_SIGMAS, guided=False),
            stage2=STAGE_2,
            size_factor=0.5,
            distilled=True,
        ),
        DiffusersLtx2Mode(
            "keyframes",
            "first and last frame pinned (LTX2VideoCondition index 0 and -1), two stages",
            needs=frozenset({"last_image"}),
            pipeline_cls="diffusers.LTX2ConditionPipeline",
            stages=2,
            stage2=STAGE_2,
            size_factor=0.5,
            stage2_lora=True,
        ),
        DiffusersLtx2Mode(
            "audio-to-video",
            "video for a given soundtrack",
            needs=frozenset({"audio"}),
            supported=False,
            reason="no diffusers 0.42.1 pipeline takes input audio. There is no waveform -> mel front end for "
            "AutoencoderKLLTX2Audio.encode, and LTX2Pipeline/LTX2ImageToVideoPipeline/"
            "LTX2ConditionPipeline always re-noise and denoise `audio_latents` with the video's "
            "schedule. The only clean-audio switch is `freeze_audio` of LTX2DFRPipeline, an LTX-2.5 "
            "DFR stage (keyframe slots, abs-pos keyframe embedding), not an a2vid pipeline. "
            "The ltx-2.3 model (Lightricks' own pipelines) has it.",
        ),
        DiffusersLtx2Mode(
            "retake",
            "regenerate a time range of a video in place",
            needs=frozenset({"video"}),
            supported=False,
            reason="no diffusers 0.42.1 pipeline regenerates a time range in place: that needs a per-token "
            "denoise mask over [start, end) for both the video and the audio stream. "
            "LTX2ConditionPipeline writes only an index-0 condition in place (a multi-frame one pins a "
            "prefix); later ones become appended keyframe tokens, so the frames after the range cannot be "
            "kept, and audio has no mask at all; `noise_scale` + `latents` re-noise the whole clip. "
            "The ltx-2.3 model (Lightricks' own pipelines) has it.",
        ),
        DiffusersLtx2Mode(
            "ic-lora",
            "video-to-video with an IC-LoRA over a reference video; stage 2 refines without it",
            needs=frozenset({"reference_video"}),
            image="optional",
            needs_lora=True,
            pipeline_cls="diffusers.LTX2InContextPipeline",
            stages=2,
            stage2=STAGE_2,
            size_factor=0.5,
            stage2_lora=True,
        ),
    )
}

DEFAULT_MODE = "one-stage"

__all__ = [
    "DEFAULT_MODE",
    "DISTILLED_LORA",
    "DISTILLED_LORA_SCALE",
    "DISTILLED_SIGMAS",
    "DISTILLED_TRANSFORMER",
    "LTX2_0_CALL_KWARGS",
    "MODES",
    "NO_GUIDANCE",
    "STAGE_2",
    "STAGE_2_DISTILLED_SIGMAS",
    "UPSAMPLER_SUBFOLDER",
    "DiffusersLtx2Mode",
    "Sampling",
]
