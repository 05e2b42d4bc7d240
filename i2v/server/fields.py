"""From the wire's terms to one model's: `seconds` -> a valid frame count at the request's fps, LoRA
names -> files in the server's LoRA folder, and our request errors said again in the client's
field names (`size` for height/width when it sent `size`, `num_inference_steps` for steps, ...),
without a server path in them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from i2v.catalogue.spec import ModelSpec
from i2v.request import InvalidRequestError
from i2v.server.errors import ApiError

_CLI_HINT = re.compile(r" \(--[a-z-]+ [^)]*\)")
_LORA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,126}\.safetensors$")


def preset_value(spec: ModelSpec, preset: str, name: str) -> Any:
    """The value `name` takes from the model defaults and the preset (None for an unknown preset)."""
    if preset not in spec.presets:
        return None
    return {**asdict(spec.defaults), **spec.preset(preset).overrides}.get(name)


def frames_for_seconds(
    spec: ModelSpec, seconds: float, fps: int, *, plus_one: bool = False
) -> tuple[int, str]:
    """(frames, the note saying how): `seconds` at `fps`, rounded to the nearest count the model makes.

    ``plus_one``: an extension's segment, whose first frame is the source's last one (dropped when
    stitched), so `seconds` of new video take one frame more.
    """
    c = spec.constraints
    extra = 1 if plus_one else 0
    wanted = round(seconds * fps) + extra
    if wanted > c.max_frames:
        longest = c.nearest_frames(c.max_frames)
        limit_s = round((longest - extra) / fps, 3)
        raise ApiError(
            422,
            "invalid_field",
            f"`seconds` = {seconds:g} is {wanted - extra} frames at {fps} fps; {spec.id} makes at most "
            f"{longest} frames ({c.frames_rule()}), {limit_s:g} s",
            field="seconds",
            value=seconds,
            valid={"max_seconds": limit_s, "frames": c.frames_rule(), "fps": fps},
            nearest=limit_s,
        )
    frames = c.nearest_frames(wanted)
    made = (frames - extra) / fps
    how = f"`seconds` = {seconds:g} at {fps} fps"
    if frames == wanted:
        return frames, f"{how}: {frames} frames"
    return frames, (
        f"{how} is {wanted} frames; {spec.id} needs {c.frames_rule()} frames, so {frames} frames "
        f"({round(made, 3):g} s{' of new video' if plus_one else ''})"
    )


def lora_files(sent: tuple[str, ...], loras_dir: Path) -> tuple[list[str], dict[str, str]]:
    """("PATH[:SCALE]" for the request, {path: name} to hide paths again); ApiError for a bad name."""
    found, names = [], {}
    for text in sent:
        name, sep, scale = text.rpartition(":")
        if not sep or not _is_number(scale):
            name, scale = text, None
        path = loras_dir / name
        if not _LORA_NAME.fullmatch(name) or ".." in name:
            raise ApiError(
                422,
                "invalid_field",
                f"`loras`: {name!r} is not a plain .safetensors file name (NAME[:SCALE], a file in the "
                "server's LoRA folder, GET /v1/loras)",
                field="loras",
                value=text,
                valid=[entry["name"] for entry in list_loras(loras_dir)],
            )
        if not path.is_file() or path.resolve().parent != loras_dir:
            available = [entry["name"] for entry in list_loras(loras_dir)]
            close = difflib.get_close_matches(name, available, n=1)
            raise ApiError(
                422,
                "invalid_field",
                f"`loras`: there is no LoRA {name!r} on this server (GET /v1/loras lists them)",
                field="loras",
                value=text,
                valid=available,
                nearest=close[0] if close else None,
            )
        found.append(f"{path}:{scale}" if scale is not None else str(path))
        names[str(path)] = name
    return found, names


def list_loras(loras_dir: Path) -> list[dict[str, Any]]:
    """The LoRA files requests may name: plain .safetensors files directly in the folder."""
    if not loras_dir.is_dir():
        return []
    entries = []
    for path in sorted(loras_dir.iterdir()):
        if _LORA_NAME.fullmatch(path.name) and path.is_file() and path.resolve().parent == loras_dir:
            entries.append({"name": path.name, "bytes": path.stat().st_size})
    return entries


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def request_error(
    exc: InvalidRequestError,
    names: Mapping[str, str],
    hidden: Mapping[str, str],
    size: tuple[int, int] | None = None,
    valid_size: Callable[[int, int], tuple[int, int] | None] | None = None,
) -> ApiError:
    """`exc` (in our request's field names) as the client's fields; server paths replaced by `hidden`.

    ``size``: the (width, height) the client sent as `size`; ``valid_size`` finds the nearest size
    the model takes (trying the error's nearest value for each side in turn)."""
    field = {"lora": "loras"}.get(exc.field, exc.field)
    value, nearest, message = exc.value, exc.nearest, str(exc)
    if field in ("height", "width") and names.get(field) == "size" and size is not None:
        fixed = valid_size(*size) if valid_size is not None else None
        field, value = "size", f"{size[0]}x{size[1]}"
        nearest = f"{fixed[0]}x{fixed[1]}" if fixed else None
        message = f"`size` = {value!r} is invalid: {exc.rule} ({exc.field})" + (
            f"; nearest valid value: {nearest}" if nearest else ""
        )
    else:
        wire = names.get(field, field)
        message = message.replace(f"`{exc.field}`", f"`{wire}`", 1)
        field = wire
    message = _CLI_HINT.sub("", message)  # "(--lora PATH[:SCALE])": the CLI's words, not the API's
    for path, name in hidden.items():
        message = message.replace(path, name)
        if isinstance(value, str):
            value = value.replace(path, name)
    return ApiError(422, "invalid_field", message, field=field, value=value, valid=exc.rule, nearest=nearest)
