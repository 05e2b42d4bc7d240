"""Reading POST /v1/videos (and /extensions): one multipart form, field by field in the wire's names
(`i2v.server.wire`), into a typed `Submission` in our request's terms.

Keys are ``name``, ``name[sub]`` or ``name[N][prop]``: ``input_reference[image_url]``,
``reference_video[id]``, ``keyframes[0][frame]``, and ``loras[]`` / ``keyframes[][prop]`` as the
`openai` SDK's form encoder writes lists (a repeated property starts the next keyframe). Caps:
each text field 64 KiB, each upload and all of them together `max_upload_bytes` (data: URLs
decoded), 8 keyframes; a field given twice, or two names for one thing, is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from i2v.server.errors import ApiError
from i2v.server.media import MediaInput, decode_data_url, too_big
from i2v.server.wire import (
    BY_NAME,
    FIELD_BYTES,
    FIELDS,
    MEDIA_KIND,
    NOT_IN_EXTENSION,
    WireField,
    body_limit,
    parse_number,
    parse_size,
    parse_value,
)

MAX_KEYFRAMES = 8
MAX_FILES = 1 + 4 + MAX_KEYFRAMES
MAX_FIELDS = 64
_KEY = re.compile(r"^([a-z_]{1,32})((?:\[[a-z_0-9]{0,16}\]){0,2})$")


@dataclass(frozen=True)
class KeyframeInput:
    image: MediaInput
    frame: int
    strength: float = 1.0


@dataclass(frozen=True)
class Submission:
    """A form read in our terms; nothing model-specific is decided yet."""

    fields: dict[str, Any]  # our request fields that were given (prompt, frames, steps, mode, ...)
    names: dict[str, str]  # our field -> the wire name the client used (errors name that one)
    digest: str  # of everything sent, for Idempotency-Key replays
    seconds: float | None = None
    image: MediaInput | None = None
    media: dict[str, MediaInput] = field(default_factory=dict)  # last_image, audio, video, reference_video
    keyframes: tuple[KeyframeInput, ...] = ()
    loras: tuple[str, ...] = ()  # "NAME[:SCALE]" as sent
    source: MediaInput | None = None  # an extension's video
    notes: tuple[str, ...] = ()


async def read_submission(request: Request, max_upload_bytes: int, *, extension: bool = False) -> Submission:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the job as multipart/form-data (an `input_reference` file part plus fields), "
            f"not {media or 'nothing'}",
            field="Content-Type",
            value=media,
            valid=["multipart/form-data"],
        )
    form = await request.form(
        max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=body_limit(max_upload_bytes)
    )
    try:
        return await FormReader(max_upload_bytes, extension).read(form.multi_items())
    finally:
        await form.close()  # the spooled upload files, now that their bytes are read


class FormReader:
    def __init__(self, max_upload_bytes: int, extension: bool):
        self.max_bytes, self.extension = max_upload_bytes, extension
        self.fields: dict[str, Any] = {}
        self.names: dict[str, str] = {}
        self.media: dict[str, MediaInput] = {}
        self.keyframes: dict[int, dict[str, Any]] = {}
        self.loras: list[str] = []
        self.image: MediaInput | None = None
        self.source: MediaInput | None = None
        self.seconds: float | None = None
        self.hashed: list[tuple[str, str]] = []
        self.uploaded = 0

    async def read(self, items: list[tuple[str, Any]]) -> Submission:
        counts = Counter(key for key, _ in items)
        group, group_props = -1, set()  # the SDK's keyframes[][prop]: a repeated prop starts the next one
        for key, value in items:
            name, subs = self._key(key, value)
            spec = BY_NAME[name]
            if counts[key] > 1 and spec.kind != "loras" and not (spec.kind == "keyframes" and subs[0] == ""):
                raise ApiError(
                    422, "invalid_field", f"`{key}` was given {counts[key]} times; give it once", field=key
                )
            if isinstance(value, UploadFile):
                value = await value.read()
                self.hashed.append((key, hashlib.sha256(value).hexdigest()))
            else:
                self.hashed.append(
                    (key, value if len(value) < 256 else hashlib.sha256(value.encode()).hexdigest())
                )
            if spec.kind == "keyframes" and subs[0] == "":
                if group < 0 or subs[1] in group_props:
                    group, group_props = group + 1, set()
                group_props.add(subs[1])
                subs = [str(group), subs[1]]
            self._take(spec, key, subs, value)
        if self.uploaded > self.max_bytes:
            raise ApiError(
                413,
                "upload_too_large",
                f"the uploads together are {self.uploaded} bytes; the limit is {self.max_bytes}",
                valid={"max_bytes": self.max_bytes},
            )
        notes = [
            f"`{wire}` is an alias of `{BY_NAME[wire].alias_of}`, kept for one release"
            for wire in dict.fromkeys(self.names.values())
            if BY_NAME[wire].alias_of
        ]
        if self.image is not None and self.image.field == "image":
            notes.append("`image` is an alias of `input_reference`, kept for one release")
        return Submission(
            fields=self.fields,
            names=self.names,
            digest=hashlib.sha256(json.dumps(sorted(self.hashed)).encode()).hexdigest(),
            seconds=self.seconds,
            image=self.image,
            media=self.media,
            keyframes=self._keyframes(),
            loras=tuple(self.loras),
            source=self.source,
            notes=tuple(notes),
        )

    def _key(self, key: str, value: Any) -> tuple[str, list[str]]:
        match = _KEY.fullmatch(key)
        name = match.group(1) if match else key
        if match is None or name not in BY_NAME:
            valid = [
                f.name
                for f in FIELDS
                if not f.alias_of and not (self.extension and f.name in NOT_IN_EXTENSION)
            ]
            raise ApiError(
                422,
                "unknown_field",
                f"`{key}` is not a field of this request",
                field=key,
                value=value if isinstance(value, str) else None,
                valid=valid,
            )
        if self.extension and name in NOT_IN_EXTENSION:
            raise ApiError(
                422, "invalid_field", f"`{name}`: {NOT_IN_EXTENSION[name]}; leave it out", field=name
            )
        subs = re.findall(r"\[([^\]]*)\]", match.group(2))
        allowed = {
            "image": ([], ["image_url"], ["file_id"]),
            "media": ([], ["id"]) if MEDIA_KIND.get(name) == "video" else ([],),
            "loras": ([], [""]),
        }.get(BY_NAME[name].kind, ([],))
        if BY_NAME[name].kind == "keyframes":
            ok = (
                len(subs) == 2
                and re.fullmatch(r"[0-9]{0,2}", subs[0])
                and subs[1] in ("image", "frame", "strength")
            )
        else:
            ok = subs in allowed
        if not ok:
            shapes = (
                ["keyframes[N][image]", "keyframes[N][frame]", "keyframes[N][strength]"]
                if BY_NAME[name].kind == "keyframes"
                else [name + "".join(f"[{s}]" for s in shape) for shape in allowed]
            )
            raise ApiError(
                422, "unknown_field", f"`{key}` is not a field of this request", field=key, valid=shapes
            )
        return name, subs

    def _claim(self, spec: WireField, ours: str) -> None:
        """Record that the client set `ours` through `spec.name`; refuse two names for one field."""
        earlier = self.names.get(ours)
        if earlier is not None and earlier != spec.name:
            raise ApiError(
                422,
                "conflicting_fields",
                f"`{spec.name}` and `{earlier}` set the same thing ({ours}); give one of them",
                field=spec.name,
                valid=[earlier, spec.name],
            )
        self.names[ours] = spec.name

    def _take(self, spec: WireField, key: str, subs: list[str], value: str | bytes) -> None:
        if spec.kind in ("image", "media"):
            self._take_media(spec, key, subs, value)
            return
        if spec.kind == "keyframes":
            self._take_keyframe(key, subs, value)
            return
        if isinstance(value, bytes):
            raise ApiError(422, "invalid_field", f"`{key}` must be a text field, not a file", field=key)
        if len(value.encode()) > FIELD_BYTES:
            raise ApiError(
                413,
                "field_too_large",
                f"`{key}` is {len(value.encode())} bytes; a text field is at most {FIELD_BYTES}",
                field=key,
                valid={"max_bytes": FIELD_BYTES},
            )
        if "\x00" in value:
            raise ApiError(422, "invalid_field", f"`{key}` contains a NUL character", field=key)
        if value.strip() == "" and spec.name not in ("prompt", "negative_prompt"):
            return  # an empty form input means "use the default"
        if spec.kind == "loras":
            self._claim(spec, "loras")
            self.loras.append(value.strip())
        elif spec.kind == "size":
            width, height = parse_size(value)
            self._claim(spec, "width")
            self._claim(spec, "height")
            self.fields.update(width=width, height=height)
        elif spec.kind == "seconds":
            self._claim(spec, "frames")
            self.seconds = parse_number("seconds", value, positive=True)
        else:
            self._claim(spec, spec.ours)
            self.fields[spec.ours] = parse_value(spec, value)

    def _media(self, key: str, subs: list[str], value: str | bytes) -> MediaInput:
        if subs == ["file_id"]:
            raise ApiError(
                422,
                "invalid_field",
                f"`{key}`: this server has no Files API; send the image as the `input_reference` file part "
                "or as a data: URL in `input_reference[image_url]`",
                field=key,
                valid=["input_reference (file part)", "input_reference[image_url] (data: URL)"],
            )
        if subs == ["id"]:
            if isinstance(value, bytes):
                raise ApiError(422, "invalid_field", f"`{key}` is a video id, not a file", field=key)
            return MediaInput(field=key, video_id=value.strip())
        if isinstance(value, str):
            value = decode_data_url(key, value, self.max_bytes)
        if len(value) > self.max_bytes:
            raise too_big(key, len(value), self.max_bytes)
        self.uploaded += len(value)
        return MediaInput(field=key, data=value)

    def _take_media(self, spec: WireField, key: str, subs: list[str], value: str | bytes) -> None:
        media = self._media(key, subs, value)
        if spec.kind == "image":
            if self.image is not None:
                raise ApiError(
                    422,
                    "conflicting_fields",
                    f"`{key}` and `{self.image.field}` both give the image; give one of them",
                    field=key,
                )
            self.image = media
        elif self.extension and spec.name == "video":
            self.source = media
        else:
            if spec.ours in self.media:
                raise ApiError(
                    422, "conflicting_fields", f"`{spec.name}` was given twice; give it once", field=key
                )
            self.media[spec.ours] = media

    def _take_keyframe(self, key: str, subs: list[str], value: str | bytes) -> None:
        index, prop = int(subs[0]), subs[1]
        entry = self.keyframes.setdefault(index, {})
        if prop in entry:
            raise ApiError(422, "invalid_field", f"keyframe {index} was given its {prop} twice", field=key)
        if len(self.keyframes) > MAX_KEYFRAMES:
            raise ApiError(
                422,
                "invalid_field",
                f"at most {MAX_KEYFRAMES} keyframes",
                field="keyframes",
                valid={"max": MAX_KEYFRAMES},
            )
        if prop == "image":
            entry["image"] = self._media(key, [], value)
            return
        if isinstance(value, bytes):
            raise ApiError(422, "invalid_field", f"`{key}` must be a text field, not a file", field=key)
        spec = WireField(key, prop, "int" if prop == "frame" else "float")
        entry[prop] = parse_value(spec, value)

    def _keyframes(self) -> tuple[KeyframeInput, ...]:
        out = []
        for index in sorted(self.keyframes):
            entry = self.keyframes[index]
            missing = [p for p in ("image", "frame") if p not in entry]
            if missing:
                raise ApiError(
                    422,
                    "missing_field",
                    f"keyframe {index} has no {missing[0]}: give keyframes[{index}][{missing[0]}]",
                    field=f"keyframes[{index}][{missing[0]}]",
                )
            out.append(KeyframeInput(entry["image"], entry["frame"], entry.get("strength", 1.0)))
        if out:
            self.names["keyframes"] = "keyframes"
        return tuple(out)
