"""The engine on real tiny pipelines: determinism, progress, refusal, out-of-memory recovery."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i2v import catalogue
from i2v.devices import CpuDevice
from i2v.engine import DeviceOutOfMemoryError, Engine, WeightsMissingError
from i2v.planner import PlanRefusedError
from i2v.request import resolve
from i2v.settings import Settings

MODEL = "tiny-wan2.1-i2v"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    return Engine(Settings(models_dir=models, device="cpu"), device=CpuDevice())


@pytest.fixture(scope="module")
def image():
    from i2v.cli import demo_image

    return demo_image(32, 32)


def request(**fields):
    spec = catalogue.get(MODEL)
    return resolve(spec, "standard", prompt="a ball", **fields)


def test_same_seed_same_frames_other_seed_other_frames(engine, image):
    a = engine.generate(request(seed=1), image).output.frames
    b = engine.generate(request(seed=1), image).output.frames
    c = engine.generate(request(seed=2), image).output.frames
    assert a.shape == (9, 32, 32, 3)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-4


def test_pipeline_is_loaded_once_and_kept_warm(engine, image):
    engine.generate(request(), image)
    pipe = engine._pipe
    engine.generate(request(seed=5), image)
    assert engine._pipe is pipe


def test_progress_per_step_with_eta(engine, image):
    seen = []
    engine.generate(request(steps=3), image, seen.append)
    steps = [p for p in seen if p.stage == "denoising"]
    assert [p.step for p in steps] == [1, 2, 3] and all(p.total == 3 for p in steps)
    assert steps[-1].eta_s == 0 and steps[0].seconds_per_step > 0
    assert steps[-1].memory_mib is not None and steps[-1].memory_mib > 0  # logged on the last step


def test_injected_out_of_memory_fails_that_run_and_the_next_succeeds(engine, image):
    engine.generate(request(), image)
    denoiser = engine._pipe.transformer
    fired = []

    def oom_once(module, args, kwargs):
        if not fired:
            fired.append(True)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    handle = denoiser.register_forward_pre_hook(oom_once, with_kwargs=True)
    try:
        with pytest.raises(DeviceOutOfMemoryError, match="out of device memory.*Tried to allocate 20.00 GiB"):
            engine.generate(request(), image)
        result = engine.generate(request(), image)
    finally:
        handle.remove()
    assert fired and result.output.frames.shape[0] == 9


def test_other_errors_are_not_swallowed(engine, image):
    engine.generate(request(), image)

    def broken(module, args, kwargs):
        raise ValueError("a real bug")

    handle = engine._pipe.transformer.register_forward_pre_hook(broken, with_kwargs=True)
    try:
        with pytest.raises(ValueError, match="a real bug"):
            engine.generate(request(), image)
    finally:
        handle.remove()


class _SmallCpu(CpuDevice):
    """A CPU that reports 1 MiB free: the refusal path without a small GPU."""

    def mem_get_info(self, index: int = 0):
        return 1024 * 1024, 2 * 1024 * 1024


def test_request_that_cannot_fit_is_refused_before_it_starts(tmp_path, image):
    small = Engine(Settings(models_dir=tmp_path, device="cpu"), device=_SmallCpu())
    with pytest.raises(PlanRefusedError, match="does not fit"):
        small.generate(request(), image)
    assert small._pipe is None  # nothing was loaded


def test_missing_weights_name_the_fetch_command(tmp_path, image):
    engine = Engine(Settings(models_dir=tmp_path, device="cpu"), device=CpuDevice())
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    with pytest.raises(WeightsMissingError, match=r"run: i2v fetch wan2.1-i2v-14b-480p"):
        engine.generate(resolve(spec, "fast"), image)
