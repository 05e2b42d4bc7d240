"""The service across signals and restarts: SIGTERM drains (503 while draining, the running job
finishes or goes back to the queue, exit 0, no orphan processes); a restart, graceful or after a
kill -9 of everything, finds every job where it was and runs it. Each on a SQLite file and on a
PostgreSQL database (`database_url`, tests/conftest.py)."""

from __future__ import annotations

import signal
import time

import pytest
from service_harness import Service, alive, record_figure

SMALL = {"model": "tiny-svd", "height": 32, "width": 32, "frames": 2, "steps": 1}
LONG = {"model": "tiny-svd", "height": 64, "width": 64, "frames": 4, "steps": 100}


@pytest.fixture
def models(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "models"


def rows(service: Service) -> dict[str, dict]:
    return service.rows()


def backend(url: str) -> str:
    return url.split(":", 1)[0].split("+")[0]


def test_sigterm_drains_lets_the_running_job_finish_and_exits_clean(tmp_path, models, database_url):
    service = Service(
        tmp_path / "svc", models, model="tiny-svd", drain_grace_s=120, lease_s=3, database_url=database_url
    ).start()
    try:
        with service.client() as client:
            job = service.submit(client, **LONG).json()
            service.wait_job(client, job["id"], states=("running",), until=lambda j: j["step"] >= 1)
            tree = [service.pid, *service.workers()]
            signalled = time.monotonic()
            service.process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            refused = service.submit(client, **SMALL)
            ready = client.get("/health/ready")
            still_readable = client.get(f"/v1/videos/{job['id']}")
        code = service.process.wait(timeout=180)
        drain_s = time.monotonic() - signalled
    finally:
        service.stop(signal.SIGKILL)
    final = rows(service)[job["id"]]
    record_figure(
        f"sigterm_drain/{backend(database_url)}",
        {
            "exit_code": code,
            "drain_s": round(drain_s, 2),
            "job": final["state"],
            "submit_during_drain": refused.status_code,
            "ready_during_drain": ready.status_code,
        },
    )
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "draining"
    assert ready.status_code == 503 and still_readable.status_code == 200
    assert code == 0 and final["state"] == "succeeded"
    assert not [pid for pid in tree if alive(pid)], "orphan processes"


def test_restarts_keep_every_job_graceful_or_after_kill_9(tmp_path, models, database_url):
    root = tmp_path / "svc"
    common = dict(model="tiny-svd", lease_s=3, queue_size=8, database_url=database_url)
    # 1. SIGTERM with a short grace: the running job goes back to the queue, attempt unchanged.
    first = Service(root, models, drain_grace_s=0.5, **common).start()
    with first.client() as client:
        long_id = first.submit(client, **LONG).json()["id"]
        first.wait_job(client, long_id, states=("running",), until=lambda j: j["step"] >= 1)
        queued = [first.submit(client, **SMALL).json()["id"] for _ in range(3)]
    tree = [first.pid, *first.workers()]
    started = time.monotonic()
    code = first.stop(signal.SIGTERM)
    graceful_exit_s = time.monotonic() - started
    after_sigterm = rows(first)
    assert code == 0 and not [p for p in tree if alive(p)]
    assert (after_sigterm[long_id]["state"], after_sigterm[long_id]["attempt"]) == ("queued", 1)
    assert all(after_sigterm[i]["state"] == "queued" for i in queued)

    # 2. Start again, let the long job run, then kill -9 everything (serve and worker) mid-job.
    second = Service(root, models, drain_grace_s=0.5, **common).start()
    with second.client() as client:
        second.wait_job(client, long_id, states=("running",), until=lambda j: j["step"] >= 1)
    second.crash()
    crashed = rows(second)
    assert crashed[long_id]["state"] == "running"  # nobody is left to say otherwise

    # 3. Start once more: the expired lease puts the job back (attempt 2) and everything runs.
    restarted = time.monotonic()
    third = Service(root, models, **common).start()
    try:
        with third.client() as client:
            final = {i: third.wait_job(client, i, timeout=180) for i in [long_id, *queued]}
            running = client.get("/v1/videos", params={"state": "running"}).json()["data"]
        all_done_s = time.monotonic() - restarted
    finally:
        assert third.stop() == 0
    record_figure(
        f"restart/{backend(database_url)}",
        {
            "graceful_exit_s": round(graceful_exit_s, 2),
            "after_sigterm": {"long": "queued, attempt 1", "queued_jobs": len(queued)},
            "after_kill_9": {"long": crashed[long_id]["state"]},
            "restart_to_all_succeeded_s": round(all_done_s, 2),
            "long_job_attempt": final[long_id]["attempt"],
        },
    )
    assert {j["state"] for j in final.values()} == {"succeeded"}
    assert final[long_id]["attempt"] == 2 and running == []


def test_workers_do_not_outlive_a_killed_supervisor(tmp_path, models, database_url):
    service = Service(
        tmp_path / "svc", models, model="tiny-svd", drain_grace_s=0.5, lease_s=3, database_url=database_url
    ).start()
    with service.client() as client:
        job = service.submit(client, **LONG).json()
        service.wait_job(client, job["id"], states=("running",), until=lambda j: j["step"] >= 1)
    [worker] = service.workers()
    killed = time.monotonic()
    service.process.send_signal(signal.SIGKILL)  # only `i2v serve`: the kernel tells the worker
    service.process.wait(timeout=10)
    deadline = time.monotonic() + 30
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    gone_s = time.monotonic() - killed
    record_figure(
        f"supervisor_killed/{backend(database_url)}",
        {"worker_exit_s": round(gone_s, 2), "job": rows(service)[job["id"]]["state"]},
    )
    assert not alive(worker)
    assert rows(service)[job["id"]]["state"] == "queued"  # handed back at its next step (grace 0.5 s)
