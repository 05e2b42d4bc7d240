"""A generation request: model defaults, then the preset, then the caller's fields; validated once.

Torch-free. Errors name the field, the value, the rule and the nearest valid value, in the manner
of diffusers' `check_inputs`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from i2v.catalogue.spec import PRESET_NAMES, ModelSpec

if TYPE_CHECKING:
    from i2v.lora import LoraRef

FIELDS = ("height", "width", "frames", "steps", "guidance", "fps", "seed")
# What a request carries besides the numbers: the mode, LoRA files and the modes' media inputs (files
# the modes of `i2v.families` take: i2v.families.base.MEDIA_INPUTS), and retake's time range.
MEDIA = ("last_image", "keyframes", "audio", "video", "reference_video")
INPUTS = ("mode", "loras", *MEDIA, "start_time", "end_time")
_FLAGS = {"keyframes": "--keyframe PATH:FRAME:STRENGTH", "video": "--video PATH"}


class InvalidRequestError(ValueError):
    """A request field outside the model's constraints."""

    def __init__(self, field: str, value: Any, rule: str, nearest: Any = None):
        self.field, self.value, self.rule, self.nearest = field, value, rule, nearest
        hint = f"; nearest valid value: {nearest}" if nearest is not None else ""
        super().__init__(f"`{field}` = {value!r} is invalid: {rule}{hint}")

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "rule": self.rule, "nearest": self.nearest}


class UnsupportedModeError(InvalidRequestError):
    """A mode of the catalogue that diffusers 0.42.1 has no pipeline for (refused before loading)."""

    def __init__(self, mode: str, reason: str, field: str = "mode", value: Any = None):
        super().__init__(
            field, mode if value is None else value, f"mode {mode!r} is not supported yet: {reason}"
        )
        self.mode, self.reason = mode, reason
        if field == "mode":
            self.args = (f"`mode` = {mode!r} is not supported yet: {reason}",)
        else:
            self.args = (f"`{field}` = {value!r} needs mode {mode!r}, which is not supported yet: {reason}",)


@dataclass(frozen=True)
class Keyframe:
    """An image pinned at a frame of the video (negative counts from the end: -1 is the last)."""

    path: str
    frame: int
    strength: float = 1.0

    def __str__(self) -> str:
        return f"{self.path}:{self.frame}:{self.strength:g}"


def parse_keyframe(value: Any) -> Keyframe:
    """``"PATH:FRAME[:STRENGTH]"``, ``{"path", "frame", "strength"}``, a tuple, or a `Keyframe`."""
    if isinstance(value, Keyframe):
        return value
    if isinstance(value, dict):
        return Keyframe(str(value.get("path")), value.get("frame"), value.get("strength", 1.0))
    if isinstance(value, (tuple, list)):
        return Keyframe(str(value[0]), *value[1:])
    text = str(value)
    parts = text.rsplit(":", 2)
    try:
        if len(parts) == 3:
            try:
                return Keyframe(parts[0], int(parts[1]), float(parts[2]))
            except ValueError:
                pass
        path, _, frame = text.rpartition(":")
        return Keyframe(path, int(frame))
    except ValueError:
        raise InvalidRequestError(
            "keyframes", text, "PATH:FRAME[:STRENGTH] with an integer FRAME (negative counts from the end)"
        ) from None


@dataclass(frozen=True)
class GenerationRequest:
    model: str
    preset: str
    height: int
    width: int
    frames: int
    steps: int
    guidance: float
    fps: int
    seed: int = 0
    prompt: str = ""
    negative_prompt: str = ""
    mode: str | None = None  # the family's modes (LTX-2); None for models without modes
    loras: tuple[LoraRef, ...] = ()
    last_image: str | None = None  # mode keyframes: the last frame (the first is the input image)
    keyframes: tuple[Keyframe, ...] = ()  # mode keyframes: more frames pinned at given indices
    audio: str | None = None  # mode audio-to-video: the soundtrack
    video: str | None = None  # mode retake: the source video ...
    start_time: float | None = None  # ... and the time range regenerated in it, in seconds
    end_time: float | None = None
    reference_video: str | None = None  # mode ic-lora: the reference mp4
    preset_loras: tuple[LoraRef, ...] = ()  # the preset's distillation LoRAs (catalogue assets), resolved
    notes: tuple[str, ...] = ()  # what resolving changed (a preset that fell back, and why)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        """The request `to_dict` stored (JSON: LoRAs and keyframes come back as dicts), typed again."""
        from i2v.lora import coerce

        values = dict(data)
        values["loras"] = tuple(coerce(item) for item in values.get("loras") or ())
        values["preset_loras"] = tuple(coerce(item) for item in values.get("preset_loras") or ())
        values["notes"] = tuple(values.get("notes") or ())
        values["keyframes"] = tuple(parse_keyframe(item) for item in values.get("keyframes") or ())
        return cls(**values)

    def with_(self, **changes: Any) -> GenerationRequest:
        return replace(self, **changes)


def resolve(
    spec: ModelSpec, preset: str = "standard", *, models_dir: Path | str | None = None, **fields: Any
) -> GenerationRequest:
    """Defaults <- preset <- fields (None means "not given"), then `validate`.

    A preset that needs files (a distillation LoRA, a distilled mode's weights) is checked against
    ``models_dir`` (default: the settings' I2V_MODELS_DIR); where they are missing its ``fallback``
    runs instead and ``notes`` say why and what to fetch.
    """
    if preset not in PRESET_NAMES:
        raise InvalidRequestError("preset", preset, f"one of {', '.join(PRESET_NAMES)}")
    chosen, notes, preset_loras = _preset_for(spec, preset, models_dir)
    values: dict[str, Any] = asdict(spec.defaults)
    values.update(chosen.overrides)
    unknown = set(fields) - set(FIELDS) - set(INPUTS) - {"prompt", "negative_prompt"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequestError(
            name, fields[name], f"not a request field; fields are {', '.join(FIELDS + INPUTS)}"
        )
    values.update({k: v for k, v in fields.items() if v is not None})
    if values.get("mode") is None:
        values["mode"] = chosen.mode if chosen.mode is not None else spec.adapter.default_mode
    if values.get("loras"):
        from i2v.lora import coerce

        values["loras"] = tuple(coerce(item) for item in values["loras"])
    if values.get("keyframes"):
        values["keyframes"] = tuple(parse_keyframe(item) for item in values["keyframes"])
    for name in ("last_image", "reference_video", "audio", "video"):
        if values.get(name) is not None:
            values[name] = str(values[name])
    request = GenerationRequest(
        model=spec.id, preset=preset, preset_loras=preset_loras, notes=notes, **values
    )
    validate(spec, request)
    return request


def _preset_for(
    spec: ModelSpec, name: str, models_dir: Path | str | None
) -> tuple[Any, tuple[str, ...], tuple]:
    """The preset that runs (the named one, or its fallback when its files are missing), notes, and the
    preset's LoRAs as files under ``models_dir``."""
    preset = spec.preset(name)
    if not preset.distilled:
        return preset, (), ()
    if models_dir is None:
        from i2v.settings import load_settings

        models_dir = load_settings().models_dir
    root = Path(models_dir).expanduser()
    missing = spec.adapter.preset_missing(spec, preset, root)
    if missing is None:
        from i2v.lora import LoraRef

        loras = tuple(
            LoraRef(str(root / lora.asset / lora.file), lora.scale, lora.target) for lora in preset.loras
        )
        return preset, (), loras
    fallback = preset.fallback
    if fallback is None:
        raise InvalidRequestError("preset", name, f"{spec.id} cannot run it: {missing}")
    note = (
        f"preset {name!r} runs as {fallback.label!r} ({_describe(fallback)}): {missing}; "
        f"fetch it with `i2v fetch {spec.id}`"
    )
    return fallback, (note,), ()


def _describe(preset: Any) -> str:
    o = preset.overrides
    size = f"{o['height']}x{o['width']}, " if "height" in o else ""
    frames = f"{o['frames']} frames, " if "frames" in o else ""
    return f"{size}{frames}{o.get('steps', '?')} steps"


def validate(spec: ModelSpec, request: GenerationRequest) -> None:
    _validate_mode(spec, request)  # an unknown or unsupported mode first: the other rules depend on it
    c = spec.constraints
    for name in ("height", "width"):
        value = getattr(request, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRequestError(name, value, "must be an integer number of pixels")
        if value < c.min_size or value > c.max_size or value % c.size_multiple:
            raise InvalidRequestError(
                name,
                value,
                f"{spec.id} needs a multiple of {c.size_multiple} in {c.min_size}..{c.max_size}",
                c.nearest_size(value),
            )
    if not isinstance(request.frames, int) or isinstance(request.frames, bool):
        raise InvalidRequestError("frames", request.frames, "must be an integer")
    if not c.frames_ok(request.frames):
        raise InvalidRequestError(
            "frames", request.frames, f"{spec.id} needs {c.frames_rule()}", c.nearest_frames(request.frames)
        )
    if not isinstance(request.steps, int) or not 1 <= request.steps <= c.max_steps:
        raise InvalidRequestError(
            "steps",
            request.steps,
            f"an integer in 1..{c.max_steps}",
            min(max(1, int(request.steps)), c.max_steps) if isinstance(request.steps, (int, float)) else None,
        )
    if (
        not isinstance(request.guidance, (int, float))
        or not c.min_guidance <= request.guidance <= c.max_guidance
    ):
        raise InvalidRequestError(
            "guidance", request.guidance, f"a number in {c.min_guidance}..{c.max_guidance}"
        )
    if not isinstance(request.fps, int) or not 1 <= request.fps <= 60:
        raise InvalidRequestError("fps", request.fps, "an integer in 1..60")
    if not isinstance(request.seed, int) or not 0 <= request.seed < 2**63:
        raise InvalidRequestError("seed", request.seed, "an integer in 0..2^63-1")
    _validate_inputs(spec, request)
    _validate_loras(spec, request)
    spec.adapter.validate(spec, request)


def require_prompt(spec: ModelSpec, request: GenerationRequest) -> None:
    """A request about to run in a mode that needs a prompt has one (plans are made without it)."""
    mode = spec.adapter.mode(request)
    if mode is not None and mode.needs_prompt and not request.prompt.strip():
        raise InvalidRequestError(
            "prompt", request.prompt, f"mode {mode.name!r} of {spec.id} needs a prompt: what should happen"
        )


def mode_of(spec: ModelSpec, request: GenerationRequest) -> str | None:
    """The request's mode, the model's default when unset; None for models without modes."""
    return request.mode if request.mode is not None else spec.adapter.default_mode


def _modes_rule(spec: ModelSpec) -> str:
    modes = spec.adapter.modes
    supported = [name for name, m in modes.items() if m.supported]
    unsupported = [name for name, m in modes.items() if not m.supported]
    rule = f"{spec.id} has modes {', '.join(supported)}"
    return rule + (f" (not supported yet: {', '.join(unsupported)})" if unsupported else "")


def _validate_mode(spec: ModelSpec, request: GenerationRequest) -> None:
    modes, mode = spec.adapter.modes, request.mode
    if not modes:
        if mode is not None:
            raise InvalidRequestError(
                "mode", mode, f"{spec.id} has no modes (only LTX-2 models have them); leave `mode` unset"
            )
        return
    if mode is None:
        return  # the default mode
    if mode not in modes:
        raise InvalidRequestError("mode", mode, _modes_rule(spec))
    if not modes[mode].supported:
        raise UnsupportedModeError(mode, modes[mode].reason)


def _validate_inputs(spec: ModelSpec, request: GenerationRequest) -> None:
    """Each media input is taken by the modes that name it, needed by some, a file that exists."""
    adapter = spec.adapter
    current = adapter.mode(request)
    for name in MEDIA:
        value = getattr(request, name)
        given = bool(value) if name == "keyframes" else value is not None
        flag = _FLAGS.get(name, "--" + name.replace("_", "-") + " PATH")
        if not given:
            if current is not None and name in current.needs:
                raise InvalidRequestError(name, None, f"mode {current.name!r} needs it ({flag})")
            continue
        shown = ", ".join(str(k) for k in value) if name == "keyframes" else value
        if current is None or not current.accepts(name):
            takers = [m for m in adapter.modes.values() if m.accepts(name)]
            if not takers:
                raise InvalidRequestError(name, shown, f"{spec.id} takes no {name.replace('_', ' ')}")
            if not any(m.supported for m in takers):
                raise UnsupportedModeError(takers[0].name, takers[0].reason, field=name, value=shown)
            names = " or ".join(repr(m.name) for m in takers if m.supported)
            raise InvalidRequestError(
                name, shown, f"only mode {names} takes it; `mode` is {current.name if current else None!r}"
            )
        paths = [k.path for k in value] if name == "keyframes" else [value]
        for path in paths:
            if not Path(path).is_file():
                raise InvalidRequestError(name, path, "no such file")
    for name in ("start_time", "end_time"):
        value = getattr(request, name)
        if value is not None and (current is None or not current.accepts("video")):
            raise InvalidRequestError(name, value, "only a mode that takes a source video (retake) takes it")


def _validate_loras(spec: ModelSpec, request: GenerationRequest) -> None:
    from i2v.lora import check

    adapter = spec.adapter
    if request.loras and not adapter.levers.lora:
        raise InvalidRequestError(
            "lora",
            request.loras[0].path,
            f"{spec.id} runs {spec.pipeline_cls.rpartition('.')[2]}, which takes "
            "no LoRAs (LoRAs load into LTX-Video, LTX-2 and Wan pipelines)",
        )
    for ref in request.loras:
        problem = check(ref)
        if problem:
            raise InvalidRequestError("lora", str(ref) if "scale" in problem else ref.path, problem)
    current = adapter.mode(request)
    if current is not None and current.needs_lora and not request.loras:
        raise InvalidRequestError(
            "lora", None, f"mode {current.name!r} needs an IC-LoRA (--lora PATH[:SCALE])"
        )
