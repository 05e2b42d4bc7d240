"""Media a request carries besides its text fields: the image, a mode's other inputs (last image,
keyframes, audio, source or reference video) and an extension's source video.

Each arrives as a multipart file part or as a base64 ``data:`` URL (what the `openai` SDK's
``extra_body`` can carry; the SDK uploads only ``input_reference`` as a file); a video may also be
named by the id of a completed video on this server (``reference_video[id]``, the SDK's own
reference shape). Nothing is fetched from the network.

Checks before anything is stored: the type from the bytes themselves (never the client's file name
or Content-Type), the byte cap, for images the pixel cap read from the header (a decompression bomb
is refused before a pixel is decoded) and a full decode (two at a time); for audio and video the
demuxer is chosen from the sniffed type (FFmpeg never probes for another, so no playlist or
network demuxer can run) and must find a stream of that kind.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import threading
from dataclasses import dataclass
from typing import Literal

from i2v.images import FORMATS, ImageError, load_image
from i2v.jobs.paths import IMAGE_SUFFIX
from i2v.server.errors import ApiError

MediaKind = Literal["image", "audio", "video"]
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+=[\w.+-]+)*);base64,", re.ASCII)
# suffix -> the FFmpeg demuxer that reads it (forced: no format probing)
DEMUXERS = {
    ".wav": "wav",
    ".mp3": "mp3",
    ".flac": "flac",
    ".ogg": "ogg",
    ".m4a": "mov",
    ".mp4": "mov",
    ".mov": "mov",
    ".webm": "matroska",
}
AUDIO_TYPES = "WAV, MP3, FLAC, Ogg or M4A"
VIDEO_TYPES = "MP4, MOV or WebM"
_decodes = threading.BoundedSemaphore(2)


@dataclass(frozen=True)
class MediaInput:
    """One media field as sent: bytes (a file part or a decoded data: URL), or a video id here."""

    field: str  # the wire name the client used: errors name it
    data: bytes | None = None
    video_id: str | None = None


@dataclass(frozen=True)
class CheckedMedia:
    suffix: str  # the stored file's suffix, from the sniffed type
    duration_s: float | None = None  # audio and video
    width: int | None = None
    height: int | None = None


def decode_data_url(field: str, text: str, max_bytes: int) -> bytes:
    """The bytes of a base64 ``data:`` URL; ApiError for anything else (URLs are never fetched)."""
    head = text[:200].lstrip()
    if re.match(r"^(https?|ftp|file)://", head, re.IGNORECASE):
        raise ApiError(
            422,
            "invalid_field",
            f"`{field}` is a URL; this server fetches nothing from the network: send the file as a "
            "multipart file part or a base64 data: URL",
            field=field,
            value=head,
            valid=["a file part", "data:<type>;base64,<data>"],
        )
    match = _DATA_URL.match(head)
    if match is None:
        raise ApiError(
            422,
            "invalid_field",
            f"`{field}` must be a file part or a base64 data: URL (data:<type>;base64,<data>)",
            field=field,
            value=head,
            valid=["a file part", "data:<type>;base64,<data>"],
        )
    payload = text.lstrip()[match.end() :]
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise too_big(field, len(payload) * 3 // 4, max_bytes)
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            422, "invalid_field", f"`{field}`: the data: URL is not valid base64", field=field, value=head
        ) from None


def too_big(field: str, size: int, max_bytes: int) -> ApiError:
    return ApiError(
        413,
        "upload_too_large",
        f"`{field}` is {size} bytes; the limit is {max_bytes}",
        field=field,
        valid={"max_bytes": max_bytes},
    )


def sniff(field: str, kind: MediaKind, data: bytes) -> str:
    """The suffix for `data` as `kind` ("audio": .wav .mp3 .flac .ogg .m4a; "video": .mp4 .mov .webm)."""
    head = data[:16]
    suffix = None
    if kind == "audio":
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            suffix = ".wav"
        elif head[:4] == b"fLaC":
            suffix = ".flac"
        elif head[:4] == b"OggS":
            suffix = ".ogg"
        elif head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
            suffix = ".mp3"
        elif head[4:8] == b"ftyp":
            suffix = ".m4a"
    elif kind == "video":
        if head[4:8] == b"ftyp":
            suffix = ".mov" if head[8:12] == b"qt  " else ".mp4"
        elif head[:4] == b"\x1a\x45\xdf\xa3":
            suffix = ".webm"
    if suffix is None:
        types = AUDIO_TYPES if kind == "audio" else VIDEO_TYPES
        raise ApiError(
            415,
            f"unsupported_{kind}_format",
            f"`{field}` is not {'an' if kind == 'audio' else 'a'} {types} file",
            field=field,
            valid=types.replace(" or ", ", ").split(", "),
        )
    return suffix


def check(field: str, kind: MediaKind, data: bytes, *, max_bytes: int, max_pixels: int) -> CheckedMedia:
    """Every check of one media input; ApiError (413/415/422) naming `field` otherwise."""
    if kind == "image":
        image_format, (width, height) = inspect_image(
            data, field=field, max_bytes=max_bytes, max_pixels=max_pixels
        )
        return CheckedMedia(IMAGE_SUFFIX[image_format], width=width, height=height)
    if not data:
        raise ApiError(422, f"invalid_{kind}", f"`{field}` is empty", field=field)
    if len(data) > max_bytes:
        raise too_big(field, len(data), max_bytes)
    suffix = sniff(field, kind, data)
    return _probe(field, kind, data, suffix)


def _probe(field: str, kind: MediaKind, data: bytes | str, suffix: str) -> CheckedMedia:
    import av

    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with av.open(source, format=DEMUXERS[suffix]) as container:
            streams = container.streams.audio if kind == "audio" else container.streams.video
            if not streams:
                raise ApiError(422, f"invalid_{kind}", f"`{field}` has no {kind} stream", field=field)
            stream = streams[0]
            duration = None
            if container.duration:
                duration = container.duration / av.time_base
            elif stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            if kind == "video":
                context = stream.codec_context
                return CheckedMedia(suffix, duration, context.width, context.height)
            return CheckedMedia(suffix, duration)
    except av.FFmpegError as exc:
        raise ApiError(
            422, f"invalid_{kind}", f"`{field}` could not be read as {kind}: {exc}", field=field
        ) from None


def inspect_image(data: bytes, *, field: str, max_bytes: int, max_pixels: int) -> tuple[str, tuple[int, int]]:
    """(format "PNG" | "JPEG" | "WEBP", (width, height)) once the image passed every check."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ApiError(422, "invalid_image", f"`{field}`: the image file is empty", field=field)
    if len(data) > max_bytes:
        raise ApiError(
            413,
            "image_too_large",
            f"`{field}`: the image is {len(data)} bytes; the limit is {max_bytes}",
            field=field,
            valid={"max_bytes": max_bytes},
        )
    try:
        # Only the allowed decoders may even look at it; open() reads the header, not the pixels.
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as probe:
            image_format, (width, height) = probe.format, probe.size
    except UnidentifiedImageError:
        raise ApiError(
            415,
            "unsupported_image_format",
            f"`{field}` is not a PNG, JPEG or WebP file",
            field=field,
            valid=list(FORMATS),
        ) from None
    except Image.DecompressionBombError as exc:
        raise ApiError(
            413,
            "image_too_large",
            f"`{field}`: the image header declares too many pixels ({exc})",
            field=field,
            valid={"max_pixels": max_pixels},
        ) from None
    except Exception as exc:  # noqa: BLE001 - a corrupt header can raise anything from a decoder plugin
        raise ApiError(
            422, "invalid_image", f"`{field}`: the image header is corrupt: {exc}", field=field
        ) from None
    if width * height > max_pixels:
        raise ApiError(
            413,
            "image_too_large",
            f"`{field}`: the image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
            field=field,
            value=f"{width}x{height}",
            valid={"max_pixels": max_pixels},
        )
    with _decodes:
        try:
            load_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
        except ImageError as exc:
            raise ApiError(422, "invalid_image", f"`{field}`: {exc}", field=field) from None
        except Exception as exc:  # noqa: BLE001 - truncated or corrupt pixel data
            raise ApiError(
                422, "invalid_image", f"`{field}`: the image could not be decoded: {exc}", field=field
            ) from None
    return image_format, (width, height)


def probe_file(field: str, kind: MediaKind, path: str) -> CheckedMedia:
    """`_probe` for a video this server made (a completed job's mp4, read from disk)."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    return _probe(field, kind, path, sniff(field, kind, head))
