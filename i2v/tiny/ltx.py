"""Tiny LTX-Video and LTX-2 pipelines, built locally with random weights (no download).

``build(tiny_id)`` is the family builder named in ``i2v.tiny.build.BUILDERS``: it assembles the
TINY architecture of i2v.catalogue.arch_ltx / arch_ltx2 into ``LTXImageToVideoPipeline`` /
``LTX2ImageToVideoPipeline``. ``build_tiny_ltx_video(dest)`` and ``build_tiny_ltx2(dest)`` write
them in the hub layout (model_index.json + sub-folders, safetensors only) through a temporary
sibling renamed into place. LTX-2 also gets, from `write_extras`, what its modes read outside
model_index.json (i2v.families.ltx2): the hub's ``latent_upsampler/`` (x2 spatial upsampler, as on
``Lightricks/LTX-2``), the stage-2 distilled LoRA file under the hub's name (random rank 4), and a
``transformer_distilled/`` (another random transformer: the tiny "distilled" weights).

Both run every real code path at 64x64, 9 frames, 2 steps in well under a second on CPU: VAE
encode of the conditioning image (LTX-2: after its H.264 CRF re-compression), CFG, VAE decode;
LTX-2 also the Gemma-3 encoder with all hidden states, the connectors' learnable registers,
STG and modality-isolation passes, the audio VAE decode and the vocoder (24 kHz stereo).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from i2v.catalogue import arch_ltx, arch_ltx2
from i2v.families.ltx2.modes import LTX2_0_CALL_KWARGS
from i2v.tiny.build import assemble, build_tiny, instantiate

_TINY = {**arch_ltx.TINY, **arch_ltx2.TINY}

# Call arguments a smoke run uses: frames 8k+1, sizes multiples of 32 (the VAEs' 32x/8x strides).
_CALL = {"height": 64, "width": 64, "num_frames": 9, "num_inference_steps": 2, "guidance_scale": 3.0}
SMOKE_CALL: dict[str, dict[str, Any]] = {
    "tiny-ltx-video": dict(_CALL),
    "tiny-ltx-2": {
        **_CALL,
        "max_sequence_length": arch_ltx2.TINY_MAX_SEQUENCE_LENGTH,
        **LTX2_0_CALL_KWARGS,
    },
}


def build(tiny_id: str) -> Any:
    """The unsaved tiny pipeline (``BUILDERS`` protocol; the caller seeds torch)."""
    return assemble(_TINY[tiny_id])


def build_tiny_ltx_video(dest: Path) -> Path:
    """Write tiny-ltx-video at ``dest`` (replacing an old one) and return ``dest``."""
    return build_tiny("tiny-ltx-video", dest)


def build_tiny_ltx2(dest: Path) -> Path:
    """Write tiny-ltx-2 at ``dest`` with its `write_extras` (replacing an old one); return ``dest``."""
    return build_tiny("tiny-ltx-2", dest)


def write_extras(pipe: Any, folder: Path) -> None:
    """The files LTX-2's modes read outside model_index.json (``EXTRAS`` protocol)."""
    import torch

    from i2v.families.ltx2 import modes as ltx2_modes
    from i2v.tiny.lora import write_random_lora

    folder = Path(folder)
    torch.manual_seed(0)
    upsampler = instantiate(arch_ltx2.UPSAMPLER["tiny-ltx-2"].component("latent_upsampler"))
    upsampler.save_pretrained(folder / ltx2_modes.UPSAMPLER_SUBFOLDER, safe_serialization=True)
    torch.manual_seed(1)
    distilled = instantiate(arch_ltx2.TINY["tiny-ltx-2"].component("transformer"))
    distilled.save_pretrained(folder / ltx2_modes.DISTILLED_TRANSFORMER, safe_serialization=True)
    write_random_lora(pipe.transformer, folder / ltx2_modes.DISTILLED_LORA, seed=2)


__all__ = ["SMOKE_CALL", "build", "build_tiny_ltx2", "build_tiny_ltx_video", "write_extras"]
