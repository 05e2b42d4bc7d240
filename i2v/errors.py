"""What each failure means to a caller: one table for both CLIs (`i2v`, `provision`) and the worker.

A row names an exception class (imported only when an error is being classified, so the table costs
nothing at start-up), the CLI exit code and the job error code the API reports. The first row whose
class matches wins, so subclasses come before their bases. An exception with its own `exit_code`
attribute (each `WeightsError`, provision's `EnvWriteError`) keeps that code.

| exit | job code          | when                                                                |
| ---- | ----------------- | ------------------------------------------------------------------- |
| 2    | invalid_request   | a field outside the model's rules, an unknown model, a bad LoRA      |
| 2    | invalid_image     | the input image is missing, unreadable or too large                 |
| 3    | weights_missing   | the model (or a mode's file) was never fetched                      |
| 3-10 | weights_invalid   | weights corrupt, truncated, gated, refused, unreachable (`i2v fetch`) |
| 4    | does_not_fit      | the planner refused: no strategy fits the device                    |
| 5    | out_of_memory     | the device ran out of memory during the run (memory was freed)     |
| 2    | invalid_request   | the model cannot split one job over the cards asked for             |
| 11   | worker_lost       | a card of a job's group failed or timed out (the group is restarted) |
| 1    | internal_error    | anything else (with the traceback in the log)                        |
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache

INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True)
class ErrorKind:
    exception: str  # "module:ClassName"
    exit_code: int
    job_code: str


ERRORS: tuple[ErrorKind, ...] = (
    ErrorKind("i2v.request:InvalidRequestError", 2, "invalid_request"),
    ErrorKind("i2v.catalogue:UnknownModelError", 2, "invalid_request"),
    ErrorKind("i2v.images:ImageError", 2, "invalid_image"),
    ErrorKind("i2v.engine:WeightsMissingError", 3, "weights_missing"),
    ErrorKind("i2v.families.base:MissingModeWeightsError", 3, "weights_missing"),
    ErrorKind("i2v.weights.errors:WeightsError", 9, "weights_invalid"),
    ErrorKind("i2v.planner:PlanRefusedError", 4, "does_not_fit"),
    ErrorKind("i2v.engine:DeviceOutOfMemoryError", 5, "out_of_memory"),
    ErrorKind("i2v.parallel.layout:LayoutError", 2, "invalid_request"),
    ErrorKind("i2v.parallel.group:GroupBrokenError", 11, "worker_lost"),
)


@cache
def _classes() -> tuple[tuple[type[BaseException], ErrorKind], ...]:
    found = []
    for kind in ERRORS:
        module, _, name = kind.exception.partition(":")
        found.append((getattr(importlib.import_module(module), name), kind))
    return tuple(found)


def classify(exc: BaseException) -> ErrorKind | None:
    """The table's row for ``exc``, or None for an unexpected error."""
    return next((kind for cls, kind in _classes() if isinstance(exc, cls)), None)


def exit_code(exc: BaseException) -> int | None:
    """The CLI exit status for ``exc`` (its own `exit_code` attribute first), or None: not ours."""
    own = getattr(exc, "exit_code", None)
    if isinstance(own, int):
        return own
    kind = classify(exc)
    return kind.exit_code if kind is not None else None


def job_code(exc: BaseException) -> str:
    """The error code a failed job reports (GET /v1/videos/{id}: error.code)."""
    kind = classify(exc)
    return kind.job_code if kind is not None else INTERNAL_ERROR


__all__ = ["ERRORS", "INTERNAL_ERROR", "ErrorKind", "classify", "exit_code", "job_code"]
