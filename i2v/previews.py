"""Previews of a finished video: its first frame as a WebP thumbnail, and a spritesheet (up to 16
frames picked evenly, left to right then top to bottom, in a near-square grid) as a JPEG.

The worker writes both beside the mp4 from the frames it already holds; for a video that has none
(made before previews existed) the API makes them from the mp4 on first request. Written
atomically (temporary file, then rename). Torch-free: numpy, Pillow and PyAV.
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SPRITE_FRAMES = 16
SPRITE_TILE_MAX = 256  # pixels on the longer side of one tile
VARIANT_MEDIA = {"thumbnail": "image/webp", "spritesheet": "image/jpeg"}


@dataclass(frozen=True)
class SpriteLayout:
    frames: tuple[int, ...]  # the video's frame indices, in the sheet's order
    columns: int
    rows: int
    tile_width: int
    tile_height: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": list(self.frames),
            "columns": self.columns,
            "rows": self.rows,
            "tile_width": self.tile_width,
            "tile_height": self.tile_height,
        }


def sprite_layout(frames: int, width: int, height: int) -> SpriteLayout:
    """Which frames the spritesheet of a `frames`-frame `width` x `height` video shows, and how."""
    count = min(frames, SPRITE_FRAMES)
    picked = tuple(sorted({round(i * (frames - 1) / max(count - 1, 1)) for i in range(count)}))
    columns = math.ceil(math.sqrt(len(picked)))
    scale = min(1.0, SPRITE_TILE_MAX / max(width, height))
    return SpriteLayout(
        picked,
        columns,
        math.ceil(len(picked) / columns),
        max(1, round(width * scale)),
        max(1, round(height * scale)),
    )


def to_uint8(frame: Any) -> np.ndarray:
    array = np.asarray(frame)
    if array.dtype == np.uint8:
        return array
    return np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)


def thumbnail(frames: Any) -> Any:
    from PIL import Image

    return Image.fromarray(to_uint8(frames[0]))


def spritesheet(frames: Any) -> Any:
    from PIL import Image

    height, width = np.asarray(frames[0]).shape[:2]
    layout = sprite_layout(len(frames), width, height)
    sheet = Image.new("RGB", (layout.columns * layout.tile_width, layout.rows * layout.tile_height))
    for slot, index in enumerate(layout.frames):
        tile = Image.fromarray(to_uint8(frames[index]))
        if tile.size != (layout.tile_width, layout.tile_height):
            tile = tile.resize((layout.tile_width, layout.tile_height), Image.Resampling.LANCZOS)
        row, column = divmod(slot, layout.columns)
        sheet.paste(tile, (column * layout.tile_width, row * layout.tile_height))
    return sheet


def write_previews(frames: Any, paths: dict[str, Path]) -> None:
    """Write the thumbnail and spritesheet of `frames` to `paths` ({"thumbnail": ..., "spritesheet": ...})."""
    _save(thumbnail(frames), paths["thumbnail"], "WEBP", quality=90)
    _save(spritesheet(frames), paths["spritesheet"], "JPEG", quality=85)


def previews_from_mp4(mp4: Path, paths: dict[str, Path]) -> None:
    """The previews of a written mp4, decoding it in order and keeping only the frames they show."""
    import av

    with av.open(str(mp4)) as container:
        count = sum(1 for _ in container.decode(video=0))  # decoded, not the header's nb_frames
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        layout = sprite_layout(count, stream.codec_context.width, stream.codec_context.height)
        wanted, kept = set(layout.frames) | {0}, {}
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                kept[index] = frame.to_ndarray(format="rgb24")
    frames = _Picked(kept, count)
    write_previews(frames, paths)


class _Picked:
    """Frames by index where only some are held (what the previews read); len() is the full count."""

    def __init__(self, kept: dict[int, np.ndarray], count: int):
        self.kept, self.count = kept, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray:
        return self.kept[index]


def _save(image: Any, path: Path, image_format: str, **options: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    try:
        image.save(tmp, format=image_format, **options)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


__all__ = ["SpriteLayout", "previews_from_mp4", "sprite_layout", "spritesheet", "thumbnail", "write_previews"]
