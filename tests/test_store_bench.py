"""The job store under load on the session's PostgreSQL server (scripts/store_bench.py): 8 real worker
processes drain tiny jobs, each exactly once; an idle worker's load on the database follows its poll
interval. The figures (jobs/s, statements and transactions per second) go to test-artifacts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from service_harness import record_figure

REPO = Path(__file__).resolve().parents[1]
POLL_S, LEASE_S = 0.2, 30.0


def test_eight_workers_drain_the_queue_once_each_and_an_idle_worker_costs_its_poll_rate(postgres):
    url = postgres.create_database("store_bench")
    command = [sys.executable, str(REPO / "scripts" / "store_bench.py"), "--url", url, "--workers", "8"]
    command += ["--jobs", "200", "--idle-s", "6", "--poll-interval-s", str(POLL_S), "--lease-s", str(LEASE_S)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout)
    record_figure("store_bench", report)
    busy, idle = report["busy"], report["idle_worker"]
    assert report["database"] == "postgresql"
    assert busy["states"] == {"succeeded": 200, "failed": 0, "queued": 0, "running": 0}
    assert busy["attempts_above_1"] == 0  # no job was claimed twice or lost a lease
    assert sum(busy["jobs_per_worker"]) == 200 and min(busy["jobs_per_worker"]) > 0  # all eight took work
    # Idle, a worker asks for a job every poll, reaps expired leases every lease/2 and beats every lease/3.
    expected = 1 / POLL_S + 2 / LEASE_S + 3 / LEASE_S
    assert 0.5 * expected <= idle["statements_per_s"] <= 1.2 * expected, idle
