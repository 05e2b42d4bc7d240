"""Tiny Stable Video Diffusion: the catalogue's TINY entry assembled into
``StableVideoDiffusionPipeline``.

Runs the whole pipeline (224 px CLIP image embedding, noise-augmented VAE encode, spatio-temporal
UNet with frame-wise CFG, temporal-decoder VAE) at 64x64, 5 frames.
"""

from __future__ import annotations

from typing import Any

from i2v.catalogue.arch_svd import TINY
from i2v.tiny.build import assemble

# Call arguments a smoke run uses (the pipeline's defaults are 576x1024, 25 frames, 25 steps).
# max_guidance_scale > 1 keeps classifier-free guidance on.
SMOKE_CALL: dict[str, dict[str, Any]] = {
    "tiny-svd": {
        "height": 64,
        "width": 64,
        "num_frames": 5,
        "num_inference_steps": 2,
        "decode_chunk_size": 5,
        "min_guidance_scale": 1.0,
        "max_guidance_scale": 3.0,
        "fps": 7,
        "motion_bucket_id": 127,
        "noise_aug_strength": 0.02,
    },
}


def build(tiny_id: str) -> Any:
    return assemble(TINY[tiny_id])
