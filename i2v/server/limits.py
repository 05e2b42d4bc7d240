"""What the API refuses before any work starts: oversized bodies (413), wrong media types (415),
malformed or unknown fields (422), and images that are not PNG/JPEG/WebP or exceed the byte or
pixel caps. The pixel cap is read from the image header, so a decompression bomb is refused before
a single pixel is decoded; full decodes of accepted images are limited to two at a time.
"""

from __future__ import annotations

import io
import math
import re
import threading
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from i2v.images import FORMATS, ImageError, load_image
from i2v.server.errors import ApiError

INT_FIELDS = ("height", "width", "frames", "steps", "fps", "seed")
FLOAT_FIELDS = ("guidance",)
TEXT_FIELDS = ("model", "preset", "prompt", "negative_prompt")
FORM_FIELDS = ("image", *TEXT_FIELDS, *INT_FIELDS, *FLOAT_FIELDS)
FIELD_BYTES = 64 * 1024  # a text field's limit, and the slack allowed beside the image
_INTEGER = re.compile(r"^[+-]?[0-9]{1,20}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_decodes = threading.BoundedSemaphore(2)


class BodyTooLargeError(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for a declared Content-Length over the limit (without reading the body),
    and for a body that grows past it while streaming (chunked uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await ApiError(400, "malformed_request", "Content-Length is not a number").response()(
                    scope, receive, send
                )
            if int(declared) > self.max_bytes:
                return await too_large(int(declared), self.max_bytes).response()(scope, receive, send)
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError()
            return message

        await self.app(scope, limited, send)


def too_large(size: int | None, limit: int) -> ApiError:
    got = f"{size} bytes" if size is not None else "more"
    return ApiError(
        413,
        "payload_too_large",
        f"the request body is {got}; the limit is {limit} bytes",
        valid={"max_bytes": limit},
    )


@dataclass(frozen=True)
class Submission:
    fields: dict[str, Any]  # parsed values of the given fields (absent ones omitted)
    raw: dict[str, str]  # as sent: the idempotency hash covers exactly these
    image: bytes


async def read_submission(request: Request) -> Submission:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the job as multipart/form-data (an `image` file part plus fields), not {media or 'nothing'}",
            field="Content-Type",
            value=media,
            valid=["multipart/form-data"],
        )
    form = await request.form(max_files=1, max_fields=len(FORM_FIELDS) + 4, max_part_size=FIELD_BYTES)
    try:
        return await _read_form(form)
    finally:
        await form.close()  # the spooled upload file, now that its bytes are read


async def _read_form(form: Any) -> Submission:
    fields: dict[str, Any] = {}
    raw: dict[str, str] = {}
    image: bytes | None = None
    for name in form.keys():
        values = form.getlist(name)
        if name not in FORM_FIELDS:
            raise ApiError(
                422,
                "unknown_field",
                f"`{name}` is not a field of this request",
                field=name,
                value=values[0] if isinstance(values[0], str) else None,
                valid=list(FORM_FIELDS),
            )
        if len(values) > 1:
            raise ApiError(
                422, "invalid_field", f"`{name}` was given {len(values)} times; give it once", field=name
            )
        value = values[0]
        if name == "image":
            if not isinstance(value, UploadFile):
                raise ApiError(
                    422, "invalid_field", "`image` must be a file part (PNG, JPEG or WebP)", field="image"
                )
            image = await value.read()
            continue
        if not isinstance(value, str):
            raise ApiError(422, "invalid_field", f"`{name}` must be a text field, not a file", field=name)
        raw[name] = value
        if value.strip() == "" and name not in ("prompt", "negative_prompt"):
            continue  # an empty form input means "use the default"
        fields[name] = _parse(name, value)
    if image is None:
        raise ApiError(
            422,
            "missing_field",
            "`image` is required: a PNG, JPEG or WebP file part",
            field="image",
            valid=list(FORMATS),
        )
    return Submission(fields=fields, raw=raw, image=image)


def _parse(name: str, value: str) -> Any:
    text = value.strip()
    if name in INT_FIELDS:
        if not _INTEGER.fullmatch(text):
            raise ApiError(
                422,
                "invalid_field",
                f"`{name}` must be an integer, got {value!r}",
                field=name,
                value=value,
                valid="an integer",
            )
        return int(text)
    if name in FLOAT_FIELDS:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or len(text) > 32:
            raise ApiError(
                422,
                "invalid_field",
                f"`{name}` must be a finite number, got {value!r}",
                field=name,
                value=value,
                valid="a number",
            )
        return number
    if "\x00" in value:
        raise ApiError(422, "invalid_field", f"`{name}` contains a NUL character", field=name)
    return value


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(
            422,
            "invalid_field",
            "Idempotency-Key must be 1..255 printable ASCII characters",
            field="Idempotency-Key",
            value=key,
            valid="1..255 printable ASCII characters",
        )
    return key


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int) -> str:
    """The image's format ("PNG", "JPEG", "WEBP") once it passed every check; raises ApiError otherwise."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ApiError(422, "invalid_image", "the image file is empty", field="image")
    if len(data) > max_bytes:
        raise ApiError(
            413,
            "image_too_large",
            f"the image is {len(data)} bytes; the limit is {max_bytes}",
            field="image",
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
            "the image is not a PNG, JPEG or WebP file",
            field="image",
            valid=list(FORMATS),
        ) from None
    except Image.DecompressionBombError as exc:
        raise ApiError(
            413,
            "image_too_large",
            f"the image header declares too many pixels ({exc})",
            field="image",
            valid={"max_pixels": max_pixels},
        ) from None
    except Exception as exc:  # noqa: BLE001 - a corrupt header can raise anything from a decoder plugin
        raise ApiError(422, "invalid_image", f"the image header is corrupt: {exc}", field="image") from None
    if width * height > max_pixels:
        raise ApiError(
            413,
            "image_too_large",
            f"the image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
            field="image",
            value=f"{width}x{height}",
            valid={"max_pixels": max_pixels},
        )
    with _decodes:
        try:
            load_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
        except ImageError as exc:
            raise ApiError(422, "invalid_image", str(exc), field="image") from None
        except Exception as exc:  # noqa: BLE001 - truncated or corrupt pixel data
            raise ApiError(
                422, "invalid_image", f"the image could not be decoded: {exc}", field="image"
            ) from None
    return image_format
