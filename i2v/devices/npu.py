"""Huawei Ascend NPUs through torch_npu (`torch.npu.*`).

Import-safe: torch_npu is imported only inside `NpuDevice` methods (`_npu()`), never at module
import, because importing torch_npu initialises the CANN runtime.

Precision policy (Ascend 910B, torch_npu 2.8-2.10): no float64 on most kernels, no complex64,
autocast only to float16/bfloat16; the class attributes say so, and each family adapter applies
what that means for its pipeline (`FamilyAdapter.configure_for_device`: LTX-2's float64 RoPE in
`i2v.families.ltx2`). Complex steps (mel spectrograms) go through `Device.run_complex_step`, which
runs them on the CPU. Attention: diffusers' `_native_npu` backend for transformers,
`enable_npu_flash_attention()` for UNets.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, ClassVar

from .base import Device, DeviceUnavailableError, choose_dtype, dtype_name

if TYPE_CHECKING:
    import torch

NPU_ATTENTION_BACKEND = "_native_npu"


def torch_npu_installed() -> bool:
    """Whether torch_npu can be imported, without importing it."""
    try:
        return importlib.util.find_spec("torch_npu") is not None
    except ValueError:  # in sys.modules with no __spec__
        return True


class NpuDevice(Device):
    kind: ClassVar[str] = "npu"
    visible_devices_env: ClassVar[str | None] = "ASCEND_RT_VISIBLE_DEVICES"
    supports_streams: ClassVar[bool] = False
    complex_on_cpu: ClassVar[bool] = True
    allow_float64: ClassVar[bool] = False
    allow_complex: ClassVar[bool] = False
    autocast_dtype_names: ClassVar[tuple[str, ...]] = ("float16", "bfloat16")
    oom_markers: ClassVar[tuple[str, ...]] = ("NPU out of memory",)
    attention_backend_name: ClassVar[str | None] = NPU_ATTENTION_BACKEND
    unet_flash_attention: ClassVar[bool] = True
    dist_backend: ClassVar[str] = "hccl"
    # diffusers 0.42.1's `_native_npu` forward raises on return_lse=True: Ulysses only, no ring attention.
    ring_attention_backend: ClassVar[str | None] = None

    @staticmethod
    def _npu() -> Any:
        """`torch.npu`, importing torch_npu first (it registers the namespace and the "npu" device)."""
        import torch

        try:
            import torch_npu  # noqa: F401
        except (ImportError, OSError) as exc:  # OSError: CANN libraries not on the loader path
            raise DeviceUnavailableError(
                f"torch_npu is installed but does not import ({exc}); source "
                f"/usr/local/Ascend/ascend-toolkit/set_env.sh (the CANN images' entrypoint does), "
                f"or set I2V_DEVICE=cpu"
            ) from exc
        return torch.npu

    def is_available(self) -> bool:
        return torch_npu_installed() and bool(self._npu().is_available())

    def device_count(self) -> int:
        return int(self._npu().device_count())

    def torch_device(self, index: int | None = None) -> torch.device:
        import torch

        self._npu()
        return torch.device("npu", self.at(index))

    def preferred_dtype_name(self) -> str:
        return choose_dtype("npu", bf16_supported=bool(self._npu().is_bf16_supported()))

    def unsupported_dtype_reason(self, dtype: object) -> str | None:
        if dtype_name(dtype) == "bfloat16" and not self._npu().is_bf16_supported():
            return "bfloat16 is not supported on this NPU (310P and older); use float16 instead"
        return super().unsupported_dtype_reason(dtype)

    def mem_get_info(self, index: int | None = None) -> tuple[int, int]:
        free_bytes, total_bytes = self._npu().mem_get_info(self.at(index))
        return int(free_bytes), int(total_bytes)

    def max_memory_allocated(self, index: int | None = None) -> int:
        return int(self._npu().max_memory_allocated(self.at(index)))

    def reset_peak_memory_stats(self, index: int | None = None) -> None:
        self._npu().reset_peak_memory_stats(self.at(index))

    def synchronize(self, index: int | None = None) -> None:
        self._npu().synchronize(self.at(index))

    def empty_cache(self) -> None:
        self._npu().empty_cache()
