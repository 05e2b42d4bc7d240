"""The CUDA paths of `CudaDevice` and `i2v.apply` on a fake CUDA (tests/fake_cuda.py), real code on CPU
tensors: the budget the engine reads, FP8 layerwise casting, group offload's CUDA stream, compile, and
the attention backend choice."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
import torch
from fake_cuda import FREE_BYTES, NAME, FakeCudaDevice, install

from i2v import catalogue
from i2v.apply import apply
from i2v.engine import Engine
from i2v.families import RunContext, adapter_for
from i2v.planner import DeviceBudget, plan
from i2v.request import resolve
from i2v.settings import Settings
from i2v.tiny.build import build_pipeline

MIB = 1024 * 1024


@pytest.fixture
def cuda(monkeypatch):
    return install(monkeypatch)


def tiny(model: str, dtype=torch.bfloat16):
    pipe = build_pipeline(model).to(dtype=dtype)
    return adapter_for(catalogue.get(model)).prepare(pipe)


def planned(model: str, **changes):
    spec = catalogue.get(model)
    budget = Engine(Settings(device="cuda"), device=FakeCudaDevice()).budget(spec)
    p = plan(spec, resolve(spec, "standard"), budget)
    return spec, dataclasses.replace(p, **changes)


def run(spec, pipe, device, seed=0):
    from i2v.cli import demo_image

    request = resolve(spec, "standard", seed=seed)
    ctx = RunContext(device, torch.Generator().manual_seed(seed), None, decode_chunk=None)
    torch.manual_seed(seed)
    with torch.inference_mode():
        return (
            adapter_for(spec).run(pipe, spec, request, demo_image(request.width, request.height), ctx).frames
        )


def test_the_engine_reads_the_cuda_budget_through_torch_cuda(cuda):
    spec = catalogue.get("tiny-wan2.1-i2v")
    budget = Engine(Settings(device="cuda"), device=FakeCudaDevice()).budget(spec)
    assert (budget.kind, budget.name, budget.compute_capability) == ("cuda", NAME, "9.0")
    assert budget.free_mib == FREE_BYTES // MIB and budget.supports_bf16
    assert {"mem_get_info", "get_device_capability", "get_device_name"} <= set(cuda.calls)


def weight_bytes(module) -> int:
    return sum(p.untyped_storage().nbytes() for p in module.parameters())


def test_fp8_weights_halve_the_denoiser_and_keep_the_frames_close(cuda):
    spec, resident = planned("tiny-wan2.1-i2v", strategy="resident", compile="none")
    device = FakeCudaDevice()
    plain = apply(tiny(spec.id), resident, device, adapter_for(spec))
    reference = run(spec, plain, device)
    fp8 = apply(tiny(spec.id), dataclasses.replace(resident, fp8_weights=True), device, adapter_for(spec))
    ratio = weight_bytes(fp8.transformer) / weight_bytes(plain.transformer)
    # float8 storage for the matmul weights; norms, embeddings and proj_out stay bf16 (diffusers' skip
    # list), a larger share of a tiny model than of a full-size one (Wan 14B, I2VGen-XL: about half,
    # memory_fits.json's fp8 weights)
    assert ratio < 0.75, ratio
    assert any(p.dtype == torch.float8_e4m3fn for p in fp8.transformer.parameters())
    frames = run(spec, fp8, device)
    difference = np.abs(frames - reference)
    print(
        f"fp8 vs bf16 frames: mean {difference.mean():.4f}, max {difference.max():.4f}; weights x{ratio:.2f}"
    )
    assert 0 < difference.mean() < 0.05  # lossy, and close


def test_group_offload_on_cuda_asks_diffusers_for_a_side_stream(cuda):
    spec, grouped = planned("tiny-wan2.1-i2v", strategy="group-offload", compile="none")
    # diffusers builds the stream from the onload device's backend: on the CPU it refuses, which shows
    # `use_stream=True` (CUDA's supports_streams) reached it through a call diffusers accepted.
    with pytest.raises(ValueError, match="Using streams for data transfer requires an onload device"):
        apply(tiny(spec.id), grouped, FakeCudaDevice(), adapter_for(spec))


def test_model_offload_on_cuda_runs_with_accelerate_hooks(cuda):
    spec, offloaded = planned("tiny-wan2.1-i2v", strategy="model-offload", compile="none")
    pipe = apply(tiny(spec.id), offloaded, FakeCudaDevice(), adapter_for(spec))
    assert hasattr(pipe.transformer, "_hf_hook")
    assert run(spec, pipe, FakeCudaDevice()).shape[0] == resolve(spec, "standard").frames


def test_compile_wraps_the_repeated_blocks_or_the_whole_unet(cuda):
    spec, regional = planned("tiny-wan2.1-i2v", strategy="resident", compile="regional")
    pipe = apply(tiny(spec.id), regional, FakeCudaDevice(), adapter_for(spec))
    assert all(block._compiled_call_impl is not None for block in pipe.transformer.blocks)
    unet_spec, whole = planned("tiny-i2vgen-xl", strategy="resident", compile="whole")
    pipe = apply(tiny(unet_spec.id, torch.float16), whole, FakeCudaDevice(), adapter_for(unet_spec))
    assert type(pipe.unet).__name__ == "OptimizedModule"


def test_attention_backend_follows_the_preset_and_what_is_installed(tmp_path, monkeypatch, cuda):
    wan, unet = catalogue.get("wan2.1-i2v-14b-480p"), catalogue.get("i2vgen-xl")
    h100 = DeviceBudget(
        "cuda", NAME, 81559, 81559, 10**6, compute_capability="9.0", attention_backends=("sage", "flash")
    )
    assert plan(wan, resolve(wan, "fast", models_dir=tmp_path), h100).attention == "sage"  # lossy: fast only
    assert plan(wan, resolve(wan, "standard"), h100).attention == "flash"
    assert plan(wan, resolve(wan, "hq"), dataclasses.replace(h100, attention_backends=())).attention is None
    npu = DeviceBudget("npu", "Ascend 910B3", 65536, 65536, 10**6, chip="910B3", attention_backends=("sage",))
    assert (
        plan(wan, resolve(wan, "fast", models_dir=tmp_path), npu).attention is None
    )  # NpuDevice's _native_npu
    assert plan(unet, resolve(unet, "standard"), h100).attention is None  # the UNet ignores backends
    # An installed package (a distribution on sys.path) is what CudaDevice finds.
    site = tmp_path / "site"
    (site / "sageattention").mkdir(parents=True)
    (site / "sageattention" / "__init__.py").write_text("")
    (site / "sageattention-2.2.0.dist-info").mkdir()
    (site / "sageattention-2.2.0.dist-info" / "METADATA").write_text("Name: sageattention\nVersion: 2.2.0\n")
    monkeypatch.syspath_prepend(str(site))
    assert FakeCudaDevice().attention_backends() == ("sage",)
    old = tmp_path / "old"
    (old / "sageattention").mkdir(parents=True)
    (old / "sageattention" / "__init__.py").write_text("")
    (old / "sageattention-1.0.6.dist-info").mkdir()
    (old / "sageattention-1.0.6.dist-info" / "METADATA").write_text("Name: sageattention\nVersion: 1.0.6\n")
    monkeypatch.setattr(sys, "path", [str(old), *[p for p in sys.path if p != str(site)]])
    assert FakeCudaDevice().attention_backends() == ()  # below diffusers' 2.1.1


def test_the_planned_backend_reaches_diffusers_dispatch(cuda):
    spec = catalogue.get("tiny-wan2.1-i2v")
    pipe = tiny(spec.id)
    adapter = adapter_for(spec)
    assert adapter.apply_attention(pipe, FakeCudaDevice(), "native") == "native"
    # diffusers checks the backend's package when it is set: not installed here, it says so
    with pytest.raises(RuntimeError, match="sageattention"):
        adapter.apply_attention(pipe, FakeCudaDevice(), "sage")
