"""Tiny I2VGen-XL: the catalogue's TINY entry assembled into ``I2VGenXLPipeline``.

Runs the whole pipeline (CLIP text and image towers, VAE encode of the conditioning image, 3D
UNet with CFG, per-frame VAE decode) at 64x64, 8 frames.

transformers 5 flattened ``CLIPTextModel`` (no ``.text_model`` wrapper any more), but diffusers
0.42's deprecated I2VGen-XL pipeline still calls ``text_encoder.text_model.final_layer_norm``
whenever ``clip_skip`` is set, and its default is ``clip_skip=1`` (OpenCLIP's penultimate layer,
which the model was trained with). The family adapter (`i2v.families.i2vgen.I2VGenXL.prepare`)
restores the attribute; the engine applies it after every ``from_pretrained``.
"""

from __future__ import annotations

from typing import Any

from i2v.catalogue.arch_i2vgen import TINY
from i2v.families.i2vgen import I2VGenXL
from i2v.tiny.build import assemble

# Call arguments a smoke run uses (the pipeline's defaults are 704x1280, 16 frames, 50 steps).
SMOKE_CALL: dict[str, dict[str, Any]] = {
    "tiny-i2vgen-xl": {
        "height": 64,
        "width": 64,
        "num_frames": 8,
        "num_inference_steps": 2,
        "guidance_scale": 9.0,
        "target_fps": 16,
    },
}


def build(tiny_id: str) -> Any:
    return I2VGenXL().prepare(assemble(TINY[tiny_id]))
