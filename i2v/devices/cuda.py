"""NVIDIA GPUs through torch.cuda. Import-safe; torch is imported when a method is called.

`torch.cuda.is_available()` asks the driver for a device count and does not create a context,
so detection does not initialise the GPU.

Attention: diffusers' dispatch runs `sage` (SageAttention, 8-bit QK: lossy, the planner proposes it
for presets that allow it), `flash` (flash-attn 2) or `_flash_3` (flash-attn 3, Hopper) where the
package is installed at the version diffusers 0.42.1 requires; otherwise torch's SDPA, whose CUDA
kernels are flash-style already.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import TYPE_CHECKING, ClassVar

from .base import Device, choose_dtype, dtype_name

if TYPE_CHECKING:
    import torch


class CudaDevice(Device):
    kind: ClassVar[str] = "cuda"
    visible_devices_env: ClassVar[str | None] = "CUDA_VISIBLE_DEVICES"
    supports_streams: ClassVar[bool] = True
    autocast_dtype_names: ClassVar[tuple[str, ...]] = ("float16", "bfloat16", "float32")
    oom_markers: ClassVar[tuple[str, ...]] = ("CUDA out of memory",)
    dist_backend: ClassVar[str] = "nccl"
    # torch's cuDNN attention returns the log-sum-exp (diffusers 0.42.1 `_native_cudnn`; bf16/fp16 only).
    ring_attention_backend: ClassVar[str | None] = "_native_cudnn"

    def is_available(self) -> bool:
        import torch

        return torch.cuda.is_available()

    def device_count(self) -> int:
        import torch

        return torch.cuda.device_count()

    def compute_capability(self, index: int | None = None) -> tuple[int, int]:
        import torch

        return tuple(torch.cuda.get_device_capability(self.at(index)))  # type: ignore[return-value]

    def preferred_dtype_name(self) -> str:
        return choose_dtype("cuda", compute_capability=self.compute_capability())

    def unsupported_dtype_reason(self, dtype: object) -> str | None:
        if dtype_name(dtype) == "bfloat16":
            major, minor = self.compute_capability()
            if (major, minor) < (8, 0):
                return (
                    f"bfloat16 needs a GPU with compute capability of at least 8.0; this one has "
                    f"{major}.{minor}. Use float16 instead."
                )
        return super().unsupported_dtype_reason(dtype)

    def mem_get_info(self, index: int | None = None) -> tuple[int, int]:
        import torch

        free_bytes, total_bytes = torch.cuda.mem_get_info(self.at(index))
        return int(free_bytes), int(total_bytes)

    def max_memory_allocated(self, index: int | None = None) -> int:
        import torch

        return int(torch.cuda.max_memory_allocated(self.at(index)))

    def reset_peak_memory_stats(self, index: int | None = None) -> None:
        import torch

        torch.cuda.reset_peak_memory_stats(self.at(index))

    def synchronize(self, index: int | None = None) -> None:
        import torch

        torch.cuda.synchronize(self.at(index))

    def empty_cache(self) -> None:
        import torch

        torch.cuda.empty_cache()

    def torch_device(self, index: int | None = None) -> torch.device:
        import torch

        return torch.device("cuda", self.at(index))

    def attention_backends(self) -> tuple[str, ...]:
        found = [
            name for name, (package, minimum) in ATTENTION_PACKAGES.items() if _installed(package, minimum)
        ]
        if "_flash_3" in found and self.compute_capability() < (9, 0):
            found.remove("_flash_3")  # flash-attn 3 kernels are Hopper-only
        return tuple(found)


# diffusers backend -> (package, the minimum version diffusers 0.42.1's attention_dispatch checks)
ATTENTION_PACKAGES: dict[str, tuple[str, str | None]] = {
    "sage": ("sageattention", "2.1.1"),
    "flash": ("flash_attn", "2.6.3"),
    "_flash_3": ("flash_attn_3", None),
}


def _installed(package: str, minimum: str | None) -> bool:
    try:
        if importlib.util.find_spec(package) is None:
            return False
    except (ImportError, ValueError):
        return False
    if minimum is None:
        return True
    from packaging.version import Version

    try:
        return Version(importlib.metadata.version(package)) >= Version(minimum)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
