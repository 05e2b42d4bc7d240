"""The requests `python -m i2v.memory.fit` measures per full-size model: data, torch-free.

Sizes from each model's presets (fast, standard, hq) and beyond, frame counts low and high; every
lever the family has measured where it applies (decode chunks, VAE tiling, forward chunking with the
runtime's chunk count). Adding a point here and rerunning the fit refines the coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from i2v.levers import FORWARD_CHUNKS


@dataclass(frozen=True)
class Point:
    """One request of a grid: size, frames, and the levers it is measured with."""

    height: int
    width: int
    frames: int
    decode_chunk: int | None = None
    vae_tiling: bool = False
    forward_chunks: int = 0


def _p(text: str, **levers: Any) -> Point:
    h, w, f = (int(v) for v in text.split("x"))
    return Point(h, w, f, **levers)


GRIDS: dict[str, list[Point]] = {
    "i2vgen-xl": [
        *[
            _p(s, decode_chunk=c)
            for s in ("256x256x8", "512x512x16", "768x768x24", "704x1280x16")
            for c in (1, 8)
        ],
        _p("512x512x24", decode_chunk=4),
        *[
            _p(s, decode_chunk=1, forward_chunks=FORWARD_CHUNKS)
            for s in ("512x512x16", "768x768x24", "704x1280x16")
        ],
        *[
            _p(s, decode_chunk=c, vae_tiling=True)
            for s in ("512x512x16", "768x768x24", "704x1280x16")
            for c in (1, 8)
        ],
    ],
    "svd-xt": [
        *[
            _p(s, decode_chunk=c)
            for s in ("320x576x14", "576x1024x25", "576x1024x14", "768x1344x25")
            for c in (1, 8)
        ],
        *[
            _p(s, decode_chunk=1, forward_chunks=FORWARD_CHUNKS)
            for s in ("576x1024x25", "768x1344x25", "320x576x14")
        ],
    ],
    "ltx-video": [
        *[
            _p(s)
            for s in ("320x480x65", "480x704x121", "480x704x65", "704x1216x121", "704x1216x65", "320x480x161")
        ],
        *[_p(s, vae_tiling=True) for s in ("480x704x121", "704x1216x121", "704x1216x65")],
    ],
    "ltx-2": [
        # each point runs three distinct transformer forwards (CFG batch, STG, modality) of 45 k ops
        *[_p(s) for s in ("384x576x65", "512x768x121", "704x1216x121")],
        _p("704x1216x121", vae_tiling=True),
    ],
    "wan2.1-i2v-14b-480p": [
        *[
            _p(s)
            for s in ("320x576x33", "480x832x81", "480x832x33", "720x1280x81", "720x1280x33", "480x832x121")
        ],
        *[_p(s, vae_tiling=True) for s in ("480x832x81", "720x1280x81", "720x1280x33")],
    ],
    "wan2.2-ti2v-5b": [
        *[_p(s) for s in ("480x832x49", "704x1280x121", "704x1280x49", "896x1536x49")],
        _p("704x1280x121", vae_tiling=True),
    ],
    "wan2.2-i2v-a14b": [
        # tiled decode not measured here: without a decode+tiled fit the planner counts the plain one
        *[_p(s) for s in ("320x576x33", "480x832x81", "480x832x33", "720x1280x81", "720x1280x33")],
    ],
}
# Same architecture as a measured model: its fits are shared (not measured twice).
SAME_ARCHITECTURE = {"wan2.1-i2v-14b-720p": "wan2.1-i2v-14b-480p"}


__all__ = ["GRIDS", "SAME_ARCHITECTURE", "Point"]
