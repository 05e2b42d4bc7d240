#!/usr/bin/env python3
"""What the job store costs on a real database: jobs/s with N workers polling, and an idle worker's load.

    python scripts/store_bench.py --url postgresql+psycopg://i2v@127.0.0.1:5432/bench --workers 8 --jobs 400

The workers are the real `i2v.worker.Worker` (claim with SKIP LOCKED, heartbeat thread, lease
renewal with each progress report, the mp4 writer, finish) in their own processes. Only the pipeline
is replaced, by two black 32x32 frames after one reported step, so the figure is the service
machinery and the database, not a model. Phase 1 submits `--jobs` jobs at once and times the first
claim to the last finish (from the rows' own timestamps). Phase 2 leaves one worker idle for
`--idle-s` seconds and counts the SQL statements it sends (a cursor-execute hook in the worker) and
the transactions the server commits for that database (pg_stat_database, PostgreSQL only).

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODEL = "tiny-svd"


class _Engine:
    """The pipeline's stand-in: one progress step, then two black frames."""

    def __init__(self) -> None:
        from i2v import catalogue
        from i2v.planner import DeviceBudget, plan
        from i2v.request import resolve

        spec = catalogue.get(MODEL)
        self.device_budget = DeviceBudget("cpu", "bench", 8192, 8192, 8192)
        self.plan = plan(spec, resolve(spec, "standard"), self.device_budget)

    def budget(self, spec: Any) -> Any:
        return self.device_budget  # what the worker places jobs by (i2v.jobs.placement)

    def generate(self, request: Any, image: Any, progress: Any = None) -> Any:
        import numpy as np

        from i2v.engine import Result
        from i2v.families import Output
        from i2v.progress import Progress

        if progress is not None:
            progress(Progress("denoising", 1, 1, 0.001, 0.0))
        frames = np.zeros((2, 32, 32, 3), dtype="float32")
        return Result(
            Output(frames), self.plan, load_s=0.0, run_s=0.001, seconds_per_step=0.001, peak_mib=None, steps=1
        )


def _worker(settings: dict[str, Any], name: str, counts: Any) -> None:
    from sqlalchemy import event

    from i2v.jobs import JobStore, ServiceSettings
    from i2v.worker import Worker

    statements = [0]
    ready_at = [time.monotonic()]

    class BenchWorker(Worker):
        def warm_up(self) -> None:
            self.engine = _Engine()
            self.store.set_worker(self.id, state="ready", model=MODEL, error=None)
            statements[0], ready_at[0] = 0, time.monotonic()  # count from here: the serving loop

    service = ServiceSettings(_env_file=None, **settings)
    store = JobStore.from_settings(service)

    @event.listens_for(store.engine, "before_cursor_execute")
    def _count(*_: Any) -> None:
        statements[0] += 1

    worker = BenchWorker(service, worker_id=name, slot=name, store=store)
    try:
        worker.run()
    finally:
        counts[name] = (statements[0], time.monotonic() - ready_at[0])


def _submit(store: Any, outputs: Path, n: int) -> list[str]:
    from i2v import catalogue
    from i2v.cli import demo_image
    from i2v.jobs import NewJob
    from i2v.jobs.paths import upload_path
    from i2v.request import resolve

    spec = catalogue.get(MODEL)
    params = resolve(spec, "standard", height=32, width=32, frames=2, steps=1).to_dict()
    image = demo_image(32, 32)
    ids = []
    for _ in range(n):
        job_id = uuid.uuid4().hex
        path = upload_path(outputs, job_id, ".png")
        image.save(path, format="PNG")
        store.submit(NewJob(job_id, MODEL, params, str(path), request_hash=job_id), queue_size=n + 1)
        ids.append(job_id)
    return ids


def _transactions(store: Any) -> int | None:
    from sqlalchemy import text

    if store.engine.dialect.name != "postgresql":
        return None
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
                )
            ).scalar_one()
        )


def _start(context: Any, settings: dict[str, Any], names: list[str], counts: Any) -> list[Any]:
    # daemon: an error in this script must not leave it waiting for its workers at exit
    procs = [context.Process(target=_worker, args=(settings, n, counts), daemon=True) for n in names]
    for p in procs:
        p.start()
    return procs


def _stop(procs: list[Any]) -> None:
    for p in procs:
        os.kill(p.pid, signal.SIGTERM)
    for p in procs:
        p.join(60)


def _wait_ready(store: Any, names: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = {w["id"] for w in store.live_workers() if w["state"] == "ready"}
        if set(names) <= ready:
            return
        time.sleep(0.1)
    raise RuntimeError(f"workers {names} not ready after {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of an empty database")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--poll-interval-s", type=float, default=0.2)
    parser.add_argument("--lease-s", type=float, default=30.0)
    args = parser.parse_args()

    from i2v.jobs import JobStore

    outputs = Path(tempfile.mkdtemp(prefix="i2v-store-bench-"))
    (outputs / "uploads").mkdir()
    settings = dict(
        database_url=args.url,
        outputs_dir=str(outputs),
        poll_interval_s=args.poll_interval_s,
        lease_s=args.lease_s,
        device="cpu",
    )
    store = JobStore(args.url, lease_s=args.lease_s)
    store.create_schema()
    context = multiprocessing.get_context("spawn")
    counts = context.Manager().dict()

    names = [f"bench-{k}" for k in range(args.workers)]
    procs = _start(context, settings, names, counts)
    try:
        _wait_ready(store, names)
        ids = _submit(store, outputs, args.jobs)
        deadline = time.monotonic() + 600
        while (
            sum(store.counts()[s] for s in ("succeeded", "failed")) < args.jobs
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
    finally:
        _stop(procs)
    rows = {r["id"]: r for r in store.page(args.jobs + 10)}
    done = [rows[i] for i in ids]
    span = max(r["finished_at"] for r in done) - min(r["started_at"] for r in done)
    busy = {
        "workers": args.workers,
        "jobs": args.jobs,
        "states": {
            s: sum(r["state"] == s for r in done) for s in ("succeeded", "failed", "queued", "running")
        },
        "attempts_above_1": sum(r["attempt"] > 1 for r in done),
        "first_error": next(
            (f"{r['error_code']}: {r['error_message']}" for r in done if r["error_code"]), None
        ),
        "jobs_per_worker": sorted(sum(r["worker_id"] == n for r in done) for n in names),
        "seconds": round(span, 2),
        "jobs_per_s": round(args.jobs / span, 1),
        "statements_per_job": round(sum(c for c, _ in counts.values()) / args.jobs, 1),
    }

    idle_name = "bench-idle"
    [idle] = _start(context, settings, [idle_name], counts)
    try:
        _wait_ready(store, [idle_name])
        time.sleep(1.0)  # past the start-up writes
        before = _transactions(store)
        started = time.monotonic()
        time.sleep(args.idle_s)
        after = _transactions(store)
        elapsed = time.monotonic() - started
    finally:
        _stop([idle])
    statements, serving_s = counts[idle_name]
    idle_report = {
        "seconds": round(elapsed, 1),
        "poll_interval_s": args.poll_interval_s,
        "lease_s": args.lease_s,
        # client side, from ready to stopped (its drain's last write included)
        "statements_per_s": round(statements / serving_s, 2),
        # server side, in the window: every transaction on the database (this script's one query excluded)
        "server_transactions_per_s": None if before is None else round((after - before - 1) / elapsed, 2),
    }
    print(
        json.dumps(
            {"database": store.engine.dialect.name, "busy": busy, "idle_worker": idle_report}, indent=2
        )
    )
    store.dispose()


if __name__ == "__main__":
    main()
