"""A small fake of the `torch.cuda` functions `CudaDevice` calls, so its code and `i2v.apply`'s CUDA
branches run on a machine without a GPU (CPU CI, laptops); the counterpart of fake_torch_npu.py.

`install(monkeypatch)` replaces exactly those functions on `torch.cuda` for one test (monkeypatch
undoes it) and records each call in `FakeCuda.calls`. It answers like one idle H100 80GB HBM3: 81559
MiB total and 81106 free (the h100x8 fixture's `nvidia-smi -q`), compute capability 9.0.

What it does not fake: tensors on a CUDA device, which a CPU build of torch cannot hold. The device
the tests hand to `i2v.apply` is `FakeCudaDevice`: the real `CudaDevice` (its class attributes, the
branches they select: streams, bf16, attention packages) whose `torch_device()` is the CPU, where the
maths runs, as fake_torch_npu's COMPUTE_DEVICE. Nothing here returns a result of the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from i2v.devices.cuda import CudaDevice

MIB = 1024 * 1024
TOTAL_BYTES = 81559 * MIB
FREE_BYTES = 81106 * MIB
NAME = "NVIDIA H100 80GB HBM3"
CAPABILITY = (9, 0)


@dataclass
class FakeCuda:
    calls: list[str] = field(default_factory=list)
    peak_bytes: int = 0

    def _record(self, name: str, value: object = None):
        def fn(*args: object, **kwargs: object) -> object:
            self.calls.append(name)
            return value() if callable(value) else value

        return fn


def install(monkeypatch) -> FakeCuda:
    fake = FakeCuda()
    answers = {
        "is_available": True,
        "device_count": 1,
        "get_device_capability": CAPABILITY,
        "get_device_name": NAME,
        "mem_get_info": (FREE_BYTES, TOTAL_BYTES),
        "max_memory_allocated": lambda: fake.peak_bytes,
        "reset_peak_memory_stats": None,
        "synchronize": None,
        "empty_cache": None,
    }
    for name, value in answers.items():
        monkeypatch.setattr(torch.cuda, name, fake._record(name, value))
    return fake


class FakeCudaDevice(CudaDevice):
    """`CudaDevice` computing on the CPU (see the module docstring)."""

    def torch_device(self, index: int = 0) -> torch.device:
        return torch.device("cpu")
