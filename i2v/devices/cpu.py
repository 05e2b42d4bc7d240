"""The CPU: always available, float32, memory from /proc/meminfo. Import-safe."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .base import Device, read_meminfo

if TYPE_CHECKING:
    import torch


class CpuDevice(Device):
    kind: ClassVar[str] = "cpu"
    visible_devices_env: ClassVar[str | None] = None
    oom_markers: ClassVar[tuple[str, ...]] = ("DefaultCPUAllocator: can't allocate memory",)

    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return 1

    def torch_device(self, index: int | None = None) -> torch.device:
        import torch

        return torch.device("cpu")

    def preferred_dtype_name(self) -> str:
        return "float32"

    def mem_get_info(self, index: int | None = None) -> tuple[int, int]:
        """(MemAvailable, MemTotal): the host's view; a container's cgroup limit may be lower."""
        return read_meminfo()

    def max_memory_allocated(self, index: int | None = None) -> int:
        """Peak resident set size of this process. The CPU allocator keeps no peak of its own."""
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB

    def reset_peak_memory_stats(self, index: int | None = None) -> None:
        """No-op: the kernel's peak RSS cannot be reset from inside the process."""

    def synchronize(self, index: int | None = None) -> None:
        """No-op: CPU ops are synchronous."""

    def empty_cache(self) -> None:
        """No-op: the CPU allocator returns memory to the OS itself."""

    def is_oom(self, exc: BaseException) -> bool:
        return isinstance(exc, MemoryError) or super().is_oom(exc)
