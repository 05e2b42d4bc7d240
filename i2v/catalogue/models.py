"""The catalogue's entries. Data only: every number here says where it comes from.

Defaults follow each diffusers pipeline's own `__call__` defaults (diffusers 0.42.1) unless noted.
Memory: every full-size model's phases are fitted from fake-tensor measurements of its full-size
pipeline (`python -m i2v.memory.fit`, data in memory_fits.json, read by `i2v.catalogue.memory`),
with the device factors that fake tensors cannot see kept there, explicit and sourced.

Fast presets that step-distil (Wan 2.1 I2V, Wan 2.2 I2V A14B: LightX2V's 4-step LoRAs; LTX-2: its
distilled mode) run at the standard size with guidance 1, one denoiser call a step; without their
files they fall back to the 20-step preview (`Preset.fallback`) and the request notes say so.
"""

from __future__ import annotations

from i2v.catalogue.assets import WAN21_I2V_4STEP, WAN22_A14B_HIGH, WAN22_A14B_LOW
from i2v.catalogue.memory import measured
from i2v.catalogue.spec import Constraints, Defaults, ModelSpec, Preset, PresetLora
from i2v.memory.model import PhaseFit, PhaseFits

SAFETENSORS_ONLY = ("model_index.json", "*/config.json", "*/*.json", "*/*.txt", "*/*.model")


def _patterns(variant: str | None) -> tuple[str, ...]:
    weights = f"*/*.{variant}.safetensors" if variant else "*/*.safetensors"
    return SAFETENSORS_ONLY + (
        weights,
        "*/*.safetensors.index.json" if not variant else f"*/*.safetensors.index.{variant}.json",
    )


def _presets(
    fast: dict,
    standard: dict,
    hq: dict,
    fast_cache: str | None = None,
    distilled: Preset | None = None,
) -> dict[str, Preset]:
    """fast / standard / hq; ``distilled`` replaces fast, with today's fast preview as its fallback."""
    preview = Preset(
        "fast", "fast preview", fast, cache=fast_cache, lossy=fast_cache is not None, lossy_attention=True
    )
    if distilled is not None:
        preview = Preset(
            "fast",
            distilled.label,
            distilled.overrides,
            lossy=True,
            mode=distilled.mode,
            loras=distilled.loras,
            fallback=preview,
            lossy_attention=True,
        )
    return {
        "fast": preview,
        "standard": Preset("standard", "standard", standard),
        "hq": Preset("hq", "high quality", hq, fp8_weights=False),
    }


# --- I2VGen-XL: UNet, CLIP text + image encoders, AutoencoderKL ------------------------------------
UNET_VIDEO_CONSTRAINTS = dict(size_multiple=64, min_size=128, max_size=1536)

_WAN_FAST_CACHE = "first-block-cache:0.05"

SPECS_LIST: list[ModelSpec] = [
    ModelSpec(
        id="i2vgen-xl",
        family="i2vgen-xl",
        title="I2VGen-XL (Alibaba)",
        pipeline_cls="diffusers.I2VGenXLPipeline",
        modelscope_id="AI-ModelScope/i2vgen-xl",
        hf_id="ali-vilab/i2vgen-xl",
        variant="fp16",
        allow_patterns=_patterns("fp16"),
        preferred_dtype="float16",
        defaults=Defaults(height=512, width=512, frames=16, steps=50, guidance=9.0, fps=8),
        constraints=Constraints(**UNET_VIDEO_CONSTRAINTS, min_frames=2, max_frames=64),
        # Tiers from the seed write-up: fast preview 256p x 8 frames x 30 steps; standard 512p x 16 x 40.
        presets=_presets(
            fast=dict(height=256, width=256, frames=8, steps=30),
            standard=dict(height=512, width=512, frames=16, steps=40),
            hq=dict(height=704, width=1280, frames=16, steps=50),
        ),
        memory=measured("i2vgen-xl"),
        latent=(8, 1, 1),
        denoiser_blocks=12,
        notes="diffusers keeps it under pipelines/deprecated; works; its UNet ignores attention backends.",
    ),
    ModelSpec(
        id="svd-xt",
        family="svd",
        title="Stable Video Diffusion XT (Stability AI)",
        pipeline_cls="diffusers.StableVideoDiffusionPipeline",
        modelscope_id="AI-ModelScope/stable-video-diffusion-img2vid-xt",
        hf_id="stabilityai/stable-video-diffusion-img2vid-xt",
        variant="fp16",
        allow_patterns=_patterns("fp16"),
        preferred_dtype="float16",
        defaults=Defaults(height=576, width=1024, frames=25, steps=25, guidance=3.0, fps=7),
        constraints=Constraints(**UNET_VIDEO_CONSTRAINTS, min_frames=2, max_frames=50, max_guidance=10.0),
        presets=_presets(
            fast=dict(height=320, width=576, frames=14, steps=15),
            standard=dict(height=576, width=1024, frames=25, steps=25),
            hq=dict(height=576, width=1024, frames=25, steps=40),
        ),
        memory=measured("svd-xt"),
        latent=(8, 1, 1),
        denoiser_blocks=12,
        notes="guidance is the max of the per-frame linear guidance ramp (min 1.0).",
    ),
    ModelSpec(
        id="ltx-video",
        family="ltx-video",
        title="LTX-Video 2B (Lightricks)",
        pipeline_cls="diffusers.LTXImageToVideoPipeline",
        modelscope_id="Lightricks/LTX-Video",
        hf_id="Lightricks/LTX-Video",
        variant=None,
        allow_patterns=_patterns(None),
        preferred_dtype="bfloat16",
        defaults=Defaults(height=480, width=704, frames=121, steps=50, guidance=3.0, fps=24),
        constraints=Constraints(
            size_multiple=32,
            frames_step=8,
            frames_offset=1,
            min_size=128,
            max_size=1280,
            min_frames=9,
            max_frames=257,
        ),
        presets=_presets(
            fast=dict(height=320, width=480, frames=65, steps=20),
            standard=dict(height=480, width=704, frames=121, steps=40),
            hq=dict(height=704, width=1216, frames=121, steps=50),
            fast_cache=_WAN_FAST_CACHE,
        ),
        memory=measured("ltx-video"),
        latent=(32, 8, 1),
        denoiser_blocks=28,
    ),
    ModelSpec(
        id="ltx-2",
        family="ltx-2",
        title="LTX-2 audio+video (Lightricks)",
        pipeline_cls="diffusers.LTX2ImageToVideoPipeline",
        modelscope_id="Lightricks/LTX-2",
        hf_id="Lightricks/LTX-2",
        variant=None,
        # the two-stage modes' stage-2 LoRA is a single file at the repo root (i2v.families.ltx2)
        allow_patterns=_patterns(None) + ("ltx-2-19b-distilled-lora-384.safetensors",),
        preferred_dtype="bfloat16",
        defaults=Defaults(height=512, width=768, frames=121, steps=30, guidance=3.0, fps=24),
        constraints=Constraints(
            size_multiple=32,
            frames_step=8,
            frames_offset=1,
            min_size=128,
            max_size=1536,
            min_frames=9,
            max_frames=257,
        ),
        presets=_presets(
            fast=dict(height=384, width=576, frames=65, steps=15),
            standard=dict(height=512, width=768, frames=121, steps=30),
            hq=dict(height=704, width=1216, frames=121, steps=40),
            # FirstBlockCache/MagCache raise on LTX-2 (ARCHITECTURE.md): its fast preview is fewer steps.
            fast_cache=None,
            # The distilled mode: 8 + 3 steps without guidance (i2v.families.ltx2); stage 1 at half size.
            distilled=Preset(
                "fast",
                "fast (distilled, 8 + 3 steps)",
                dict(height=512, width=768, frames=121),
                mode="distilled",
            ),
        ),
        memory=measured("ltx-2"),
        latent=(32, 8, 1),
        denoiser_blocks=48,
        # Modes (two-stage, distilled, keyframes, ...) and the files each needs: i2v.families.ltx2. Guided
        # stages take steps and guidance from the request (these defaults, the preset).
    ),
]


def _wan(
    id_: str,
    title: str,
    hub: str,
    height: int,
    width: int,
    frames: int,
    fps: int,
    guidance: float,
    latent: tuple[int, int, int],
    fast: dict,
    hq: dict,
    distilled: Preset | None = None,
) -> ModelSpec:
    return ModelSpec(
        id=id_,
        family="wan2.2" if id_.startswith("wan2.2") else "wan2.1",
        title=title,
        pipeline_cls="diffusers.WanImageToVideoPipeline",
        modelscope_id=hub,
        hf_id=hub,
        variant=None,
        allow_patterns=_patterns(None),
        preferred_dtype="bfloat16",
        defaults=Defaults(height=height, width=width, frames=frames, steps=50, guidance=guidance, fps=fps),
        constraints=Constraints(
            size_multiple=latent[0] * latent[2],
            frames_step=4,
            frames_offset=1,
            min_size=128,
            max_size=1536,
            min_frames=5,
            max_frames=161,
        ),
        presets=_presets(
            fast=fast,
            standard=dict(height=height, width=width, frames=frames, steps=40),
            hq=hq,
            fast_cache=_WAN_FAST_CACHE,
            distilled=distilled,
        ),
        memory=measured(id_),
        latent=latent,
        denoiser_blocks=40 if "14b" in id_ else 30,
    )


# LightX2V's table (ARCHITECTURE.md): Wan2.1 I2V 480p 81 frames in 14 s on an H200 with the 4-step LoRA.
def _distilled_wan(loras: tuple[PresetLora, ...]) -> Preset:
    return Preset("fast", "fast (4-step distilled)", dict(steps=4, guidance=1.0), loras=loras)


WAN21_DISTILLED = _distilled_wan((PresetLora("lightx2v-wan2.1-i2v-4step", WAN21_I2V_4STEP),))
WAN22_A14B_DISTILLED = _distilled_wan(
    (
        PresetLora("lightx2v-wan2.2-i2v-a14b-4step", WAN22_A14B_HIGH, target="transformer"),
        PresetLora("lightx2v-wan2.2-i2v-a14b-4step", WAN22_A14B_LOW, target="transformer_2"),
    )
)

SPECS_LIST += [
    _wan(
        "wan2.1-i2v-14b-480p",
        "Wan2.1 I2V 14B 480p",
        "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        480,
        832,
        81,
        16,
        5.0,
        (8, 4, 2),
        fast=dict(height=320, width=576, frames=33, steps=20),
        hq=dict(steps=50),
        distilled=WAN21_DISTILLED,
    ),
    _wan(
        "wan2.1-i2v-14b-720p",
        "Wan2.1 I2V 14B 720p",
        "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers",
        720,
        1280,
        81,
        16,
        5.0,
        (8, 4, 2),
        fast=dict(height=480, width=832, frames=33, steps=20),
        hq=dict(steps=50),
        distilled=WAN21_DISTILLED,
    ),
    _wan(
        "wan2.2-ti2v-5b",
        "Wan2.2 TI2V 5B",
        "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        704,
        1280,
        121,
        24,
        5.0,
        (16, 4, 2),
        fast=dict(height=480, width=832, frames=49, steps=20),
        hq=dict(steps=50),
    ),
    _wan(
        "wan2.2-i2v-a14b",
        "Wan2.2 I2V A14B (MoE: high/low-noise experts)",
        "Wan-AI/Wan2.2-I2V-A14B-Diffusers",
        480,
        832,
        81,
        16,
        3.5,
        (8, 4, 2),
        fast=dict(height=320, width=576, frames=33, steps=20),
        hq=dict(height=720, width=1280, steps=40),
        distilled=WAN22_A14B_DISTILLED,
    ),
]


# --- LTX-2.3 22B on Lightricks' own ltx-pipelines 1.0.0 (i2v.families.ltx2_official) --------------
# Single-file checkpoints + the Gemma 3 12B root in folders of their own (``i2v fetch ltx-2.3 --mode M``
# takes only what a mode reads). Defaults are the package's CLI defaults for its default mode,
# two-stage (1024x1536, 121 frames at 24 fps, 30 steps, video CFG 3.0); every mode checks its own
# rules (multiples of 64 for two-stage modes) in the adapter.
_LTX23_CONSTRAINTS = dict(size_multiple=32, frames_step=8, frames_offset=1, min_frames=9, max_guidance=20.0)
SPECS_LIST.append(
    ModelSpec(
        id="ltx-2.3",
        family="ltx-2",
        backend="ltx-pipelines",
        title="LTX-2.3 22B audio+video (Lightricks' own pipelines, eight modes)",
        pipeline_cls="ltx_pipelines.ti2vid_two_stages.TI2VidTwoStagesPipeline",
        modelscope_id="Lightricks/LTX-2.3",
        hf_id="Lightricks/LTX-2.3",
        variant=None,
        allow_patterns=(),  # per mode: i2v.families.ltx2_official.weights.files_for
        preferred_dtype="bfloat16",
        defaults=Defaults(height=1024, width=1536, frames=121, steps=30, guidance=3.0, fps=24),
        constraints=Constraints(
            **_LTX23_CONSTRAINTS, min_size=64, max_size=2048, max_frames=257, max_steps=100
        ),
        presets=_presets(
            fast=dict(height=512, width=768, frames=41, steps=20),
            standard=dict(height=1024, width=1536, frames=121, steps=30),
            hq=dict(height=1024, width=1536, frames=121, steps=40),
        ),
        # not measured: ltx-pipelines is not the diffusers pipeline i2v.memory measures; the adapter's
        # phases (FamilyAdapter.phases) are where its per-phase memory belongs
        memory=measured("ltx-2.3"),
        latent=(32, 8, 1),
        denoiser_blocks=48,
    )
)


# Tiny models run on the CPU: a generous guess, never measured (their plans are resident anyway).
TINY_MEMORY = PhaseFits(
    fits={
        "text": PhaseFit(base_mib=32.0),
        "condition": PhaseFit(base_mib=16.0, per_mpixel_frame=200.0),
        "denoise": PhaseFit(base_mib=16.0, per_mtoken=500.0),
        "decode": PhaseFit(base_mib=16.0, per_mpixel_frame=200.0, per_mpixel_decoded=200.0),
    },
    overhead_mib=64.0,
    source="estimate: tiny random-weight models (CPU)",
)
# Tiny LightX2V-format LoRAs made locally (i2v.tiny.lora) for the tiny Wan models' distilled presets.
TINY_WAN21_DISTILLED = Preset(
    "fast",
    "fast (distilled, tiny LoRA)",
    dict(steps=2, guidance=1.0),
    loras=(PresetLora("tiny-lightx2v-wan2.1-i2v", "tiny_wan2.1_i2v_lora_lightx2v.safetensors"),),
)
TINY_WAN22_DISTILLED = Preset(
    "fast",
    "fast (distilled, tiny LoRAs)",
    dict(steps=2, guidance=1.0),
    loras=(
        PresetLora("tiny-lightx2v-wan2.2-i2v-a14b", "tiny_wan2.2_high_noise_lora_lightx2v.safetensors"),
        PresetLora(
            "tiny-lightx2v-wan2.2-i2v-a14b",
            "tiny_wan2.2_low_noise_lora_lightx2v.safetensors",
            target="transformer_2",
        ),
    ),
)


def _tiny(
    id_: str,
    family: str,
    pipeline_cls: str,
    constraints: Constraints,
    latent: tuple[int, int, int],
    height: int,
    width: int,
    frames: int,
    distilled: Preset | None = None,
    **extra,
) -> ModelSpec:
    """A tiny random-weight model of a family, built locally on first use (tests and `make demo`)."""
    small = dict(height=height, width=width, frames=frames, steps=2)
    return ModelSpec(
        id=id_,
        family=family,
        title=f"tiny random-weight {family} (tests, demo)",  # type: ignore[arg-type]
        pipeline_cls=pipeline_cls,
        modelscope_id=None,
        hf_id=None,
        variant=None,
        allow_patterns=_patterns(None),
        preferred_dtype="bfloat16",
        defaults=Defaults(height=height, width=width, frames=frames, steps=2, guidance=3.0, fps=8),
        constraints=constraints,
        # LTX's scheduler needs 2+ steps
        presets=_presets(fast=small, standard=small, hq=dict(small, steps=4), distilled=distilled),
        memory=TINY_MEMORY,
        latent=latent,
        denoiser_blocks=2,
        tiny=True,
        **extra,
    )


_SMALL = dict(min_size=32, max_size=256)
SPECS_LIST += [
    _tiny(
        "tiny-i2vgen-xl",
        "i2vgen-xl",
        "diffusers.I2VGenXLPipeline",
        Constraints(size_multiple=32, min_frames=2, max_frames=16, **_SMALL),
        (8, 1, 1),
        64,
        64,
        8,
    ),
    _tiny(
        "tiny-svd",
        "svd",
        "diffusers.StableVideoDiffusionPipeline",
        Constraints(size_multiple=32, min_frames=2, max_frames=16, **_SMALL),
        (8, 1, 1),
        64,
        64,
        4,
    ),
    _tiny(
        "tiny-ltx-video",
        "ltx-video",
        "diffusers.LTXImageToVideoPipeline",
        Constraints(size_multiple=32, frames_step=8, frames_offset=1, min_frames=9, max_frames=33, **_SMALL),
        (32, 8, 1),
        64,
        64,
        9,
    ),
    _tiny(
        "tiny-ltx-2",
        "ltx-2",
        "diffusers.LTX2ImageToVideoPipeline",
        Constraints(size_multiple=32, frames_step=8, frames_offset=1, min_frames=9, max_frames=33, **_SMALL),
        (32, 8, 1),
        64,
        64,
        9,
    ),
    _tiny(
        "tiny-wan2.1-i2v",
        "wan2.1",
        "diffusers.WanImageToVideoPipeline",
        Constraints(size_multiple=16, frames_step=4, frames_offset=1, min_frames=5, max_frames=33, **_SMALL),
        (8, 4, 2),
        32,
        32,
        9,
        distilled=TINY_WAN21_DISTILLED,
    ),
    _tiny(
        "tiny-wan2.2-ti2v",
        "wan2.2",
        "diffusers.WanImageToVideoPipeline",
        Constraints(size_multiple=32, frames_step=4, frames_offset=1, min_frames=5, max_frames=33, **_SMALL),
        (16, 4, 2),
        32,
        32,
        9,
    ),
    _tiny(
        "tiny-wan2.2-i2v-a14b",
        "wan2.2",
        "diffusers.WanImageToVideoPipeline",
        Constraints(size_multiple=16, frames_step=4, frames_offset=1, min_frames=5, max_frames=33, **_SMALL),
        (8, 4, 2),
        32,
        32,
        9,
        distilled=TINY_WAN22_DISTILLED,
    ),
]

SPECS_LIST.append(
    _tiny(
        "tiny-ltx-2.3",
        "ltx-2",
        "ltx_pipelines.ti2vid_two_stages.TI2VidTwoStagesPipeline",
        Constraints(size_multiple=32, frames_step=8, frames_offset=1, min_frames=9, max_frames=33, **_SMALL),
        (32, 8, 1),
        64,
        64,
        9,
        backend="ltx-pipelines",
    )
)

SPECS: dict[str, ModelSpec] = {s.id: s for s in SPECS_LIST}

# The embedded default: what `make demo`, `i2v serve` and the cpu profile run with no settings.
DEFAULT_MODEL = "tiny-i2vgen-xl"
