"""`NpuDtypeGuard`: fail fast on float64 / complex tensors on the compute device.

Ascend kernels have no float64 and no complex64 on most ops, and torch_npu's own errors come
late and cryptic (an AclNN error far from the Python line that asked for float64). Under this
guard every op's results are checked as it runs, and the first float64 or complex tensor on the
compute device raises `UnsupportedOnNpuError` naming the op, the dtype and the Python lines that
asked for it. Use it in tests (the NPU policy simulated on CPU: `device_type="cpu"`) and, if
wanted, on a real NPU (`device_type="npu"`, the default).

Host steps. The NPU policy runs complex steps (STFT, mel spectrograms) on the CPU on purpose.
On a real NPU that needs no exemption: the guard only looks at tensors on `device_type`, and the
host's tensors are on "cpu". When the policy is simulated on CPU, compute and host are the same
device, so the policy marks its host sections explicitly with `host_ops()` (what
`Device.run_complex_step` does); inside one, results on "cpu" are exempt, and results on any
other device are still checked. The marker is a context variable, not a guard attribute, so
library code can mark host sections without a reference to whichever guard is active.
For the same reason `lift_fresh` is exempt: it wraps Python/numpy data (`torch.tensor(...)`,
`torch.from_numpy(...)`) and always yields a host tensor, so on a real NPU such a float64 tensor
is on the CPU until something moves it, and that move (`.to(device)`) is what gets checked.

Imports torch (it subclasses TorchDispatchMode); `i2v.devices` does not import this module.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import traceback
from collections.abc import Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

_IN_HOST_SECTION = contextvars.ContextVar("i2v_in_host_section", default=False)
_TORCH_DIR = os.path.dirname(torch.__file__)
_THIS_FILE = os.path.abspath(__file__)
COMPLEX_DTYPES = frozenset({torch.complex32, torch.complex64, torch.complex128})
# Ops that only ever produce host tensors from Python/numpy data (see the module docstring).
_HOST_ONLY_OPS = frozenset({"aten.lift_fresh.default", "aten.lift_fresh_copy.default", "aten.lift.default"})


class UnsupportedOnNpuError(RuntimeError):
    """An op produced a dtype the NPU cannot hold. Carries the op, dtype and where it was asked for."""

    def __init__(self, op: str, dtype: torch.dtype, device_type: str, where: str) -> None:
        self.op, self.dtype, self.device_type, self.where = op, dtype, device_type, where
        fix = (
            "build it in float32 (Device.high_precision_dtype) or switch the model's float64 option off"
            if dtype == torch.float64
            else "run this step on the CPU (Device.run_complex_step)"
        )
        super().__init__(
            f"{op} produced a {dtype} tensor on {device_type!r}; the NPU has no {dtype} "
            f"kernels: {fix}. Called from: {where}"
        )


@contextlib.contextmanager
def host_ops() -> Iterator[None]:
    """Mark a section that the policy deliberately runs on the host CPU (complex or float64 maths)."""
    token = _IN_HOST_SECTION.set(True)
    try:
        yield
    finally:
        _IN_HOST_SECTION.reset(token)


def _caller_hint(limit: int = 3) -> str:
    """The innermost Python frames outside torch and this module, innermost first."""
    frames = [
        f
        for f in traceback.extract_stack()
        if not f.filename.startswith(_TORCH_DIR) and os.path.abspath(f.filename) != _THIS_FILE
    ]
    picked = frames[-limit:][::-1]
    return " <- ".join(f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}" for f in picked) or "?"


class NpuDtypeGuard(TorchDispatchMode):
    """Raise on any op whose result is float64 or complex on `device_type`.

    >>> with NpuDtypeGuard(device_type="cpu"):   # NPU policy simulated on CPU
    ...     torch.ones(2, dtype=torch.float32)    # fine
    """

    def __init__(
        self, device_type: str = "npu", *, forbid_float64: bool = True, forbid_complex: bool = True
    ) -> None:
        super().__init__()
        self.device_type = device_type
        forbidden: set[torch.dtype] = set()
        if forbid_float64:
            forbidden.add(torch.float64)
        if forbid_complex:
            forbidden |= COMPLEX_DTYPES
        self.forbidden = frozenset(forbidden)

    @staticmethod
    def allow_host_ops() -> contextlib.AbstractContextManager[None]:
        """Same as the module-level `host_ops()`; here for callers that hold the guard."""
        return host_ops()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if str(func) in _HOST_ONLY_OPS:
            return out
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and self._forbidden_here(tensor):
                raise UnsupportedOnNpuError(str(func), tensor.dtype, self.device_type, _caller_hint())
        return out

    def _forbidden_here(self, tensor: torch.Tensor) -> bool:
        if tensor.dtype not in self.forbidden or tensor.device.type != self.device_type:
            return False
        return not (_IN_HOST_SECTION.get() and tensor.device.type == "cpu")
