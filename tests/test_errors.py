"""One error table for both CLIs and the worker (i2v.errors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from i2v import errors
from i2v.errors import ERRORS, INTERNAL_ERROR, exit_code, job_code


def test_no_row_is_shadowed_by_an_earlier_base_class():
    classes = [cls for cls, _ in errors._classes()]
    for i, later in enumerate(classes):
        for earlier in classes[:i]:
            assert not issubclass(later, earlier), (
                f"{later.__name__} is unreachable behind {earlier.__name__}"
            )
    assert len(classes) == len(ERRORS)


def _examples():
    from i2v import catalogue
    from i2v.catalogue import UnknownModelError
    from i2v.engine import DeviceOutOfMemoryError, WeightsMissingError
    from i2v.families import MissingModeWeightsError
    from i2v.images import ImageError
    from i2v.lora import LoraLoadError
    from i2v.planner import PlanRefusedError
    from i2v.request import InvalidRequestError, UnsupportedModeError
    from i2v.weights.errors import WeightsCorruptError, WeightsError
    from provision.envfile import EnvWriteError

    spec = catalogue.get("tiny-svd")
    plan = type("P", (), {"model": "m", "strategy": "resident", "predicted_peak_mib": 1})()
    return [
        (InvalidRequestError("frames", 3, "4k+1"), 2, "invalid_request"),
        (UnsupportedModeError("retake", "no pipeline"), 2, "invalid_request"),
        (LoraLoadError("x.safetensors", "does not fit"), 2, "invalid_request"),
        (UnknownModelError("nope"), 2, "invalid_request"),
        (ImageError("not an image"), 2, "invalid_image"),
        (WeightsMissingError(spec, Path("/m/tiny-svd")), 3, "weights_missing"),
        (MissingModeWeightsError("no upsampler"), 3, "weights_missing"),
        (WeightsCorruptError(Path("/m"), "a.safetensors", "is truncated"), 6, "weights_invalid"),
        (WeightsError("every source failed"), 9, "weights_invalid"),
        (PlanRefusedError("does not fit", []), 4, "does_not_fit"),
        (DeviceOutOfMemoryError(plan, "CUDA out of memory"), 5, "out_of_memory"),
        (EnvWriteError("read-only"), 3, INTERNAL_ERROR),  # provision's own: its exit_code attribute
        (RuntimeError("a bug"), None, INTERNAL_ERROR),
    ]


@pytest.mark.parametrize(
    "exc, code, job", _examples(), ids=lambda v: type(v).__name__ if isinstance(v, Exception) else ""
)
def test_each_error_has_its_exit_code_and_job_code(exc, code, job):
    assert exit_code(exc) == code
    assert job_code(exc) == job
