"""A generation request: model defaults, then the preset, then the caller's fields; validated once.

Torch-free. Errors name the field, the value, the rule and the nearest valid value, in the manner
of diffusers' `check_inputs`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from i2v.catalogue.spec import PRESET_NAMES, ModelSpec

FIELDS = ("height", "width", "frames", "steps", "guidance", "fps", "seed")


class InvalidRequestError(ValueError):
    """A request field outside the model's constraints."""

    def __init__(self, field: str, value: Any, rule: str, nearest: Any = None):
        self.field, self.value, self.rule, self.nearest = field, value, rule, nearest
        hint = f"; nearest valid value: {nearest}" if nearest is not None else ""
        super().__init__(f"`{field}` = {value!r} is invalid: {rule}{hint}")

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "rule": self.rule, "nearest": self.nearest}


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
    unknown = set(fields) - set(FIELDS) - {"prompt", "negative_prompt"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequestError(name, fields[name], f"not a request field; fields are {', '.join(FIELDS)}")
    values.update({k: v for k, v in fields.items() if v is not None})
    request = GenerationRequest(model=spec.id, preset=preset, **values)
    validate(spec, request)
    return request


def validate(spec: ModelSpec, request: GenerationRequest) -> None:
    c = spec.constraints
    for name in ("height", "width"):
        value = getattr(request, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRequestError(name, value, "must be an integer number of pixels")
        if value < c.min_size or value > c.max_size or value % c.size_multiple:
            raise InvalidRequestError(
                name, value,
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
            "steps", request.steps, f"an integer in 1..{c.max_steps}",
            min(max(1, int(request.steps)), c.max_steps) if isinstance(request.steps, (int, float)) else None,
        )
    if not isinstance(request.guidance, (int, float)) or not c.min_guidance <= request.guidance <= c.max_guidance:
        raise InvalidRequestError("guidance", request.guidance, f"a number in {c.min_guidance}..{c.max_guidance}")
    if not isinstance(request.fps, int) or not 1 <= request.fps <= 60:
        raise InvalidRequestError("fps", request.fps, "an integer in 1..60")
    if not isinstance(request.seed, int) or not 0 <= request.seed < 2**63:
        raise InvalidRequestError("seed", request.seed, "an integer in 0..2^63-1")
