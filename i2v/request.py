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
# What a request carries besides the numbers: the LTX-2 mode, LoRA files and the mode's media inputs.
INPUTS = ("mode", "loras", "last_image", "reference_video", "audio")
# Media inputs that exactly one mode takes, and needs.
MODE_INPUTS = {"last_image": "keyframes", "reference_video": "ic-lora"}


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
    mode: str | None = None  # LTX-2 only (spec.modes); None for models without modes
    loras: tuple[LoraRef, ...] = ()
    last_image: str | None = None  # mode keyframes: the last frame (the first is the input image)
    reference_video: str | None = None  # mode ic-lora: the reference mp4
    audio: str | None = None  # mode audio-to-video (not supported yet)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_(self, **changes: Any) -> GenerationRequest:
        return replace(self, **changes)


def resolve(spec: ModelSpec, preset: str = "standard", **fields: Any) -> GenerationRequest:
    """Defaults <- preset <- fields (None means "not given"), then `validate`."""
    if preset not in PRESET_NAMES:
        raise InvalidRequestError("preset", preset, f"one of {', '.join(PRESET_NAMES)}")
    values: dict[str, Any] = asdict(spec.defaults)
    values.update(spec.preset(preset).overrides)
    unknown = set(fields) - set(FIELDS) - set(INPUTS) - {"prompt", "negative_prompt"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequestError(
            name, fields[name], f"not a request field; fields are {', '.join(FIELDS + INPUTS)}"
        )
    values.update({k: v for k, v in fields.items() if v is not None})
    if values.get("mode") is None:
        values["mode"] = spec.default_mode
    if values.get("loras"):
        from i2v.lora import coerce

        values["loras"] = tuple(coerce(item) for item in values["loras"])
    for name in ("last_image", "reference_video", "audio"):
        if values.get(name) is not None:
            values[name] = str(values[name])
    request = GenerationRequest(model=spec.id, preset=preset, **values)
    validate(spec, request)
    return request


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
    _validate_stage_sizes(spec, request)
    _validate_inputs(spec, request)
    _validate_loras(spec, request)


def mode_of(spec: ModelSpec, request: GenerationRequest) -> str | None:
    """The request's mode, the model's default when unset; None for models without modes."""
    return request.mode if request.mode is not None else spec.default_mode


def _modes_rule(spec: ModelSpec) -> str:
    unsupported = [name for name in spec.modes if name not in spec.supported_modes()]
    rule = f"{spec.id} has modes {', '.join(spec.supported_modes())}"
    return rule + (f" (not supported yet: {', '.join(unsupported)})" if unsupported else "")


def _validate_mode(spec: ModelSpec, request: GenerationRequest) -> None:
    mode = request.mode
    if not spec.modes:
        if mode is not None:
            raise InvalidRequestError(
                "mode", mode, f"{spec.id} has no modes (only LTX-2 models have them); leave `mode` unset"
            )
        return
    if mode is None:
        return  # the default mode
    if mode not in spec.modes:
        raise InvalidRequestError("mode", mode, _modes_rule(spec))
    recipe = spec.modes[mode]
    if not recipe.get("supported"):
        raise UnsupportedModeError(mode, recipe.get("reason", "no diffusers pipeline for it"))


def _validate_stage_sizes(spec: ModelSpec, request: GenerationRequest) -> None:
    mode = mode_of(spec, request)
    recipe = spec.modes.get(mode, {}) if mode is not None else {}
    # Two-stage recipes run stage 1 at a fraction of the size, which must itself fit the VAE's stride.
    factor = recipe.get("stage1_size_factor")
    if factor:
        c = spec.constraints
        multiple = round(c.size_multiple / factor)
        for name in ("height", "width"):
            value = getattr(request, name)
            if value % multiple:
                lowest, highest = -(-c.min_size // multiple) * multiple, c.max_size // multiple * multiple
                nearest = min(max((value + multiple // 2 - 1) // multiple * multiple, lowest), highest)
                raise InvalidRequestError(
                    name,
                    value,
                    f"mode {mode!r} runs stage 1 at {factor:g}x the size, so {spec.id} needs a "
                    f"multiple of {multiple}",
                    nearest,
                )


def _validate_inputs(spec: ModelSpec, request: GenerationRequest) -> None:
    if request.audio is not None:
        recipe = spec.modes.get("audio-to-video")
        if recipe is None:
            raise InvalidRequestError("audio", request.audio, f"{spec.id} takes no input audio")
        raise UnsupportedModeError(
            "audio-to-video", recipe.get("reason", ""), field="audio", value=request.audio
        )
    current = mode_of(spec, request)
    for name, mode in MODE_INPUTS.items():
        value = getattr(request, name)
        flag = "--" + name.replace("_", "-")
        if value is None:
            if current == mode:
                raise InvalidRequestError(name, None, f"mode {mode!r} needs it ({flag} PATH)")
            continue
        if current != mode:
            raise InvalidRequestError(
                name, value, f"only LTX-2 mode {mode!r} takes it; `mode` is {current!r}"
            )
        if not Path(value).is_file():
            raise InvalidRequestError(name, value, "no such file")


def _validate_loras(spec: ModelSpec, request: GenerationRequest) -> None:
    from i2v.lora import check

    if request.loras and not spec.takes_lora:
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
    if mode_of(spec, request) == "ic-lora" and not request.loras:
        raise InvalidRequestError("lora", None, "mode 'ic-lora' needs an IC-LoRA (--lora PATH[:SCALE])")
