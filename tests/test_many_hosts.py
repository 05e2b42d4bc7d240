"""Many hosts on one PostgreSQL: two API replicas (no workers of their own) and two worker-only "hosts"
(separate `i2v workers` process trees with their own host names and device sets) share the job store
and the outputs folder, as a head host and worker hosts do.

host-1 runs one 2-card group (two gloo processes, CFG parallel), host-2 two 1-card workers. A kill -9
of host-1's whole process tree mid-job leaves its job to expire and host-2 runs it; jobs finished on
host-2 are served by replica 1; nothing is lost: submitted = succeeded + failed + cancelled.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from service_harness import Service, WorkerHost, alive, record_figure

pytest.importorskip("diffusers")

MODEL = "tiny-wan2.1-i2v"
SMALL = {"model": MODEL, "height": 32, "width": 32, "frames": 5, "steps": 1}
LONG = {"model": MODEL, "height": 64, "width": 64, "frames": 9, "steps": 150}
BLOCKER = {"model": MODEL, "height": 256, "width": 256, "frames": 33, "steps": 150}  # hours here: cancelled


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def test_two_replicas_and_two_hosts_on_one_postgresql(tmp_path, tmp_path_factory, postgres):
    models = tmp_path_factory.getbasetemp() / "models"
    shared = tmp_path / "shared"  # the NFS / CPFS / compose volume every host mounts at the same path
    common = dict(
        model=MODEL,
        database_url=postgres.create_database("many_hosts"),
        outputs_dir=shared,
        lease_s=3,
        drain_grace_s=2,
        queue_size=32,
    )
    replicas = [Service(tmp_path / f"api-{n}", models, spawn_workers="false", **common) for n in (1, 2)]
    host1 = WorkerHost(tmp_path / "host-1", models, 1, node_name="host-1", cards_per_job=2, **common)
    # host-2 with one card each for two workers, host-1 with one 2-card group
    host2 = WorkerHost(tmp_path / "host-2", models, 2, node_name="host-2", workers_per_device=2, **common)
    figures: dict = {}
    submitted: list[str] = []
    try:
        for replica in replicas:
            replica.start(wait_ready=False)
        host2.start(timeout=300)
        for replica in replicas:
            replica.wait_ready()
        one, two = (r.client() for r in replicas)
        with one, two:
            # host-2's two workers get a job each that runs until it is cancelled, so the job host-1
            # takes next is running there (not by luck of timing) when host-1 dies.
            blockers = [replicas[0].submit(one, **BLOCKER).json()["id"] for _ in range(2)]
            submitted += blockers
            for i in blockers:
                replicas[0].wait_job(one, i, states=("running",))
            host1.start(timeout=300)
            long_id = replicas[1].submit(two, **LONG).json()["id"]
            submitted.append(long_id)
            replicas[1].wait_job(two, long_id, states=("running",), until=lambda j: j["step"] >= 1)

            # host-1 loses power mid-job: every process of its tree at once, nobody left to say so.
            row = replicas[0].rows()[long_id]
            assert row["worker_id"].startswith("host-1-"), row
            tree = host1.tree()
            assert len(tree) == 3  # the supervisor, the group's worker and its second card
            killed = time.monotonic()
            for pid in tree:
                os.kill(pid, signal.SIGKILL)
            # host-2's supervisor finds the lease run out and puts the job back (attempt 2).
            requeued = replicas[0].wait_job(
                one, long_id, states=("queued",), until=lambda j: j["attempt"] == 2
            )
            requeue_s = time.monotonic() - killed
            for i in blockers:
                gone = one.delete(f"/v1/videos/{i}")  # running: cancelled at its next step
                assert gone.status_code == 200 and gone.json()["cancel_requested"]
            rerun = replicas[0].wait_job(one, long_id, states=("running",), until=lambda j: j["attempt"] == 2)
            running_s = time.monotonic() - killed
            for n in range(6):  # through both replicas
                client, replica = (one, replicas[0]) if n % 2 else (two, replicas[1])
                submitted.append(replica.submit(client, **SMALL).json()["id"])
            final = replicas[1].wait_job(two, long_id, timeout=300)
            done_s = time.monotonic() - killed
            assert not [p for p in tree if alive(p)]
            assert (requeued["attempt"], final["state"], final["attempt"]) == (2, "succeeded", 2)
            states = {i: replicas[1].wait_job(two, i, timeout=240)["state"] for i in submitted}
            rows = replicas[0].rows()
            assert rows[long_id]["worker_id"].startswith("host-2-") and rerun["state"] == "running"
            small = submitted[-6:]
            assert all(rows[i]["worker_id"].startswith("host-2-") for i in small)
            video = one.get(f"/v1/videos/{small[0]}/content")  # finished on host-2, served by replica 1
            assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
            assert video.content[4:8] == b"ftyp"
            assert (
                len(video.content) == json.loads(rows[small[0]]["result"])["bytes"]
            )  # the file host-2 wrote
            text = one.get("/metrics").text
        counts = {s: metric(text, f'i2v_jobs{{state="{s}"}}') for s in ("succeeded", "failed", "cancelled")}
        total = metric(text, "i2v_jobs_submitted_total")
        figures = {
            "host_failure": {
                "lease_s": 3,
                "kill_9_to_requeued_s": round(requeue_s, 2),
                "kill_9_to_running_on_host_2_s": round(running_s, 2),
                "kill_9_to_succeeded_s": round(done_s, 2),
            },
            "submitted": total,
            **counts,
            "served_by_replica_1_from_host_2": small[0],
        }
        assert total == len(submitted) == counts["succeeded"] + counts["failed"] + counts["cancelled"]
        assert sorted(states.values()) == ["cancelled"] * 2 + ["succeeded"] * (len(submitted) - 2)
    finally:
        codes = {
            name: p.stop()
            for name, p in (
                ("host-2", host2),
                ("host-1", host1),
                ("api-1", replicas[0]),
                ("api-2", replicas[1]),
            )
        }
    record_figure("many_hosts", figures)
    assert codes == {"host-2": 0, "host-1": -9, "api-1": 0, "api-2": 0}  # SIGTERM drains; host-1 was killed
