"""`StorageTracker`: live tensor storage, and its peak per phase, over every op one run dispatches.

A `TorchDispatchMode` that sees each aten op after autograd and the composite decompositions (what a
device allocator is asked for), records every storage an op returns the first time it appears, and
forgets it when the storage is freed (a `weakref.finalize` on the storage object, which torch keeps
alive exactly as long as the storage). Views share their base's storage and in-place ops return
their input, so neither counts twice. The peak is the largest sum of live storage bytes seen while a
phase was current: what `max_memory_allocated` reports on a GPU, less the allocator's rounding and
the kernels' own workspaces (which fake tensors cannot see; `i2v.catalogue` keeps those factors).

Phases nest: `with tracker.phase("decode"):` makes "decode" current until the block ends. Ops are
counted per phase, and per call of a wrapped method (`calls`), so one denoiser forward's op count and
CPU time can be read off.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

MIB = 1024 * 1024


@dataclass
class PhaseStats:
    """What one phase did: its peak of live bytes, the ops it dispatched, its wall time."""

    peak_bytes: int = 0
    ops: int = 0
    seconds: float = 0.0
    calls: int = 0  # times the phase was entered (one per denoiser forward for "denoise")

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / MIB


class StorageTracker(TorchDispatchMode):
    """Counts live storage bytes; `phase()` attributes the peak and the ops to a named phase."""

    def __init__(self) -> None:
        super().__init__()
        self.live_bytes = 0
        self.current = "other"
        self.phases: dict[str, PhaseStats] = {}
        self.op_names: dict[str, int] = {}
        self._sizes: dict[int, int] = {}

    def stats(self, name: str) -> PhaseStats:
        return self.phases.setdefault(name, PhaseStats())

    def adopt(self, tensors: Any) -> None:
        """Count tensors made before the tracker was active (the weights) as live."""
        for leaf in tree_leaves(tensors):
            if isinstance(leaf, torch.Tensor):
                self._remember(leaf)
        self._note_peak()

    @contextmanager
    def phase(self, name: str) -> Iterator[PhaseStats]:
        previous, self.current = self.current, name
        stats = self.stats(name)
        stats.calls += 1
        started = time.perf_counter()
        try:
            self._note_peak()
            yield stats
        finally:
            stats.seconds += time.perf_counter() - started
            self.current = previous

    def wrap(self, owner: Any, method: str, name: str) -> None:
        """Make every call of ``owner.method`` run in phase ``name`` (an instance attribute, undone by
        deleting it)."""
        original: Callable[..., Any] = getattr(owner, method)

        def in_phase(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return original(*args, **kwargs)

        object.__setattr__(owner, method, in_phase)

    # --- the mode -------------------------------------------------------------------------------

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
        out = func(*args, **(kwargs or {}))
        stats = self.stats(self.current)
        stats.ops += 1
        name = func.__name__
        self.op_names[name] = self.op_names.get(name, 0) + 1
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._remember(leaf)
        self._note_peak()
        return out

    def _remember(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._sizes:
            return
        size = storage.nbytes()
        self._sizes[key] = size
        self.live_bytes += size
        weakref.finalize(storage, self._forget, key)

    def _forget(self, key: int) -> None:
        self.live_bytes -= self._sizes.pop(key, 0)

    def _note_peak(self) -> None:
        stats = self.stats(self.current)
        if self.live_bytes > stats.peak_bytes:
            stats.peak_bytes = self.live_bytes


__all__ = ["MIB", "PhaseStats", "StorageTracker"]
