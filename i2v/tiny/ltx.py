"""Tiny LTX-Video and LTX-2 pipelines, built locally with random weights (no download).

``build(tiny_id)`` is the family builder named in ``i2v.tiny.build.BUILDERS``: it assembles the
TINY architecture of i2v.catalogue.arch_ltx / arch_ltx2 into ``LTXImageToVideoPipeline`` /
``LTX2ImageToVideoPipeline``. ``build_tiny_ltx_video(dest)`` and ``build_tiny_ltx2(dest)`` write
them in the hub layout (model_index.json + sub-folders, safetensors only) through a temporary
sibling renamed into place; LTX-2 also gets the hub's extra ``latent_upsampler/`` sub-folder (not
in model_index.json, as on ``Lightricks/LTX-2``) that the two-stage modes load with
``LTX2LatentUpsamplerModel.from_pretrained(dest, subfolder="latent_upsampler")``.

Both run every real code path at 64x64, 9 frames, 2 steps in well under a second on CPU: VAE
encode of the conditioning image (LTX-2: after its H.264 CRF re-compression), CFG, VAE decode;
LTX-2 also the Gemma-3 encoder with all hidden states, the connectors' learnable registers,
STG and modality-isolation passes, the audio VAE decode and the vocoder (24 kHz stereo).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from i2v.catalogue import arch_ltx, arch_ltx2
from i2v.tiny.build import assemble, build_pipeline, build_tiny, instantiate

_TINY = {**arch_ltx.TINY, **arch_ltx2.TINY}

# Call arguments a smoke run uses: frames 8k+1, sizes multiples of 32 (the VAEs' 32x/8x strides).
_CALL = {"height": 64, "width": 64, "num_frames": 9, "num_inference_steps": 2, "guidance_scale": 3.0}
SMOKE_CALL: dict[str, dict[str, Any]] = {
    "tiny-ltx-video": dict(_CALL),
    "tiny-ltx-2": {**_CALL, "max_sequence_length": arch_ltx2.TINY_MAX_SEQUENCE_LENGTH,
                   **arch_ltx2.LTX2_0_CALL_KWARGS},
}


def build(tiny_id: str) -> Any:
    """The unsaved tiny pipeline (``BUILDERS`` protocol; the caller seeds torch)."""
    return assemble(_TINY[tiny_id])


def build_tiny_ltx_video(dest: Path) -> Path:
    """Write tiny-ltx-video at ``dest`` (replacing an old one) and return ``dest``."""
    return build_tiny("tiny-ltx-video", dest)


def build_tiny_ltx2(dest: Path) -> Path:
    """Write tiny-ltx-2 at ``dest`` with its ``latent_upsampler/`` (replacing an old one); return ``dest``."""
    import torch

    pipe = build_pipeline("tiny-ltx-2")
    torch.manual_seed(0)
    upsampler = instantiate(arch_ltx2.UPSAMPLER["tiny-ltx-2"].component("latent_upsampler"))
    return _save(pipe, {"latent_upsampler": upsampler}, Path(dest))


def _save(pipe: Any, extras: dict[str, Any], dest: Path) -> Path:
    """``pipe`` plus extra model sub-folders, written to a temporary sibling and swapped into ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}"
    old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        for name, model in extras.items():
            model.save_pretrained(tmp / name, safe_serialization=True)
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not dest.exists():
            old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return dest


__all__ = ["SMOKE_CALL", "build", "build_tiny_ltx2", "build_tiny_ltx_video"]
