"""Tiny Wan 2.1 I2V, Wan 2.2 TI2V-5B and Wan 2.2 I2V-A14B, assembled into
``WanImageToVideoPipeline`` with each model's pipeline options (``boundary_ratio``,
``expand_timesteps``) from the catalogue.

Each runs the whole pipeline (UMT5 text encoder, CLIP image encoder for 2.1, Wan VAE encode of the
conditioning frame, DiT with CFG; both experts for A14B across the 0.9 boundary) at 64x64, 9 frames.
"""

from __future__ import annotations

from typing import Any

from i2v.catalogue.arch_wan import PIPELINE_CONFIG, TINY
from i2v.tiny.build import assemble

# Call arguments a smoke run uses (the pipeline's defaults are 480x832, 81 frames, 50 steps).
# Frames are 4k+1; sizes are multiples of 16 (32 for TI2V-5B's 16x VAE with 2x2 patches).
# With 2 steps the A14B timesteps are ~999 and ~750: one step on each expert.
_CALL = {"height": 64, "width": 64, "num_frames": 9, "num_inference_steps": 2, "guidance_scale": 5.0}
SMOKE_CALL: dict[str, dict[str, Any]] = {tiny_id: dict(_CALL) for tiny_id in TINY}


def build(tiny_id: str) -> Any:
    return assemble(TINY[tiny_id], PIPELINE_CONFIG.get(tiny_id, {}))
