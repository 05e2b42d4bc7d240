"""A small fake `torch_npu` so the NPU code paths run on a machine without an NPU (CPU CI, laptops).

After vllm-ascend's unit-test conftest: `install()` puts a module named `torch_npu` into
`sys.modules` and a `torch.npu` namespace onto torch holding exactly what `NpuDevice` calls;
`uninstall()` takes both away. It answers like one idle Ascend 910B3: 64 GiB of HBM (65536 MiB,
as npu-smi reports its total), about 3.3 GiB in use by the runtime (an illustrative idle figure,
not a recording), bfloat16 supported.

What it does not fake: computation. There is no NPU here, so tests that exercise the NPU *policy*
(no float64, complex steps on the host) run the maths on CPU tensors (`COMPUTE_DEVICE`) under
`NpuDtypeGuard(device_type="cpu")`. Nothing here returns a result of the code under test.

The "npu" device type. Real torch_npu renames torch's PrivateUse1 backend to "npu", which is
what makes `torch.device("npu:0")` parse. That rename cannot be undone and makes
`torch.accelerator` (and diffusers' device detection through it) report "npu" for the rest of
the process, so `install()` leaves it out unless asked (`register_device_type=True`), which only
a throwaway subprocess should do.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import sys
import types
from collections.abc import Iterator

import torch

from i2v.devices import NpuDevice

MIB = 1024 * 1024
TOTAL_BYTES = 65536 * MIB  # 910B3: 64 GiB HBM
USED_BYTES = 3392 * MIB  # runtime + context on an idle card (illustrative)
FREE_BYTES = TOTAL_BYTES - USED_BYTES
DEVICE_COUNT = 1
COMPUTE_DEVICE = torch.device("cpu")  # where NPU-policy maths really runs in tests

_CACHED_DETECTORS = (  # lru_cached "is torch_npu usable" checks that would otherwise remember the fake
    ("accelerate.utils.imports", "is_npu_available"),
    ("transformers.utils.import_utils", "is_torch_npu_available"),
    ("i2v.devices", "select_device"),
)


def _build_npu_namespace(calls: list[str]) -> types.ModuleType:
    npu = types.ModuleType("torch.npu")
    peak = {"bytes": 0}
    used: dict[int, int] = {}  # card index -> bytes another process holds there (tests set it)

    def record(name: str):
        def decorator(fn):
            def wrapper(*args, **kwargs):
                calls.append(name)
                return fn(*args, **kwargs)

            wrapper.__name__ = name
            return wrapper

        return decorator

    @record("is_available")
    def is_available() -> bool:
        return True

    @record("device_count")
    def device_count() -> int:
        return DEVICE_COUNT

    @record("current_device")
    def current_device() -> int:
        return 0

    @record("mem_get_info")
    def mem_get_info(device=None) -> tuple[int, int]:
        index = 0 if device is None else int(getattr(device, "index", device) or 0)
        return FREE_BYTES - used.get(index, 0), TOTAL_BYTES

    @record("is_bf16_supported")
    def is_bf16_supported() -> bool:
        return True

    @record("synchronize")
    def synchronize(device=None) -> None:
        return None

    @record("empty_cache")
    def empty_cache() -> None:
        return None

    @record("max_memory_allocated")
    def max_memory_allocated(device=None) -> int:
        return peak["bytes"]

    @record("reset_peak_memory_stats")
    def reset_peak_memory_stats(device=None) -> None:
        peak["bytes"] = 0

    for fn in (
        is_available,
        device_count,
        current_device,
        mem_get_info,
        is_bf16_supported,
        synchronize,
        empty_cache,
        max_memory_allocated,
        reset_peak_memory_stats,
    ):
        setattr(npu, fn.__name__, fn)
    npu._peak = peak  # tests may set a peak to see it reported
    npu._used_by_others = used  # tests may fill a card, as another process on it would
    return npu


class FakeTorchNpu(types.ModuleType):
    """The fake `torch_npu` module; `calls` lists the `torch.npu` functions called while installed."""

    def __init__(self) -> None:
        super().__init__("torch_npu")
        self.__spec__ = importlib.machinery.ModuleSpec("torch_npu", loader=None)
        self.__version__ = "0.0.0+fake"
        self.calls: list[str] = []
        self.npu = _build_npu_namespace(self.calls)


def _clear_cached_detectors() -> None:
    for module_name, attr in _CACHED_DETECTORS:
        fn = getattr(sys.modules.get(module_name), attr, None)
        if hasattr(fn, "cache_clear"):
            fn.cache_clear()


def install(*, register_device_type: bool = False) -> FakeTorchNpu:
    if "torch_npu" in sys.modules or hasattr(torch, "npu"):
        raise RuntimeError("torch_npu (real or fake) is already loaded; refusing to shadow it")
    fake = FakeTorchNpu()
    sys.modules["torch_npu"] = fake
    sys.modules["torch.npu"] = fake.npu
    torch.npu = fake.npu
    if register_device_type:  # irreversible: see the module docstring
        torch.utils.rename_privateuse1_backend("npu")
    _clear_cached_detectors()
    return fake


def uninstall() -> None:
    if isinstance(sys.modules.get("torch_npu"), FakeTorchNpu):
        del sys.modules["torch_npu"]
        sys.modules.pop("torch.npu", None)
        if hasattr(torch, "npu"):
            del torch.npu
    _clear_cached_detectors()


@contextlib.contextmanager
def installed() -> Iterator[FakeTorchNpu]:
    fake = install()
    try:
        yield fake
    finally:
        uninstall()


class NpuPolicyOnCpu(NpuDevice):
    """The NPU class as it is (policy, dtype choice, OOM markers, memory and sync through torch.npu),
    computing on CPU tensors. The `_native_npu` kernels exist only in the real torch_npu, so diffusers'
    default attention is kept."""

    attention_backend_name = None
    unet_flash_attention = False

    def torch_device(self, index: int | None = None) -> torch.device:
        return torch.device("cpu")
