"""Card groups in the service: a card that hangs or dies costs its group a restart and its job a
retry, never a hang, and the other groups keep serving; SIGTERM stops every card.

`i2v serve` on the CPU with I2V_CARDS_PER_JOB=2 and I2V_WORKERS_PER_DEVICE=2: two groups of two gloo
processes (a worker and a follower each), the tiny Wan 2.1 pipeline split by CFG parallel.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from service_harness import Service, alive, record_figure

from i2v.jobs import JobStore

pytest.importorskip("diffusers")

MODEL = "tiny-wan2.1-i2v"
SMALL = {"model": MODEL, "height": 32, "width": 32, "frames": 5, "steps": 1}
LONG = {"model": MODEL, "height": 32, "width": 32, "frames": 5, "steps": 40}


@pytest.fixture
def models(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "models"


def gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


def group_port(pid: int) -> str | None:
    """The rendezvous port a process was started with: the same for every card of one group."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"I2V_GROUP_PORT="):
            return item.split(b"=", 1)[1].decode()
    return None


def follower_of(service: Service, worker_pid: int) -> int:
    port = group_port(worker_pid)
    [pid] = [p for p in service.workers() if p != worker_pid and group_port(p) == port]
    return pid


def row(service: Service, job_id: str) -> dict:
    store = JobStore(f"sqlite:///{service.outputs / 'jobs.db'}")
    try:
        return store.get(job_id)
    finally:
        store.dispose()


def live_worker_ids(service: Service) -> list[str]:
    store = JobStore(f"sqlite:///{service.outputs / 'jobs.db'}")
    try:
        return [w["id"] for w in store.live_workers() if w["state"] in ("ready", "busy")]
    finally:
        store.dispose()


def worker_pid(service: Service, worker_id: str) -> int:
    store = JobStore(f"sqlite:///{service.outputs / 'jobs.db'}")
    try:
        return next(w["pid"] for w in store.live_workers() if w["id"] == worker_id)
    finally:
        store.dispose()


def wait_row(service: Service, job_id: str, until, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = row(service, job_id)
        if until(found):
            return found
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there: {found}\n{service.log()}")


def test_a_card_that_hangs_or_dies_restarts_its_group_and_the_other_group_keeps_serving(tmp_path, models):
    service = Service(
        tmp_path / "svc",
        models,
        model=MODEL,
        cards_per_job=2,
        workers_per_device=2,
        collective_timeout_s=4,
        lease_s=3,
        max_attempts=4,
        drain_grace_s=5,
        queue_size=16,
    ).start(timeout=400)
    figures: dict = {}
    try:
        deadline = time.monotonic() + 300
        while len(live_worker_ids(service)) < 2 and time.monotonic() < deadline:  # both groups loaded
            time.sleep(0.2)
        with service.client() as client:
            long_id = service.submit(client, **LONG).json()["id"]
            first = wait_row(service, long_id, lambda r: r["state"] == "running" and (r["step"] or 0) >= 1)
            [other] = [w for w in live_worker_ids(service) if w != first["worker_id"]]
            rank0 = worker_pid(service, first["worker_id"])
            victim = follower_of(service, rank0)

            # 1. A card hangs (SIGSTOP): the group's next collective times out; nothing waits forever.
            stopped = time.monotonic()
            os.kill(victim, signal.SIGSTOP)
            small = [service.submit(client, **SMALL).json()["id"] for _ in range(3)]
            retry = wait_row(service, long_id, lambda r: r["attempt"] == 2 and r["state"] == "running")
            figures["hang_to_retry_running_s"] = round(time.monotonic() - stopped, 2)
            assert retry["worker_id"] == other  # the other group took it while the hung one restarts
            # The hung group's next collective times out (4 s here), its worker exits, and the supervisor
            # kills the stopped card with it: the whole group goes, nothing waits forever.
            assert gone([victim, rank0], timeout=30), service.log()
            figures["hang_to_group_gone_s"] = round(time.monotonic() - stopped, 2)

            # 2. A card dies (kill -9) mid-job: its group is killed and restarted, the job retried.
            wait_row(service, long_id, lambda r: (r["step"] or 0) >= 1 and r["attempt"] == 2)
            rank0 = worker_pid(service, other)
            victim = follower_of(service, rank0)
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            wait_row(service, long_id, lambda r: r["attempt"] == 3)
            figures["death_to_requeue_s"] = round(time.monotonic() - killed, 2)
            final = service.wait_job(client, long_id, timeout=300)
            done = [service.wait_job(client, i, timeout=300) for i in small]
            figures["long_job"] = {"state": final["state"], "attempt": final["attempt"]}
            figures["restarted_groups"] = sorted(set(live_worker_ids(service)) - {first["worker_id"], other})
            assert (final["state"], final["attempt"]) == ("succeeded", 3)
            assert {j["state"] for j in done} == {"succeeded"}
        tree = [service.pid, *service.workers()]
        assert len(tree) == 5  # serve + two groups of two
    finally:
        code = service.stop()
    record_figure("card_group_faults", figures)
    assert code == 0 and not [p for p in tree if alive(p)], "a card outlived the service"
