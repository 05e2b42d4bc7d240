"""The run in progress, as seen by the patches in compat.py: its device and its progress ticker.

Torch-free. The patched package functions are process-wide (they replace module attributes once),
so what they do for *this* run comes from a context variable that `run_scope` sets around one
pipeline call. Outside a scope every patch behaves exactly like the unpatched 1.0.0 code.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from i2v.devices import Device

ProgressFn = Callable[[int, int], None]  # (steps done, total steps), once per denoising step


@dataclass
class StepTicker:
    """Counts denoising steps across all stages of one run and reports each to `callback`."""

    total: int
    callback: ProgressFn | None = None
    done: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tick(self) -> None:
        with self._lock:
            self.done += 1
            done = self.done
        if self.callback is not None:
            self.callback(done, self.total)


@dataclass(frozen=True)
class RunScope:
    device: Device  # the policy and the synchronize/empty_cache calls of this run
    ticker: StepTicker | None


_ACTIVE: contextvars.ContextVar[RunScope | None] = contextvars.ContextVar("ltx2_official_run", default=None)


def active() -> RunScope | None:
    """The run in progress in this context, or None (then patches fall back to the package's code)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def run_scope(device: Device, ticker: StepTicker | None = None) -> Iterator[RunScope]:
    scope = RunScope(device=device, ticker=ticker)
    token = _ACTIVE.set(scope)
    try:
        yield scope
    finally:
        _ACTIVE.reset(token)
