"""Per-step progress: step, total, seconds per step, ETA; device memory logged every N steps."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger("i2v.progress")


@dataclass(frozen=True)
class Progress:
    stage: str  # "loading" | "denoising" | "decoding" | "encoding" | "done"
    step: int
    total: int
    seconds_per_step: float | None
    eta_s: float | None
    memory_mib: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressFn = Callable[[Progress], None]


class StepTracker:
    """Counts denoising steps; installed as diffusers' `callback_on_step_end` or around
    `scheduler.step` for pipelines without the callback (I2VGen-XL)."""

    def __init__(
        self, total: int, report: ProgressFn | None, memory_mib: Callable[[], int | None], log_every: int = 10
    ):
        self.total, self.report, self.memory_mib, self.log_every = total, report, memory_mib, log_every
        self.step = 0
        self.started = time.perf_counter()

    def tick(self) -> None:
        self.step += 1
        elapsed = time.perf_counter() - self.started
        per_step = elapsed / self.step
        memory = None
        if self.step % self.log_every == 0 or self.step == self.total:
            memory = self.memory_mib()
            log.info("step %d/%d %.2f s/step, device memory %s MiB", self.step, self.total, per_step, memory)
        if self.report:
            self.report(
                Progress(
                    "denoising",
                    self.step,
                    self.total,
                    per_step,
                    per_step * max(self.total - self.step, 0),
                    memory,
                )
            )

    def callback(self, pipe: Any, step: int, timestep: Any, kwargs: dict) -> dict:
        self.tick()
        return kwargs

    def wrap_scheduler(self, scheduler: Any) -> Callable[[], None]:
        """Count `scheduler.step` calls; returns a function that restores the scheduler."""
        original = scheduler.step

        def step(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            self.tick()
            return out

        scheduler.step = step

        def restore() -> None:
            del scheduler.step  # the instance attribute shadowed the class method

        return restore
