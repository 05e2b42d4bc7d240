"""The wire: OpenAI's Videos API fields (what the `openai` SDK's ``client.videos.create`` / ``extend``
send) and our own options (the SDK's ``extra_body``), and how each is written. The form is read
by `i2v.server.form`; model-dependent conversions (seconds -> frames, the nearest valid size) happen
at admission (`i2v.server.fields`), where the model is known.

| wire field (SDK first)            | ours (GenerationRequest)  | sent as                                        |
| --------------------------------- | ------------------------- | ---------------------------------------------- |
| prompt                            | prompt                    | text                                           |
| input_reference                   | the image                 | file part, or ``input_reference[image_url]`` data: URL |
| model                             | model                     | catalogue id (GET /v1/models)                  |
| size                              | width, height             | "WIDTHxHEIGHT"                                 |
| seconds                           | frames                    | seconds x fps, rounded to a valid frame count  |
| preset, negative_prompt, seed     | the same                  | text / integer                                 |
| num_frames                        | frames                    | integer                                        |
| fps                               | fps                       | integer                                        |
| num_inference_steps               | steps                     | integer                                        |
| guidance_scale                    | guidance                  | number                                         |
| mode                              | mode                      | a mode of the model (GET /v1/models)           |
| last_image, audio                 | the same                  | file part or data: URL                         |
| video, reference_video            | the same                  | file part, data: URL, or ``<field>[id]``: a completed video here |
| start_time, end_time              | the same                  | seconds                                        |
| keyframes[N][image/frame/strength]| keyframes                 | image as above; frame (negative: from the end), strength |
| loras (repeatable, ``loras[]``)   | loras                     | NAME[:SCALE], a file in I2V_LORAS_DIR          |

Aliases kept for one release (the job's `notes` say so): image -> input_reference, height/width ->
size, frames -> num_frames, steps -> num_inference_steps, guidance -> guidance_scale.
An extension (POST /v1/videos/extensions) takes ``video`` as the video it continues and no image,
size, fps or frame count: those come from that video.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request

from i2v.server.errors import ApiError
from i2v.server.media import MediaKind

FieldKind = Literal["text", "int", "float", "size", "seconds", "image", "media", "keyframes", "loras"]
FIELD_BYTES = 64 * 1024  # a text field's limit (data: URLs excepted)


@dataclass(frozen=True)
class WireField:
    name: str  # on the wire
    ours: str  # the request field it sets ("image", "size" and "seconds" are converted at admission)
    kind: FieldKind
    sdk: bool = False  # in the SDK's own signature (not extra_body)
    alias_of: str | None = None  # a deprecated name: the field it stands for


FIELDS: tuple[WireField, ...] = (
    WireField("prompt", "prompt", "text", sdk=True),
    WireField("input_reference", "image", "image", sdk=True),
    WireField("model", "model", "text", sdk=True),
    WireField("size", "size", "size", sdk=True),
    WireField("seconds", "seconds", "seconds", sdk=True),
    WireField("preset", "preset", "text"),
    WireField("negative_prompt", "negative_prompt", "text"),
    WireField("num_frames", "frames", "int"),
    WireField("fps", "fps", "int"),
    WireField("num_inference_steps", "steps", "int"),
    WireField("guidance_scale", "guidance", "float"),
    WireField("seed", "seed", "int"),
    WireField("mode", "mode", "text"),
    WireField("last_image", "last_image", "media"),
    WireField("keyframes", "keyframes", "keyframes"),
    WireField("audio", "audio", "media"),
    WireField("video", "video", "media"),
    WireField("start_time", "start_time", "float"),
    WireField("end_time", "end_time", "float"),
    WireField("reference_video", "reference_video", "media"),
    WireField("loras", "loras", "loras"),
    WireField("image", "image", "image", alias_of="input_reference"),
    WireField("height", "height", "int", alias_of="size"),
    WireField("width", "width", "int", alias_of="size"),
    WireField("frames", "frames", "int", alias_of="num_frames"),
    WireField("steps", "steps", "int", alias_of="num_inference_steps"),
    WireField("guidance", "guidance", "float", alias_of="guidance_scale"),
)
BY_NAME = {f.name: f for f in FIELDS}
MEDIA_KIND: dict[str, MediaKind] = {
    "image": "image",
    "last_image": "image",
    "keyframes": "image",
    "audio": "audio",
    "video": "video",
    "reference_video": "video",
}
# An extension continues a video: these come from it (or make no sense for it).
NOT_IN_EXTENSION = {
    "input_reference": "an extension starts from the last frame of `video`",
    "image": "an extension starts from the last frame of `video`",
    "size": "an extension keeps the size of `video`",
    "height": "an extension keeps the size of `video`",
    "width": "an extension keeps the size of `video`",
    "fps": "an extension keeps the frame rate of `video`",
    "num_frames": "an extension's length is `seconds`",
    "frames": "an extension's length is `seconds`",
    "model": "an extension runs the model that made `video`",
}
_INTEGER = re.compile(r"^[+-]?[0-9]{1,20}$")
_SIZE = re.compile(r"^\s*([0-9]{1,5})\s*[xX]\s*([0-9]{1,5})\s*$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def body_limit(max_upload_bytes: int) -> int:
    """The largest request body: the uploads as base64 data: URLs, plus the text fields."""
    return max_upload_bytes * 4 // 3 + 16 * FIELD_BYTES


def parse_value(spec: WireField, value: str) -> Any:
    text = value.strip()
    if spec.kind == "int":
        if not _INTEGER.fullmatch(text):
            raise ApiError(
                422,
                "invalid_field",
                f"`{spec.name}` must be an integer, got {value!r}",
                field=spec.name,
                value=value,
                valid="an integer",
            )
        return int(text)
    if spec.kind == "float":
        return parse_number(spec.name, value)
    return value


def parse_number(name: str, value: str, positive: bool = False) -> float:
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or len(text) > 32 or (positive and number <= 0):
        rule = "a number above 0" if positive else "a number"
        raise ApiError(
            422,
            "invalid_field",
            f"`{name}` must be {'a finite number above 0' if positive else 'a finite number'}, got {value!r}",
            field=name,
            value=value,
            valid=rule,
        )
    return number


def parse_size(value: str) -> tuple[int, int]:
    """``"832x480"`` -> (832, 480): width first, as the SDK's `size` is written."""
    match = _SIZE.fullmatch(value)
    if match is None:
        raise ApiError(
            422,
            "invalid_field",
            f"`size` must be WIDTHxHEIGHT in pixels (e.g. 832x480), got {value!r}",
            field="size",
            value=value,
            valid="WIDTHxHEIGHT",
        )
    return int(match.group(1)), int(match.group(2))


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
