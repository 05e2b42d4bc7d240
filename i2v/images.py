"""Load the conditioning image: PNG, JPEG or WebP only, with byte and pixel caps checked before
decoding (a decompression bomb is refused from its header), converted to RGB."""

from __future__ import annotations

import io
from pathlib import Path

FORMATS = ("PNG", "JPEG", "WEBP")
MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000


class ImageError(ValueError):
    """The input image is missing, unreadable, not an allowed format, or too large."""


def load_image(source: str | Path | bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS):
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"image {str(path)!r} does not exist or is not a file")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(f"image {str(path)!r} is {size} bytes; the limit is {max_bytes}")
        data = path.read_bytes()
        name = str(path)
    else:
        data = bytes(source)
        name = "upload"
        if len(data) > max_bytes:
            raise ImageError(f"image is {len(data)} bytes; the limit is {max_bytes}")
    try:
        with Image.open(io.BytesIO(data)) as probe:  # reads the header only
            fmt, (width, height) = probe.format, probe.size
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image (allowed: {', '.join(FORMATS)})") from None
    except Image.DecompressionBombError:  # PIL's own header check (> 2x its pixel limit)
        raise ImageError(f"{name} declares more pixels than the limit of {max_pixels}") from None
    if fmt not in FORMATS:
        raise ImageError(f"{name} is {fmt}; allowed formats are {', '.join(FORMATS)}")
    if width * height > max_pixels:
        raise ImageError(f"{name} is {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{name} could not be decoded: {exc}") from None
    return image.convert("RGB")
