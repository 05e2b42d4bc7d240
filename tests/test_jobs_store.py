"""The job store on a real SQLite file and on a real PostgreSQL server (tests/pg_server.py): exact
admission across threads and processes, exclusive claims, leases and requeues, idempotency,
cancellation, and the state invariant."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
import uuid

import pytest

from i2v.jobs import (
    IdempotencyConflictError,
    JobStore,
    LeaseLostError,
    NewJob,
    QueueFullError,
)


def job(key: str | None = None, digest: str = "h") -> NewJob:
    return NewJob(
        id=uuid.uuid4().hex,
        model="tiny-svd",
        params={"steps": 1},
        image_path="/nowhere/x.png",
        request_hash=digest,
        idempotency_key=key,
    )


@pytest.fixture
def url(database_url):
    return database_url


@pytest.fixture
def store(url):
    s = JobStore(url, lease_s=0.3, max_attempts=2)
    s.create_schema()
    yield s
    s.dispose()


def invariant(store: JobStore, submitted: int) -> None:
    counts = store.counts()
    assert sum(counts.values()) == submitted, counts


def test_concurrent_submissions_admit_exactly_the_queue_size(store):
    accepted, refused = [], []
    barrier = threading.Barrier(64)

    def submit() -> None:
        barrier.wait()
        try:
            accepted.append(store.submit(job(), queue_size=10))
        except QueueFullError:
            refused.append(1)

    threads = [threading.Thread(target=submit) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(accepted), len(refused)) == (10, 54)
    assert store.counts()["queued"] == 10


def _submit_many(url: str, n: int, results) -> None:
    s = JobStore(url)
    ok = 0
    for _ in range(n):
        try:
            s.submit(job(), queue_size=25)
            ok += 1
        except QueueFullError:
            pass
    results.put(ok)


def test_admission_is_exact_across_processes(url, store):
    results = multiprocessing.get_context("spawn").Queue()
    procs = [
        multiprocessing.get_context("spawn").Process(target=_submit_many, args=(url, 20, results))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sum(results.get() for _ in procs) == 25 and store.counts()["queued"] == 25


ROUNDS, RACERS = 4, 8


def _create_schema(url: str, barrier, results) -> None:
    store = JobStore(url)
    try:
        for _ in range(ROUNDS):
            barrier.wait()  # every racer is connected: go
            try:
                store.create_schema()
                results.put("ok")
            except Exception as exc:  # noqa: BLE001 - reported to the test
                results.put(f"{type(exc).__name__}: {str(exc)[:200]}")
            barrier.wait()  # the test drops the tables for the next round
    finally:
        store.dispose()


def test_processes_starting_together_create_the_schema_once(url):
    """API replicas and workers on several hosts all create the schema as they start (the race is
    narrow, so it is run several rounds, each from empty)."""
    from i2v.jobs.schema import metadata

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(RACERS + 1, timeout=120), context.Queue()
    procs = [context.Process(target=_create_schema, args=(url, barrier, results)) for _ in range(RACERS)]
    for p in procs:
        p.start()
    store = JobStore(url)
    outcomes = []
    try:
        for _ in range(ROUNDS):
            barrier.wait()
            barrier.wait()
            outcomes += [results.get(timeout=60) for _ in procs]
            assert store.counts() == dict.fromkeys(
                ("queued", "running", "succeeded", "failed", "cancelled"), 0
            )
            metadata.drop_all(store.engine)
    finally:
        store.dispose()
        for p in procs:
            p.join(60)
    assert outcomes == ["ok"] * ROUNDS * RACERS, [o for o in outcomes if o != "ok"][:3]


def test_a_new_sqlite_file_switches_to_wal_while_another_process_writes(tmp_path):
    """The switch to WAL fails at once, without waiting on the busy timeout, while another connection
    holds the write lock (what processes starting together on a new jobs.db hit, 1 round in 8 of the
    race above); the store retries it until the writer is done."""
    path = tmp_path / "jobs.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE other (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO other VALUES (1)")
    threading.Timer(0.3, writer.execute, ("COMMIT",)).start()
    store = JobStore(f"sqlite:///{path}")
    try:
        store.create_schema()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert store.counts()["queued"] == 0
    finally:
        store.dispose()
        writer.close()


def test_every_job_is_claimed_exactly_once(store):
    for _ in range(40):
        store.submit(job(), queue_size=100)
    claimed: list[str] = []
    lock = threading.Lock()

    def work(worker: str) -> None:
        store.register_worker(worker, host="h", pid=1, slot="cpu", state="ready")
        while (j := store.claim(worker)) is not None:
            with lock:
                claimed.append(j["id"])
            store.finish(j["id"], worker, "succeeded")

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == len(set(claimed)) == 40
    assert store.counts()["succeeded"] == 40


def test_expired_lease_requeues_with_attempt_plus_one_then_fails_worker_lost(store):
    store.submit(job(), queue_size=10)
    first = store.claim("w1")
    time.sleep(0.4)  # w1 died: no heartbeat, lease (0.3 s) ran out
    assert [r["id"] for r in store.requeue_lost()["queued"]] == [first["id"]]
    again = store.claim("w2")
    assert again["id"] == first["id"] and again["attempt"] == 2
    with pytest.raises(LeaseLostError):  # w1 comes back: the job is not its any more
        store.progress(first["id"], "w1", step=1)
    assert store.finish(first["id"], "w1", "succeeded") is False
    time.sleep(0.4)
    assert [r["id"] for r in store.requeue_lost()["failed"]] == [first["id"]]
    row = store.get(first["id"])
    assert (row["state"], row["error_code"]) == ("failed", "worker_lost")
    invariant(store, 1)


def test_heartbeat_keeps_the_lease(store):
    store.submit(job(), queue_size=10)
    j = store.claim("w1")
    for _ in range(4):
        time.sleep(0.15)
        store.heartbeat("w1", j["id"])
        assert store.requeue_lost() == {"queued": [], "failed": [], "cancelled": []}
    assert store.get(j["id"])["state"] == "running"


def test_drain_release_keeps_the_attempt(store):
    store.submit(job(), queue_size=10)
    j = store.claim("w1")
    assert store.release(j["id"], "w1")
    row = store.get(j["id"])
    assert (row["state"], row["attempt"], row["worker_id"]) == ("queued", 1, None)


def test_idempotency_key_returns_the_same_job_and_refuses_a_different_request(store):
    row, created = store.submit(job(key="owner:abc"), queue_size=10)
    again, created_again = store.submit(job(key="owner:abc"), queue_size=10)
    assert created and not created_again and again["id"] == row["id"]
    with pytest.raises(IdempotencyConflictError):
        store.submit(job(key="owner:abc", digest="other"), queue_size=10)
    for _ in range(9):
        store.submit(job(), queue_size=10)
    assert store.submit(job(key="owner:abc"), queue_size=10)[0]["id"] == row["id"]  # replay even when full
    invariant(store, 10)


def test_delete_cancels_queued_now_running_at_the_next_step_and_hides_finished(store):
    a, _ = store.submit(job(), queue_size=10)
    b, _ = store.submit(job(), queue_size=10)
    action, row = store.delete(a["id"])
    assert (action, row["state"], row["deleted_at"]) == ("cancelled", "cancelled", None)
    running = store.claim("w1")
    assert running["id"] == b["id"]
    action, row = store.delete(b["id"])
    assert (action, row["state"], row["cancel_requested"]) == ("cancel_requested", "running", True)
    assert store.progress(b["id"], "w1", step=1) is True  # the worker sees it and stops
    store.finish(b["id"], "w1", "cancelled")
    assert [r["id"] for r in store.page(10)] == [b["id"], a["id"]]  # cancelled jobs stay readable
    action, row = store.delete(b["id"])
    assert action == "deleted" and row["deleted_at"] is not None and row["state"] == "cancelled"
    assert store.delete(b["id"]) is None  # gone for the API
    assert [r["id"] for r in store.page(10)] == [a["id"]]
    assert [r["id"] for r in store.page(10, include_deleted=True)] == [b["id"], a["id"]]
    invariant(store, 2)  # a deleted job still counts as what it was


def test_pages_go_either_way_after_a_job(store):
    seqs = [store.submit(job(), queue_size=10)[0]["seq"] for _ in range(5)]
    assert [r["seq"] for r in store.page(2)] == seqs[::-1][:2]
    assert [r["seq"] for r in store.page(2, after_seq=seqs[3])] == [seqs[2], seqs[1]]
    assert [r["seq"] for r in store.page(2, after_seq=seqs[1], order="asc")] == [seqs[2], seqs[3]]
    assert [r["seq"] for r in store.page(10, after_seq=seqs[0])] == []


def test_an_older_database_gets_the_new_columns(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the jobs table as the first release made it
        conn.execute(
            "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id VARCHAR(32) NOT NULL UNIQUE, "
            "state VARCHAR(16) NOT NULL, model VARCHAR(64) NOT NULL, params TEXT NOT NULL, plan TEXT, "
            "image_path TEXT NOT NULL, output_path TEXT, idempotency_key VARCHAR(300) UNIQUE, "
            "request_hash VARCHAR(64) NOT NULL, attempt INTEGER NOT NULL, worker_id VARCHAR(64), "
            "lease_until FLOAT, cancel_requested BOOLEAN NOT NULL, created_at FLOAT NOT NULL, "
            "started_at FLOAT, finished_at FLOAT, stage VARCHAR(16), step INTEGER, total_steps INTEGER, "
            "seconds_per_step FLOAT, eta_s FLOAT, load_s FLOAT, run_s FLOAT, peak_mib INTEGER, "
            "error_code VARCHAR(32), error_message TEXT, result TEXT)"
        )
        conn.execute(
            "INSERT INTO jobs (id, state, model, params, image_path, request_hash, attempt, "
            "cancel_requested, created_at) VALUES ('a', 'succeeded', 'tiny-svd', '{}', '', 'h', 1, 0, 1)"
        )
    store = JobStore(f"sqlite:///{path}")
    store.create_schema()
    store.create_schema()  # twice: nothing left to add
    try:
        assert store.get("a")["deleted_at"] is None and store.delete("a")[0] == "deleted"
        row, _ = store.submit(NewJob(**vars(job()) | {"extras": {"note": "x"}}), queue_size=10)
        assert row["extras"] == '{"note": "x"}'
    finally:
        store.dispose()


def test_a_dead_workers_job_with_a_pending_cancel_ends_cancelled(store):
    store.submit(job(), queue_size=10)
    j = store.claim("w1")
    store.delete(j["id"])
    assert [r["id"] for r in store.requeue_lost("w1")["cancelled"]] == [j["id"]]
    assert store.get(j["id"])["state"] == "cancelled"


def test_stats_for_metrics(store):
    store.submit(job(), queue_size=10)
    j = store.claim("w1")
    store.finish(j["id"], "w1", "succeeded", seconds_per_step=0.5, peak_mib=100)
    store.submit(job(), queue_size=10)
    k = store.claim("w1")
    store.finish(k["id"], "w1", "failed", error_code="out_of_memory", error_message="oom")
    stats = store.stats()
    assert stats["duration_count"] == 1 and stats["oom_total"] == 1
    assert stats["per_model"] == [{"model": "tiny-svd", "sps_sum": 0.5, "sps_count": 1, "peak_mib": 100}]
    assert stats["failures"] == {"out_of_memory": 1}
