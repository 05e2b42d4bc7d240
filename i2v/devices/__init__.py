"""One `Device` per backend (cuda, npu, cpu), chosen once by `select_device`.

Import-safe: importing this package imports neither torch nor torch_npu and never initialises an
accelerator; torch is imported when a device method first needs it, torch_npu only by the NPU
class. The dtype guard (`i2v.devices.guard`) imports torch and is imported explicitly.
"""

from __future__ import annotations

import os
from functools import cache

from .base import Device, DeviceUnavailableError, PrecisionPolicy, choose_dtype, dtype_name, parse_meminfo
from .cpu import CpuDevice
from .cuda import CudaDevice
from .npu import NpuDevice, torch_npu_installed

__all__ = [
    "DEVICE_NAMES",
    "CpuDevice",
    "CudaDevice",
    "Device",
    "DeviceUnavailableError",
    "NpuDevice",
    "PrecisionPolicy",
    "choose_dtype",
    "detect_kind",
    "dtype_name",
    "parse_meminfo",
    "select_device",
]

DEVICE_NAMES = ("auto", "npu", "cuda", "cpu")
_CLASSES: dict[str, type[Device]] = {"npu": NpuDevice, "cuda": CudaDevice, "cpu": CpuDevice}


def detect_kind() -> str:
    """'npu' if torch_npu sees an NPU, else 'cuda' if torch sees a GPU, else 'cpu'.

    An installed torch_npu that fails to import (CANN's set_env.sh not sourced) raises rather than
    falling back: on an Atlas host a silent CPU fallback would be a 100x slowdown, not a choice.
    """
    if torch_npu_installed() and NpuDevice().is_available():
        return "npu"
    if CudaDevice().is_available():
        return "cuda"
    return "cpu"


@cache
def select_device(name: str | None = None) -> Device:
    """The device this process runs on: `name`, else $I2V_DEVICE, else "auto" (npu > cuda > cpu).

    Cached: the choice is made once per process (call `select_device.cache_clear()` in tests).
    """
    requested = (name if name is not None else os.environ.get("I2V_DEVICE", "auto")).strip().lower() or "auto"
    if requested not in DEVICE_NAMES:
        source = "name" if name is not None else "I2V_DEVICE"
        raise ValueError(f"{source}={requested!r} is not a device; use one of {', '.join(DEVICE_NAMES)}")
    kind = detect_kind() if requested == "auto" else requested
    device = _CLASSES[kind]()
    if requested != "auto":
        _require_available(device)
    return device


def _require_available(device: Device) -> None:
    if device.kind == "npu" and not torch_npu_installed():
        raise DeviceUnavailableError(
            "I2V_DEVICE=npu but torch_npu is not installed: install the torch_npu build matching torch and "
            "CANN (see ARCHITECTURE.md), source /usr/local/Ascend/ascend-toolkit/set_env.sh, "
            "or set I2V_DEVICE=auto"
        )
    if not device.is_available():
        import torch

        if torch.version.cuda is None:
            cuda_hint = f"torch {torch.__version__} is a build without CUDA (install a CUDA wheel)"
        else:
            cuda_hint = (
                f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU: check nvidia-smi "
                f"and CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}"
            )
        hint = {
            "cuda": cuda_hint,
            "npu": f"torch_npu sees no NPU (check npu-smi info and "
            f"ASCEND_RT_VISIBLE_DEVICES={os.environ.get('ASCEND_RT_VISIBLE_DEVICES', '<unset>')!s})",
        }.get(device.kind, "it is not available")
        raise DeviceUnavailableError(f"I2V_DEVICE={device.kind} but {hint}; set I2V_DEVICE=auto or cpu")
