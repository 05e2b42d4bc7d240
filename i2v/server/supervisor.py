"""Start one `i2v worker` per device slot, restart the ones that die, drain them on exit.

Torch-free: the device kind and ids come from the settings or the torch-free host probe, and each
child gets the backend's visible-devices variable (`CUDA_VISIBLE_DEVICES`, `ASCEND_RT_VISIBLE_DEVICES`)
so it sees exactly its device(s). Children run in their own session (a terminal's Ctrl-C reaches only
`i2v serve`, which then drains them in order) and ask the kernel to signal them if the supervisor
dies, so none outlives it.

With I2V_CARDS_PER_JOB above 1 a slot is a card group: consecutive cards run one job together
(i2v.parallel), as `i2v worker` (rank 0: the store, the results) plus `python -m i2v.parallel.follower`
for the other ranks, all seeing the group's cards. The group lives and dies as one: when any of its
processes exits, the others are killed, the group's running job is requeued and the whole group is
restarted; other slots keep serving.

All spawning and reaping happens on one monitor thread. A child that exits unexpectedly has its
running job requeued at once (attempt + 1; no need to wait for the lease) and is restarted after
a backoff that doubles with each quick death (1 s .. 30 s).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from i2v.parallel.layout import Layout

log = logging.getLogger("i2v.supervisor")
KILL_MARGIN_S = 10.0


@dataclass(frozen=True)
class Slot:
    name: str  # "cpu", "cuda:0", "npu:3" (+ "#k" with several workers per device); "cuda:0+1+2+3" a group
    env: dict[str, str]
    layout: Layout = Layout(1)  # the cards of the group (one process each)


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
        layout = _layout(settings, "cpu", 1, ring=False)
        suffix = f"x{layout.cards}" if layout.cards > 1 else ""
        return [
            Slot(("cpu" if per == 1 else f"cpu#{k}") + suffix, {"I2V_DEVICE": "cpu"}, layout)
            for k in range(per)
        ]
    device_cls = {"cuda": CudaDevice, "npu": NpuDevice}[kind]
    variable = device_cls.visible_devices_env
    seen = [d.index for d in report.devices] if report else []
    wanted = [int(i) for i in settings.visible_devices.split(",") if i] or seen
    if not wanted:
        raise RuntimeError(
            f"I2V_DEVICE={kind} but the host probe found no {kind} device; check the driver "
            f"(`provision doctor`) or set I2V_DEVICE=cpu"
        )
    # Host ids as given when this process sees them; inside a container that was handed only these
    # devices they are renumbered 0..n-1, so map by position.
    logical = {
        device_id: device_id if device_id in seen or len(seen) != len(wanted) else seen[position]
        for position, device_id in enumerate(wanted)
    }
    layout = _layout(settings, kind, len(wanted), ring=device_cls.ring_attention_backend is not None)
    if layout.cards > 1 and per > 1:
        raise ValueError(
            f"I2V_WORKERS_PER_DEVICE={per} with I2V_CARDS_PER_JOB={layout.cards}: a card group has one "
            "process per card; set one of them to 1"
        )
    slots = []
    groups = len(wanted) // layout.cards
    for g in range(groups):
        ids = wanted[g * layout.cards : (g + 1) * layout.cards]
        env = {"I2V_DEVICE": kind, variable: ",".join(str(logical[i]) for i in ids)}  # type: ignore[dict-item]
        if layout.cards > 1:
            slots.append(Slot(f"{kind}:" + "+".join(map(str, ids)), env, layout))
            continue
        for k in range(per):
            slots.append(Slot(f"{kind}:{ids[0]}" + (f"#{k}" if per > 1 else ""), env))
    for device_id in wanted[groups * layout.cards :]:  # cards left over serve a job each
        log.warning(
            "%s:%d is not part of a %d-card group; it runs one-card jobs", kind, device_id, layout.cards
        )
        slots.append(Slot(f"{kind}:{device_id}", {"I2V_DEVICE": kind, variable: str(logical[device_id])}))  # type: ignore[dict-item]
    return slots


def _layout(settings: Any, kind: str, available: int, *, ring: bool) -> Layout:
    """One job's cards under I2V_CARDS_PER_JOB for the served model (auto: its standard preset)."""
    from i2v import catalogue
    from i2v.parallel import cards_for, layout_for
    from i2v.request import resolve

    spec = catalogue.get(settings.model)
    request = resolve(spec, settings.preset)
    cards = cards_for(
        settings.cards_per_job, spec, request, kind=kind, available=available, ring_available=ring
    )
    return layout_for(spec, cards, ring_available=ring)


@dataclass
class _Child:
    """One slot's processes: the worker (rank 0) first, then a card group's other ranks."""

    slot: Slot
    worker_id: str = ""
    processes: list[subprocess.Popen] = field(default_factory=list)
    started: float = 0.0
    failures: int = 0
    restart_at: float = 0.0
    history: list[float] = field(default_factory=list)

    @property
    def process(self) -> subprocess.Popen | None:
        return self.processes[0] if self.processes else None

    def exited(self) -> subprocess.Popen | None:
        return next((p for p in self.processes if p.poll() is not None), None)


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
            return [p.pid for c in self.children for p in c.processes if p.poll() is None]

    def _spawn(self, child: _Child) -> None:
        from i2v.parallel.group import Rendezvous, free_port, strip_env

        child.worker_id = f"{self.settings.host_name()}-{child.slot.name}-{uuid.uuid4().hex[:8]}"
        env = strip_env(dict(os.environ)) | child.slot.env
        layout = child.slot.layout
        rendezvous = None
        if layout.cards > 1:
            rendezvous = Rendezvous(
                0, layout.cards, "127.0.0.1", free_port(), layout, self.settings.collective_timeout_s
            )
        commands = [[*self.command, "--worker-id", child.worker_id, "--slot", child.slot.name]]
        commands += [[sys.executable, "-m", "i2v.parallel.follower"]] * (layout.cards - 1)
        child.processes = []
        for rank, command in enumerate(commands):
            rank_env = env | (replace(rendezvous, rank=rank).env() if rendezvous else {})
            child.processes.append(
                subprocess.Popen(command, env=rank_env, start_new_session=True, stdin=subprocess.DEVNULL)
            )
        child.started = time.monotonic()
        log.info(
            "started worker %s (pid %s) on %s",
            child.worker_id,
            ", ".join(str(p.pid) for p in child.processes),
            child.slot.name,
        )

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
        process = child.exited() if child.processes else None
        if process is not None:
            what = "worker" if process is child.process else "a card of worker"
            log.warning(
                "%s %s (pid %d) exited with %s; requeueing its job",
                what,
                child.worker_id,
                process.pid,
                process.returncode,
            )
            self._kill_rest(child)
            self._forget(child, count_attempt=True)
            child.history = [t for t in child.history if now - t < 300] + [now]
            delay = min(30.0, 2.0 ** (len(child.history) - 1))
            child.restart_at = now + delay
            child.processes = []
        if not child.processes and now >= child.restart_at:
            self.restarts += 1
            self._spawn(child)

    def _kill_rest(self, child: _Child) -> None:
        """A group lives and dies as one: its other processes wait in collectives for the one that left."""
        for process in child.processes:
            if process.poll() is None:
                process.kill()
        for process in child.processes:
            process.wait()

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
                # Only rank 0: it drains and then tells its group's other cards to stop.
                child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace + KILL_MARGIN_S
            for child in live:
                try:
                    for process in child.processes:
                        process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("worker %s did not stop within the grace period; killing it", child.worker_id)
                    self._kill_rest(child)
                    self._forget(child, count_attempt=False)
                    continue
                self._safely(self.store.set_worker, child.worker_id, state="gone", job_id=None)
            for child in self.children:
                self._kill_rest(child)  # a card whose rank 0 had already exited
                child.processes = []
