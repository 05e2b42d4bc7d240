"""`Device`: what one backend (cuda, npu, cpu) can do, one short method per capability.

Import-safe: importing this module imports neither torch nor torch_npu. Methods that need
torch import it when called; only the NPU class imports torch_npu, and only when asked.

Capabilities that are plain data (kind, visible-devices variable, streams, precision policy)
are class attributes, so a torch-free caller (the planner, `provision`) can read them from
the class without building anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch

_DTYPE_ALIASES = {
    "bf16": "bfloat16",
    "fp16": "float16",
    "half": "float16",
    "fp32": "float32",
    "float": "float32",
    "fp64": "float64",
    "double": "float64",
}


def dtype_name(dtype: Any) -> str:
    """'bfloat16' for torch.bfloat16, 'bfloat16', 'bf16'; the spelling every policy table uses."""
    name = dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
    return _DTYPE_ALIASES.get(name.lower(), name.lower())


def to_torch_dtype(dtype: Any) -> torch.dtype:
    import torch

    name = dtype_name(dtype)
    found = getattr(torch, name, None)
    if not isinstance(found, torch.dtype):
        raise ValueError(f"dtype {dtype!r} is not a torch dtype; use e.g. 'bfloat16', 'float16', 'float32'")
    return found


def choose_dtype(
    kind: str, *, compute_capability: tuple[int, int] | None = None, bf16_supported: bool | None = None
) -> str:
    """The compute dtype a backend should run diffusion in: a pure decision, testable without hardware.

    cuda: bfloat16 from compute capability 8.0 (Ampere) on, float16 before it (bf16 would be emulated).
    npu: bfloat16 where torch.npu.is_bf16_supported() (910B), else float16 (310P). cpu: float32.
    """
    if kind == "cpu":
        return "float32"
    if kind == "cuda":
        if compute_capability is None:
            raise ValueError("choose_dtype('cuda') needs compute_capability, e.g. (8, 0)")
        return "bfloat16" if tuple(compute_capability) >= (8, 0) else "float16"
    if kind == "npu":
        return "bfloat16" if bf16_supported else "float16"
    raise ValueError(f"kind {kind!r} is not one of 'cuda', 'npu', 'cpu'")


class DeviceUnavailableError(RuntimeError):
    """The requested backend is not usable in this process; the message says how to fix it."""


@dataclass(frozen=True)
class PrecisionPolicy:
    """What the compute device accepts; code that builds high-precision or complex tensors reads it."""

    allow_float64: bool
    allow_complex: bool
    autocast_dtypes: tuple[torch.dtype, ...]
    high_precision_dtype: torch.dtype  # float64 where allowed, else float32 (RoPE tables, sampler maths)


class Device:
    """One backend. Subclasses fill in the class attributes and the few torch calls that differ."""

    kind: ClassVar[str]
    visible_devices_env: ClassVar[str | None] = None
    # diffusers' group offloading `use_stream=True` (and record_stream) is CUDA-only.
    supports_streams: ClassVar[bool] = False
    # Complex-valued steps (STFT, mel spectrograms) run on the host CPU, not the compute device.
    complex_on_cpu: ClassVar[bool] = False
    allow_float64: ClassVar[bool] = True
    allow_complex: ClassVar[bool] = True
    autocast_dtype_names: ClassVar[tuple[str, ...]] = ("float16", "bfloat16")
    # Substrings of RuntimeError messages that mean "out of memory" on this backend.
    oom_markers: ClassVar[tuple[str, ...]] = ()
    # The diffusers attention backend for transformers (None: diffusers' default), and whether UNets,
    # whose attention processors ignore backends, get `enable_npu_flash_attention()`.
    attention_backend_name: ClassVar[str | None] = None
    unet_flash_attention: ClassVar[bool] = False

    # The torch.distributed backend one job's cards talk over (i2v.parallel), and the diffusers attention
    # backend whose forward returns the log-sum-exp ring attention needs (None: no ring here).
    dist_backend: ClassVar[str] = "gloo"
    ring_attention_backend: ClassVar[str | None] = None

    def __init__(self, index: int = 0):
        # Which of the visible devices this process computes on: 0, or its rank within a card group
        # (a group sees all its cards: NCCL's IPC between ranks needs them visible to each process).
        self.index = index

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.index})" if self.index else f"{type(self).__name__}()"

    def at(self, index: int | None) -> int:
        """`index`, or this device's own when None."""
        return self.index if index is None else index

    # -- identity ---------------------------------------------------------------------------
    def torch_device(self, index: int | None = None) -> torch.device:
        import torch

        return torch.device(self.kind, self.at(index))

    def is_available(self) -> bool:
        raise NotImplementedError

    def device_count(self) -> int:
        raise NotImplementedError

    # -- dtypes -----------------------------------------------------------------------------
    def preferred_dtype(self) -> torch.dtype:
        return to_torch_dtype(self.preferred_dtype_name())

    def preferred_dtype_name(self) -> str:
        raise NotImplementedError

    def unsupported_dtype_reason(self, dtype: Any) -> str | None:
        """None when `dtype` works here, else a sentence saying why not and what to use instead."""
        name = dtype_name(dtype)
        if name == "float64" and not self.allow_float64:
            return f"float64 is not supported on {self.kind}; use float32"
        if name.startswith("complex") and not self.allow_complex:
            return f"{name} is not supported on {self.kind}; run complex steps on the CPU"
        return None

    def supports_dtype(self, dtype: Any) -> bool:
        return self.unsupported_dtype_reason(dtype) is None

    def check_dtype(self, dtype: Any) -> None:
        reason = self.unsupported_dtype_reason(dtype)
        if reason is not None:
            raise ValueError(reason)

    # -- precision policy -------------------------------------------------------------------
    @property
    def high_precision_dtype(self) -> torch.dtype:
        return to_torch_dtype("float64" if self.allow_float64 else "float32")

    @property
    def autocast_dtypes(self) -> tuple[torch.dtype, ...]:
        return tuple(to_torch_dtype(n) for n in self.autocast_dtype_names)

    @property
    def policy(self) -> PrecisionPolicy:
        return PrecisionPolicy(
            allow_float64=self.allow_float64,
            allow_complex=self.allow_complex,
            autocast_dtypes=self.autocast_dtypes,
            high_precision_dtype=self.high_precision_dtype,
        )

    def run_complex_step(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a complex-valued step (STFT, mel spectrogram) where this device can run it.

        Where `complex_on_cpu` (NPU), tensor arguments are copied to the CPU, `fn` runs there inside
        `guard.host_ops()`, and real-valued tensor results come back to the arguments' device
        (complex results stay on the CPU: the NPU cannot hold them). Tensors that `fn` owns, such
        as a MelSpectrogram's window and filter bank, must already live on the CPU.
        """
        if not self.complex_on_cpu:
            return fn(*args, **kwargs)
        import torch
        from torch.utils._pytree import tree_leaves, tree_map

        from .guard import host_ops

        origin = next((t.device for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)), None)
        on_cpu = lambda x: x.cpu() if isinstance(x, torch.Tensor) else x  # noqa: E731
        with host_ops():
            out = fn(*tree_map(on_cpu, args), **tree_map(on_cpu, kwargs))
        if origin is None or origin.type == "cpu":
            return out
        back = lambda x: x.to(origin) if isinstance(x, torch.Tensor) and not x.is_complex() else x  # noqa: E731
        return tree_map(back, out)

    # -- memory -----------------------------------------------------------------------------
    def mem_get_info(self, index: int | None = None) -> tuple[int, int]:
        """(free_bytes, total_bytes) of the device's memory."""
        raise NotImplementedError

    def max_memory_allocated(self, index: int | None = None) -> int:
        raise NotImplementedError

    def reset_peak_memory_stats(self, index: int | None = None) -> None:
        raise NotImplementedError

    def synchronize(self, index: int | None = None) -> None:
        raise NotImplementedError

    def empty_cache(self) -> None:
        raise NotImplementedError

    def is_oom(self, exc: BaseException) -> bool:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
        return isinstance(exc, RuntimeError) and any(m in str(exc) for m in self.oom_markers)

    # -- attention --------------------------------------------------------------------------
    def attention_backend(self) -> str | None:
        """The diffusers attention backend transformers get here (`set_attention_backend`), or None for
        diffusers' default. Which families take a backend is the family adapter's business."""
        return self.attention_backend_name

    def attention_backends(self) -> tuple[str, ...]:
        """Optional diffusers attention backends installed for this device (the planner picks one)."""
        return ()


def read_meminfo(path: str = "/proc/meminfo") -> tuple[int, int]:
    """(MemAvailable, MemTotal) in bytes from /proc/meminfo; sysconf where there is none."""
    try:
        with open(path, encoding="ascii") as fh:
            return parse_meminfo(fh.read())
    except (OSError, KeyError):
        page = os.sysconf("SC_PAGE_SIZE")
        return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page


def parse_meminfo(text: str) -> tuple[int, int]:
    fields: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[key.strip()] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    return fields["MemAvailable"], fields["MemTotal"]
