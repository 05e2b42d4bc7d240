"""i2v.devices: selection, dtype rules, OOM recognition, precision policy, attention choice."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from i2v import catalogue
from i2v.devices import (
    CpuDevice,
    CudaDevice,
    DeviceUnavailableError,
    NpuDevice,
    choose_dtype,
    parse_meminfo,
    select_device,
)
from i2v.families.i2vgen import I2VGenXL
from i2v.families.ltx2 import Ltx2Diffusers
from i2v.families.wan import Wan

try:
    import fake_torch_npu as fake_module
except ImportError:  # tests/ is a package
    from tests import fake_torch_npu as fake_module

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_selection(monkeypatch):
    monkeypatch.delenv("I2V_DEVICE", raising=False)
    select_device.cache_clear()
    yield
    select_device.cache_clear()


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


# -- selection -------------------------------------------------------------------------------
def test_env_selects_cpu(monkeypatch):
    monkeypatch.setenv("I2V_DEVICE", "cpu")
    device = select_device()
    assert isinstance(device, CpuDevice)
    assert device.torch_device() == torch.device("cpu")
    assert select_device() is device  # chosen once


def test_argument_overrides_env(monkeypatch):
    monkeypatch.setenv("I2V_DEVICE", "npu")
    assert isinstance(select_device("cpu"), CpuDevice)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_env_cuda_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("I2V_DEVICE", "cuda")
    with pytest.raises(
        DeviceUnavailableError, match=r"I2V_DEVICE=cuda but torch .*; set I2V_DEVICE=auto or cpu"
    ):
        select_device()


def test_env_npu_without_torch_npu_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("I2V_DEVICE", "npu")
    with pytest.raises(DeviceUnavailableError, match=r"I2V_DEVICE=npu but torch_npu is not installed"):
        select_device()


def test_env_npu_with_fake_torch_npu(monkeypatch, fake_torch_npu):
    monkeypatch.setenv("I2V_DEVICE", "npu")
    device = select_device()
    assert isinstance(device, NpuDevice)
    assert "is_available" in fake_torch_npu.calls


def test_auto_prefers_npu_over_cuda_and_cpu(fake_torch_npu):
    assert isinstance(select_device("auto"), NpuDevice)


def test_auto_falls_back_to_cpu():
    expected = CudaDevice if torch.cuda.is_available() else CpuDevice
    assert isinstance(select_device(), expected)


def test_broken_torch_npu_install_is_reported_not_skipped(monkeypatch, tmp_path):
    """torch_npu present but CANN not sourced: auto must say so, not quietly run a 22B model on the CPU."""
    package = tmp_path / "torch_npu"
    package.mkdir()
    (package / "__init__.py").write_text(
        "raise ImportError('libhccl.so: cannot open shared object file: No such file or directory')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        DeviceUnavailableError, match=r"libhccl.so.*source /usr/local/Ascend/ascend-toolkit/set_env.sh"
    ):
        select_device("auto")
    assert "torch_npu" not in sys.modules


@pytest.mark.parametrize("value", ["tpu", "gpu", "cuda:0"])
def test_unknown_device_names_value_and_choices(monkeypatch, value):
    monkeypatch.setenv("I2V_DEVICE", value)
    with pytest.raises(
        ValueError, match=rf"I2V_DEVICE='{value}' is not a device; use one of auto, npu, cuda, cpu"
    ):
        select_device()
    with pytest.raises(ValueError, match=rf"name='{value}'"):
        select_device(value)


def test_importing_devices_and_video_imports_no_torch():
    result = run_python("""
        import sys
        import i2v.devices, i2v.video
        i2v.devices.NpuDevice.allow_float64, i2v.devices.CudaDevice.visible_devices_env
        assert i2v.devices.choose_dtype("cuda", compute_capability=(8, 6)) == "bfloat16"
        print(sorted(m for m in ("torch", "torch_npu") if m in sys.modules))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- dtypes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("capability", "dtype"),
    [
        ((7, 0), "float16"),
        ((7, 5), "float16"),
        ((8, 0), "bfloat16"),
        ((8, 9), "bfloat16"),
        ((9, 0), "bfloat16"),
    ],
)
def test_cuda_dtype_follows_compute_capability(capability, dtype):
    assert choose_dtype("cuda", compute_capability=capability) == dtype


def test_dtype_rules_for_npu_and_cpu():
    assert choose_dtype("npu", bf16_supported=True) == "bfloat16"
    assert choose_dtype("npu", bf16_supported=False) == "float16"
    assert choose_dtype("cpu") == "float32"
    with pytest.raises(ValueError, match="needs compute_capability"):
        choose_dtype("cuda")
    with pytest.raises(ValueError, match=r"kind 'tpu' is not one of"):
        choose_dtype("tpu")


class TuringGpu(CudaDevice):
    """A CUDA device whose capability query answers 7.5 (T4); everything else is the real class."""

    def compute_capability(self, index: int = 0) -> tuple[int, int]:
        return (7, 5)


def test_pre_ampere_gpu_refuses_bf16_with_advice():
    device = TuringGpu()
    assert device.preferred_dtype() == torch.float16
    assert not device.supports_dtype(torch.bfloat16)
    with pytest.raises(
        ValueError, match=r"compute capability of at least 8.0; this one has 7.5. Use float16"
    ):
        device.check_dtype("bf16")
    assert device.supports_dtype(torch.float64)


def test_cpu_device_basics():
    device = CpuDevice()
    assert device.preferred_dtype() == torch.float32
    free_bytes, total_bytes = device.mem_get_info()
    assert 0 < free_bytes <= total_bytes
    assert device.max_memory_allocated() > 0
    device.synchronize(), device.empty_cache(), device.reset_peak_memory_stats()


def test_parse_meminfo():
    text = "MemTotal:       131072000 kB\nMemFree:         1000 kB\nMemAvailable:   65536000 kB\n"
    assert parse_meminfo(text) == (65536000 * 1024, 131072000 * 1024)


def test_torch_devices():
    assert CudaDevice().torch_device(1) == torch.device("cuda", 1)
    assert CpuDevice().torch_device(3) == torch.device("cpu")


def test_npu_torch_device_is_npu_n():
    # Registering the "npu" device type is irreversible (see fake_torch_npu), so this runs in its own process.
    result = run_python("""
        import fake_torch_npu
        fake_torch_npu.install(register_device_type=True)
        from i2v.devices import NpuDevice
        print(NpuDevice().torch_device(1))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "npu:1"


def test_npu_device_queries_torch_npu(fake_torch_npu):
    device = NpuDevice()
    assert device.is_available() and device.device_count() == fake_module.DEVICE_COUNT
    free_bytes, total_bytes = device.mem_get_info()
    assert total_bytes == fake_module.TOTAL_BYTES == 65536 * 1024 * 1024
    assert (free_bytes, total_bytes) == fake_torch_npu.npu.mem_get_info()
    assert device.preferred_dtype() == torch.bfloat16
    fake_torch_npu.npu._peak["bytes"] = 123
    assert device.max_memory_allocated() == 123
    device.reset_peak_memory_stats()
    device.synchronize()
    device.empty_cache()
    assert {"synchronize", "empty_cache", "reset_peak_memory_stats", "is_bf16_supported"} <= set(
        fake_torch_npu.calls
    )
    assert device.max_memory_allocated() == 0


# -- OOM -------------------------------------------------------------------------------------
CUDA_OOM = (
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
    "1.06 GiB is free."
)
NPU_OOM = (
    "NPU out of memory. Tried to allocate 2.00 GiB (NPU 0; 60.96 GiB total capacity; 57.12 GiB already "
    "allocated; 57.12 GiB current active; 1.21 GiB free; 58.02 GiB reserved in total by PyTorch)"
)
CPU_OOM = (
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to "
    "allocate 1099511627776 bytes. Error code 12 (Cannot allocate memory)"
)


@pytest.mark.parametrize(
    ("device", "exc", "expected"),
    [
        (CudaDevice(), torch.OutOfMemoryError(CUDA_OOM), True),
        (CudaDevice(), RuntimeError(CUDA_OOM), True),
        (CudaDevice(), RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (NpuDevice(), RuntimeError(NPU_OOM), True),
        (NpuDevice(), torch.OutOfMemoryError(NPU_OOM), True),
        (NpuDevice(), ValueError(NPU_OOM), False),
        (NpuDevice(), RuntimeError("call aclnnFlashAttentionScore failed"), False),
        (CpuDevice(), MemoryError(), True),
        (CpuDevice(), RuntimeError(CPU_OOM), True),
        (CpuDevice(), RuntimeError(NPU_OOM), False),
    ],
)
def test_is_oom(device, exc, expected):
    assert device.is_oom(exc) is expected


def test_real_cpu_allocation_failure_is_oom():
    try:
        torch.empty(1 << 62, dtype=torch.uint8)
    except Exception as exc:  # noqa: BLE001 - whatever torch raises is what is_oom must recognise
        assert CpuDevice().is_oom(exc), repr(exc)
    else:
        pytest.skip("the allocator granted 4 EiB")


# -- precision policy ------------------------------------------------------------------------
def test_npu_precision_policy():
    device = NpuDevice()
    policy = device.policy
    assert policy.allow_float64 is False and policy.allow_complex is False
    assert policy.autocast_dtypes == (torch.float16, torch.bfloat16)
    assert policy.high_precision_dtype == torch.float32 == device.high_precision_dtype
    assert device.complex_on_cpu and not device.supports_streams
    assert device.visible_devices_env == "ASCEND_RT_VISIBLE_DEVICES"
    assert not device.supports_dtype(torch.float64) and not device.supports_dtype(torch.complex64)
    with pytest.raises(ValueError, match="float64 is not supported on npu; use float32"):
        device.check_dtype("double")
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.allow_float64 = True  # type: ignore[misc]


def test_cuda_and_cpu_precision_policy():
    for device in (CudaDevice(), CpuDevice()):
        assert device.policy.allow_float64 and device.policy.allow_complex
        assert device.high_precision_dtype == torch.float64
        assert not device.complex_on_cpu
    assert CudaDevice.supports_streams and CudaDevice.visible_devices_env == "CUDA_VISIBLE_DEVICES"
    assert not CpuDevice.supports_streams and CpuDevice.visible_devices_env is None


def test_bf16_on_npu_follows_torch_npu(fake_torch_npu):
    assert NpuDevice().supports_dtype("bfloat16")
    fake_torch_npu.npu.is_bf16_supported = lambda: False  # a 310P
    assert NpuDevice().preferred_dtype() == torch.float16
    assert not NpuDevice().supports_dtype("bfloat16")


# -- attention -------------------------------------------------------------------------------
def tiny_wan_transformer():
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=4,
        out_channels=4,
        text_dim=16,
        freq_dim=32,
        ffn_dim=16,
        num_layers=1,
        rope_max_seq_len=32,
    )


def attention_backends(model) -> set:
    return {
        getattr(m.processor, "_attention_backend", None) for m in model.modules() if hasattr(m, "processor")
    }


class Pipe:
    """A pipeline as the adapters see it: denoisers as attributes."""

    def __init__(self, **denoisers):
        self.__dict__.update(denoisers)


def test_devices_choose_the_attention_backend():
    assert NpuDevice().attention_backend() == "_native_npu" and NpuDevice.unet_flash_attention
    assert CudaDevice().attention_backend() is None and not CudaDevice.unet_flash_attention
    assert CpuDevice().attention_backend() is None and not CpuDevice.unet_flash_attention


@pytest.mark.parametrize("model", ["wan2.1-i2v-14b-480p", "wan2.2-i2v-a14b", "ltx-video", "ltx-2"])
def test_transformer_families_take_the_backend(model):
    assert catalogue.get(model).adapter.levers.attention == "backend"


@pytest.mark.parametrize("model", ["i2vgen-xl", "svd-xt"])
def test_unet_families_take_npu_flash_attention(model):
    assert catalogue.get(model).adapter.levers.attention == "npu-flash"


def test_apply_attention_is_a_no_op_on_cpu():
    model = tiny_wan_transformer()
    before = attention_backends(model)
    assert Wan().apply_attention(Pipe(transformer=model), CpuDevice()) is None
    assert attention_backends(model) == before


def test_apply_attention_sets_the_backend_on_every_denoiser():
    """The plumbing, with a backend that exists on CPU ("native"): Wan 2.2 has two transformers."""

    class NativeChoosingCpu(CpuDevice):
        attention_backend_name = "native"

    pipe = Pipe(transformer=tiny_wan_transformer(), transformer_2=tiny_wan_transformer())
    try:
        assert Wan().apply_attention(pipe, NativeChoosingCpu()) == "native"
        for model in (pipe.transformer, pipe.transformer_2):
            assert {b.value for b in attention_backends(model) if b is not None} == {"native"}
    finally:
        pipe.transformer.reset_attention_backend()  # diffusers also keeps a process-wide active backend


def test_apply_native_npu_attention_needs_real_torch_npu(fake_torch_npu):
    """diffusers 0.42.1 checks for an installed torch_npu *distribution* before accepting "_native_npu"
    (attention_dispatch.py: `_CAN_USE_NPU_ATTN = is_torch_npu_available()`, computed at import), so a fake
    module cannot pass it. We assert the choice and that the refusal is diffusers' own, untouched; on an
    Atlas host the same call sets the backend (run the `npu`-marked test there)."""
    model = tiny_wan_transformer()
    before = attention_backends(model)
    with pytest.raises(RuntimeError, match=r"'_native_npu' is not usable .* Please install `torch_npu`"):
        Wan().apply_attention(Pipe(transformer=model), NpuDevice())
    assert attention_backends(model) == before


def test_npu_flash_attention_on_a_unet_needs_real_torch_npu(fake_torch_npu):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    with pytest.raises(ImportError, match="AttnProcessorNPU requires torch_npu"):
        I2VGenXL().apply_attention(Pipe(unet=unet), NpuDevice())


@pytest.mark.npu
def test_apply_native_npu_attention_on_real_npu():
    device = select_device("npu")
    model = tiny_wan_transformer()
    assert Wan().apply_attention(Pipe(transformer=model), device) == "_native_npu"
    assert {b.value for b in attention_backends(model) if b is not None} == {"_native_npu"}


def test_device_policy_changes_nothing_where_float64_is_allowed():
    from diffusers import LTX2VideoTransformer3DModel

    model = LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=1,
        caption_channels=16,
    )
    assert Ltx2Diffusers().configure_for_device(Pipe(transformer=model), CpuDevice()) == ()
    assert Wan().configure_for_device(Pipe(transformer=model), NpuDevice()) == ()
    assert model.rope.double_precision and model.config.rope_double_precision
