"""Every tiny family end to end under the NPU policy, on CPU, with the dtype guard on.

No NPU exists here: torch_npu is the small fake of tests/fake_torch_npu.py (memory queries, bf16
support), the maths runs on CPU tensors, and `NpuDtypeGuard(device_type="cpu")` fails the run on
any float64 or complex tensor produced outside declared host steps. This proves the NPU path
(dtype choice, LTX-2 RoPE in float32, no float64 sampler maths on the device) avoids what
torch_npu cannot run. The `_native_npu` attention kernel needs the real torch_npu, so attention is
left at diffusers' default here; test_devices.py checks that choice separately.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fake_torch_npu import NpuPolicyOnCpu

from i2v import catalogue
from i2v.devices.guard import NpuDtypeGuard, UnsupportedOnNpuError, host_ops
from i2v.engine import Engine
from i2v.request import resolve
from i2v.settings import Settings

# Lightricks' own backend runs its NPU-policy modes in tests/test_ltx23_e2e.py.
TINY_IDS = [s.id for s in catalogue.all_specs() if s.tiny and s.backend == "diffusers"]


def device_tensors(pipe):
    for component, module in pipe.components.items():
        if isinstance(module, torch.nn.Module):
            for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
                yield f"{component}.{name}", tensor


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.mark.parametrize("model", TINY_IDS)
def test_tiny_family_runs_under_npu_policy_with_guard(models_dir, model):
    import fake_torch_npu

    from i2v.cli import demo_image
    from i2v.engine import ensure_weights
    from i2v.families import resolve_class

    spec = catalogue.get(model)
    # Build the tiny model and import its pipeline module before torch_npu "exists": diffusers
    # imports torch_npu kernels at module import when it believes torch_npu is there.
    ensure_weights(spec, Settings(models_dir=models_dir))
    resolve_class(spec.pipeline_cls)
    request = resolve(spec, "standard", prompt="a ball", steps=2)
    image = demo_image(request.width, request.height)
    with fake_torch_npu.installed():
        engine = Engine(Settings(models_dir=models_dir, device="cpu"), device=NpuPolicyOnCpu())
        # Loading is host work (diffusers builds e.g. Wan's RoPE tables in float64 on the CPU, then
        # casts them): do it as a declared host step, then check what would move to the NPU.
        with host_ops():
            pipe = engine.pipeline(spec, engine.plan(request))
        for name, tensor in device_tensors(pipe):
            assert tensor.dtype not in (torch.float64, torch.complex64, torch.complex128), (
                name,
                tensor.dtype,
            )
        with NpuDtypeGuard(device_type="cpu"):
            result = engine.generate(request, image)  # the warm pipeline: no load inside the guard
    assert result.plan.dtype == "bfloat16"  # 910B: bf16
    frames = result.output.frames
    assert frames.shape == (request.frames, request.height, request.width, 3)
    assert np.isfinite(frames).all()


@pytest.mark.parametrize("mode", ["two-stage-hq", "audio-to-video"])  # res2s float32; mel on the host
def test_ltx23_through_the_engine_under_npu_policy(models_dir, mode, tmp_path):
    """Lightricks' own backend through the engine with the NPU device class: the adapter hands the engine's
    device to the warm components, whose compat patches follow its policy (tests/test_ltx23_e2e.py runs
    all eight modes at the runner level)."""
    import fake_torch_npu

    from i2v.engine import ensure_weights
    from i2v.families.ltx2_official import compat
    from i2v.tiny import ltx23

    spec = catalogue.get("tiny-ltx-2.3")
    # As above: build the model set and import the package (compat.install imports the modules it
    # patches) before torch_npu "exists", or transformers imports torch_npu kernels the fake lacks.
    ensure_weights(spec, Settings(models_dir=models_dir))
    compat.install()
    media = ltx23.write_test_media(tmp_path, size=64, frames=9, fps=24)
    inputs = {"audio": str(media["audio"])} if mode == "audio-to-video" else {}
    request = resolve(spec, "standard", prompt="a ball", mode=mode, fps=24, **inputs)
    with fake_torch_npu.installed() as fake:
        engine = Engine(Settings(models_dir=models_dir, device="cpu"), device=NpuPolicyOnCpu())
        with NpuDtypeGuard(device_type="cpu"):
            result = engine.generate(request, None)
    assert result.output.frames.shape == (9, 64, 64, 3) and np.isfinite(result.output.frames).all()
    assert result.output.audio.shape[0] == 2 and np.isfinite(result.output.audio).all()
    assert {"synchronize", "empty_cache"} <= set(fake.calls)  # through torch.npu, not torch.cuda


def test_guard_fails_on_a_float64_op():
    with pytest.raises(UnsupportedOnNpuError, match="float64"), NpuDtypeGuard(device_type="cpu"):
        torch.arange(8, dtype=torch.float32).to(torch.float64) * 2
