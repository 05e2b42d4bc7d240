"""Start one `i2v worker` process per device slot, restart the ones that die, drain them on exit.

Torch-free: the device kind and ids come from the settings or the torch-free host probe, and each
child gets the backend's visible-devices variable (`CUDA_VISIBLE_DEVICES`, `ASCEND_RT_VISIBLE_DEVICES`)
so it sees exactly its device. Children run in their own session (a terminal's Ctrl-C reaches only
`i2v serve`, which then drains them in order) and ask the kernel to SIGTERM them if the supervisor
dies, so none outlives it.

All spawning and reaping happens on one monitor thread. A child that exits unexpectedly has its
running job requeued at once (attempt + 1; no need to wait for the lease) and is restarted after
a backoff that doubles with each quick death (1 s .. 30 s).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("i2v.supervisor")
KILL_MARGIN_S = 10.0


@dataclass(frozen=True)
class Slot:
    name: str  # "cpu", "cuda:0", "npu:3" (+ "#k" with several workers per device)
    env: dict[str, str]


def worker_slots(settings: Any) -> list[Slot]:
    from i2v.devices import CudaDevice, NpuDevice

    kind = settings.device
    report = None
    if kind == "auto" or kind in ("cuda", "npu"):
        from i2v.hardware import probe

        report = probe(with_docker=False)
        if kind == "auto":
            kind = {"nvidia": "cuda", "ascend": "npu"}.get(report.vendor, "cpu")
    per = settings.workers_per_device
    if kind == "cpu":
        return [Slot("cpu" if per == 1 else f"cpu#{k}", {"I2V_DEVICE": "cpu"}) for k in range(per)]
    variable = {"cuda": CudaDevice, "npu": NpuDevice}[kind].visible_devices_env
    seen = [d.index for d in report.devices] if report else []
    wanted = [int(i) for i in settings.visible_devices.split(",") if i] or seen
    if not wanted:
        raise RuntimeError(
            f"I2V_DEVICE={kind} but the host probe found no {kind} device; check the driver "
            f"(`provision doctor`) or set I2V_DEVICE=cpu"
        )
    slots = []
    for position, device_id in enumerate(wanted):
        # Host ids as given when this process sees them; inside a container that was handed only
        # these devices they are renumbered 0..n-1, so map by position.
        logical = device_id if device_id in seen or len(seen) != len(wanted) else seen[position]
        for k in range(per):
            name = f"{kind}:{device_id}" + (f"#{k}" if per > 1 else "")
            slots.append(Slot(name, {"I2V_DEVICE": kind, variable: str(logical)}))  # type: ignore[dict-item]
    return slots


@dataclass
class _Child:
    slot: Slot
    worker_id: str = ""
    process: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0
    restart_at: float = 0.0
    history: list[float] = field(default_factory=list)


class Supervisor:
    def __init__(self, settings: Any, store: Any, slots: list[Slot], command: list[str] | None = None):
        self.settings, self.store = settings, store
        self.command = command or [sys.executable, "-m", "i2v", "worker"]
        self.children = [_Child(slot) for slot in slots]
        self.restarts = 0
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._monitor, name="supervisor", daemon=True)
        self._drain_grace: float | None = None

    def start(self) -> None:
        self._thread.start()

    def pids(self) -> list[int]:
        with self._lock:
            return [c.process.pid for c in self.children if c.process and c.process.poll() is None]

    def _spawn(self, child: _Child) -> None:
        child.worker_id = f"{socket.gethostname()}-{child.slot.name}-{uuid.uuid4().hex[:8]}"
        env = os.environ | child.slot.env
        child.process = subprocess.Popen(
            [*self.command, "--worker-id", child.worker_id, "--slot", child.slot.name],
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        child.started = time.monotonic()
        log.info("started worker %s (pid %d) on %s", child.worker_id, child.process.pid, child.slot.name)

    def _monitor(self) -> None:
        last_reap = 0.0
        try:
            with self._lock:
                for child in self.children:
                    self._spawn(child)
            while not self._stop.wait(0.25):
                now = time.monotonic()
                with self._lock:
                    for child in self.children:
                        self._watch(child, now)
                if now - last_reap > self.settings.lease_s / 2:
                    last_reap = now
                    self._reap()
            self._shutdown()
        finally:
            self._stopped.set()

    def _watch(self, child: _Child, now: float) -> None:
        process = child.process
        if process is not None and process.poll() is not None:
            log.warning(
                "worker %s (pid %d) exited with %s; requeueing its job",
                child.worker_id,
                process.pid,
                process.returncode,
            )
            self._forget(child, count_attempt=True)
            child.history = [t for t in child.history if now - t < 300] + [now]
            delay = min(30.0, 2.0 ** (len(child.history) - 1))
            child.restart_at = now + delay
            child.process = None
        if child.process is None and now >= child.restart_at:
            self.restarts += 1
            self._spawn(child)

    def _forget(self, child: _Child, count_attempt: bool) -> None:
        """The child is gone: its running job goes back to the queue and its row says so."""
        self._reap(child.worker_id, count_attempt=count_attempt)
        self._safely(self.store.set_worker, child.worker_id, state="gone", job_id=None)

    def _reap(self, worker_id: str | None = None, count_attempt: bool = True) -> None:
        """Requeue the jobs of lost workers; remove the uploads of those that ended there."""
        from i2v.jobs.paths import remove_uploads

        ended = self._safely(self.store.requeue_lost, worker_id, count_attempt=count_attempt)
        self._safely(remove_uploads, self.settings.outputs_path(), ended)

    def _safely(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the monitor must outlive a busy database
            log.warning("supervisor: %s failed: %s", getattr(fn, "__name__", fn), exc)
            return None

    def drain(self, grace_s: float) -> None:
        """Stop restarting; SIGTERM every worker (each finishes its job within `grace_s` or hands it
        back); SIGKILL whatever is left after the grace and a margin; return when all are gone."""
        self._drain_grace = grace_s
        self._stop.set()
        if self._thread.is_alive():
            self._stopped.wait()
        else:
            self._shutdown()

    def _shutdown(self) -> None:
        grace = self._drain_grace if self._drain_grace is not None else self.settings.drain_grace_s
        with self._lock:
            live = [c for c in self.children if c.process and c.process.poll() is None]
            for child in live:
                child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace + KILL_MARGIN_S
            for child in live:
                try:
                    child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("worker %s did not stop within the grace period; killing it", child.worker_id)
                    child.process.kill()
                    child.process.wait()
                    self._forget(child, count_attempt=False)
                    continue
                self._safely(self.store.set_worker, child.worker_id, state="gone", job_id=None)
            for child in self.children:
                child.process = None
