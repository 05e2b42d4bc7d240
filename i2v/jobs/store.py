"""The durable job store: every state change is one short SQL transaction.

States: queued -> running -> succeeded | failed | cancelled (and running -> queued when a worker
dies or drains). Deleting a finished job keeps its row (marked `deleted_at`, hidden from reads), so
the counts below stay the history of everything admitted. A job is one row with one `state`, so submitted = queued + running + succeeded +
failed + cancelled holds by construction; refused submissions never become rows.

Workers claim the oldest queued job with a lease and renew it while they work; a job whose lease
ran out, or whose worker is known dead, is requeued with `attempt + 1`, and failed with
`worker_lost` once `max_attempts` runs have been lost. Every worker-side write is conditional on
the row still belonging to that worker, so a worker that lost its lease cannot overwrite the
job's next run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from i2v.jobs.schema import (
    IMMEDIATE,
    STATES,
    TERMINAL,
    add_missing_columns,
    jobs,
    locks,
    make_engine,
    metadata,
    workers,
)

DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
SCHEMA_LOCK_KEY = 0x1278_2D00  # pg_advisory_xact_lock key for creating the schema ("i2v" + 0)


class QueueFullError(Exception):
    def __init__(self, depth: int, capacity: int):
        self.depth, self.capacity = depth, capacity
        super().__init__(f"the queue is full ({depth} of {capacity} jobs waiting)")


class IdempotencyConflictError(Exception):
    def __init__(self, job_id: str):
        self.job_id = job_id
        super().__init__(f"this Idempotency-Key was already used for job {job_id} with a different request")


class LeaseLostError(Exception):
    """The job is no longer this worker's (its lease ran out and it was requeued, or it was cancelled)."""


@dataclass(frozen=True)
class NewJob:
    id: str
    model: str
    params: dict[str, Any]
    image_path: str
    request_hash: str
    plan: dict[str, Any] | None = None
    idempotency_key: str | None = None
    extras: dict[str, Any] | None = None


_CLEARED_RUN = dict(
    worker_id=None,
    lease_until=None,
    stage=None,
    step=None,
    total_steps=None,
    seconds_per_step=None,
    eta_s=None,
    started_at=None,
)


class JobStore:
    def __init__(self, url: str, *, lease_s: float = 30.0, max_attempts: int = 3):
        self.url, self.lease_s, self.max_attempts = url, lease_s, max_attempts
        self.engine = make_engine(url)

    @classmethod
    def from_settings(cls, settings: Any) -> JobStore:
        return cls(settings.db_url(), lease_s=settings.lease_s, max_attempts=settings.max_attempts)

    def create_schema(self) -> None:
        """Create the tables if missing, then add columns an older database lacks. Every API replica and
        worker calls this as it starts, often at the same moment: the tables are made in one transaction
        that holds the write lock (SQLite) or a transaction-scoped advisory lock (PostgreSQL, whose
        concurrent CREATE TABLEs otherwise collide in pg_type)."""
        try:
            with self._write() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
                metadata.create_all(conn)
                if conn.execute(select(locks.c.name).where(locks.c.name == "admission")).first() is None:
                    conn.execute(insert(locks).values(name="admission"))
        except IntegrityError:
            pass  # another process inserted the admission row first
        add_missing_columns(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(**{IMMEDIATE: True}) as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    # --- the API side ------------------------------------------------------------------------------

    def submit(self, job: NewJob, queue_size: int) -> tuple[dict[str, Any], bool]:
        """Insert `job` if the queue has room: (row, True); an Idempotency-Key seen before: (its row, False)."""
        with self._write() as conn:
            conn.execute(select(locks.c.name).where(locks.c.name == "admission").with_for_update())
            if job.idempotency_key is not None:
                seen = (
                    conn.execute(select(jobs).where(jobs.c.idempotency_key == job.idempotency_key))
                    .mappings()
                    .first()
                )
                if seen is not None:
                    if seen["request_hash"] != job.request_hash:
                        raise IdempotencyConflictError(seen["id"])
                    return dict(seen), False
            depth = conn.execute(
                select(func.count()).select_from(jobs).where(jobs.c.state == "queued")
            ).scalar_one()
            if depth >= queue_size:
                raise QueueFullError(depth, queue_size)
            conn.execute(
                insert(jobs).values(
                    id=job.id,
                    state="queued",
                    model=job.model,
                    params=json.dumps(job.params),
                    plan=json.dumps(job.plan) if job.plan else None,
                    image_path=job.image_path,
                    idempotency_key=job.idempotency_key,
                    request_hash=job.request_hash,
                    extras=json.dumps(job.extras) if job.extras else None,
                    attempt=1,
                    cancel_requested=False,
                    created_at=time.time(),
                )
            )
            return dict(conn.execute(select(jobs).where(jobs.c.id == job.id)).mappings().one()), True

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return dict(row) if row else None

    def page(
        self,
        limit: int,
        after_seq: int | None = None,
        state: str | None = None,
        order: str = "desc",
        include_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        """Jobs in submission order (`desc`: newest first), those after the job with `after_seq`."""
        newest_first = order == "desc"
        query = select(jobs).order_by(jobs.c.seq.desc() if newest_first else jobs.c.seq).limit(limit)
        if after_seq is not None:
            query = query.where(jobs.c.seq < after_seq if newest_first else jobs.c.seq > after_seq)
        if state is not None:
            query = query.where(jobs.c.state == state)
        if not include_deleted:
            query = query.where(jobs.c.deleted_at.is_(None))
        with self._read() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def queue_position(self, seq: int) -> int:
        """How many queued jobs are ahead of the job with this `seq`."""
        with self._read() as conn:
            return conn.execute(
                select(func.count()).select_from(jobs).where(jobs.c.state == "queued", jobs.c.seq < seq)
            ).scalar_one()

    def queue_depth(self) -> int:
        with self._read() as conn:
            return conn.execute(
                select(func.count()).select_from(jobs).where(jobs.c.state == "queued")
            ).scalar_one()

    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            rows = conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state)).all()
        found = dict(rows)
        return {state: int(found.get(state, 0)) for state in STATES}

    def delete(self, job_id: str) -> tuple[str, dict[str, Any]] | None:
        """DELETE: a queued job is cancelled now, a running one at its next step ("cancel_requested"),
        a finished one (succeeded, failed, cancelled) is marked deleted. None: no such (undeleted) job."""
        with self._write() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
            if row is None or row["deleted_at"] is not None:
                return None
            now = time.time()
            if row["state"] == "queued":
                action, values = "cancelled", dict(state="cancelled", finished_at=now)
            elif row["state"] == "running":
                action, values = "cancel_requested", dict(cancel_requested=True)
            else:
                action, values = "deleted", dict(deleted_at=now)
            conn.execute(
                update(jobs).where(jobs.c.id == job_id, jobs.c.state == row["state"]).values(**values)
            )
            return action, dict(conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().one())

    def recent_run_seconds(self, last: int = 20) -> float | None:
        """Mean run time (start to finish) of the last `last` succeeded jobs; None before the first."""
        query = (
            select((jobs.c.finished_at - jobs.c.started_at).label("d"))
            .where(jobs.c.state == "succeeded")
            .order_by(jobs.c.seq.desc())
            .limit(last)
        )
        with self._read() as conn:
            values = [r.d for r in conn.execute(query) if r.d is not None]
        return sum(values) / len(values) if values else None

    # --- the worker side ---------------------------------------------------------------------------

    def claim(self, worker_id: str, skip: Collection[str] = ()) -> dict[str, Any] | None:
        """The oldest queued job, now running on `worker_id`; `skip`: jobs this worker passed on
        (another card fits them, i2v.jobs.placement), left for the others."""
        now = time.time()
        queued = jobs.c.state == "queued"
        if skip:
            queued = queued & jobs.c.id.not_in(list(skip))
        with self._write() as conn:
            row = conn.execute(
                select(jobs.c.id)
                .where(queued)
                .order_by(jobs.c.seq)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            claimed = conn.execute(
                update(jobs)
                .where(jobs.c.id == row.id, jobs.c.state == "queued")
                .values(
                    state="running",
                    worker_id=worker_id,
                    lease_until=now + self.lease_s,
                    started_at=now,
                    stage="starting",
                    step=0,
                    total_steps=None,
                    seconds_per_step=None,
                    eta_s=None,
                )
            ).rowcount
            if not claimed:
                return None
            conn.execute(
                update(workers)
                .where(workers.c.id == worker_id)
                .values(state="busy", job_id=row.id, seen_at=now)
            )
            return dict(conn.execute(select(jobs).where(jobs.c.id == row.id)).mappings().one())

    def progress(self, job_id: str, worker_id: str, **fields: Any) -> bool:
        """Record progress and renew the lease; True when a cancel was requested."""
        with self._write() as conn:
            done = conn.execute(
                update(jobs)
                .where(*self._mine(job_id, worker_id))
                .values(lease_until=time.time() + self.lease_s, **fields)
            ).rowcount
            if not done:
                raise LeaseLostError(job_id)
            return bool(conn.execute(select(jobs.c.cancel_requested).where(jobs.c.id == job_id)).scalar_one())

    def finish(self, job_id: str, worker_id: str, state: str, **fields: Any) -> bool:
        """running -> a terminal state; False when the job was no longer this worker's."""
        assert state in TERMINAL, state
        now = time.time()
        with self._write() as conn:
            done = conn.execute(
                update(jobs)
                .where(*self._mine(job_id, worker_id))
                .values(state=state, finished_at=now, lease_until=None, **fields)
            ).rowcount
            conn.execute(
                update(workers)
                .where(workers.c.id == worker_id)
                .values(state="ready", job_id=None, seen_at=now, jobs_done=workers.c.jobs_done + 1)
            )
        return bool(done)

    def release(self, job_id: str, worker_id: str) -> bool:
        """Hand a running job back to the queue without counting an attempt (the worker is draining)."""
        with self._write() as conn:
            return bool(
                conn.execute(
                    update(jobs).where(*self._mine(job_id, worker_id)).values(state="queued", **_CLEARED_RUN)
                ).rowcount
            )

    def _mine(self, job_id: str, worker_id: str) -> tuple:
        return jobs.c.id == job_id, jobs.c.worker_id == worker_id, jobs.c.state == "running"

    def requeue_lost(
        self, worker_id: str | None = None, count_attempt: bool = True
    ) -> dict[str, list[dict[str, Any]]]:
        """Running jobs of a dead worker (or, with no worker named, whose lease ran out): back to the
        queue with attempt + 1; failed with `worker_lost` after `max_attempts`; cancelled if a cancel
        was pending. `count_attempt=False`: a worker stopped on purpose (drain), no attempt is used up.
        Returns the affected rows by new state."""
        now = time.time()
        lost = (jobs.c.state == "running") & (
            jobs.c.worker_id == worker_id if worker_id is not None else jobs.c.lease_until < now
        )
        out: dict[str, list[dict[str, Any]]] = {"queued": [], "failed": [], "cancelled": []}
        with self._write() as conn:
            rows = [dict(r) for r in conn.execute(select(jobs).where(lost).with_for_update()).mappings()]
            for row in rows:
                if row["cancel_requested"]:
                    values = dict(state="cancelled", finished_at=now, lease_until=None)
                elif not count_attempt:
                    values = dict(state="queued", **_CLEARED_RUN)
                elif row["attempt"] >= self.max_attempts:
                    values = dict(
                        state="failed",
                        finished_at=now,
                        lease_until=None,
                        error_code="worker_lost",
                        error_message=f"the worker running this job died {row['attempt']} times "
                        f"(last: {row['worker_id']}); not retried again",
                    )
                else:
                    values = dict(state="queued", attempt=row["attempt"] + 1, **_CLEARED_RUN)
                conn.execute(
                    update(jobs).where(jobs.c.id == row["id"], jobs.c.state == "running").values(**values)
                )
                out[values["state"]].append(row)
        return out

    # --- workers -----------------------------------------------------------------------------------

    def register_worker(self, worker_id: str, **fields: Any) -> None:
        now = time.time()
        with self._write() as conn:
            if conn.execute(select(workers.c.id).where(workers.c.id == worker_id)).first() is None:
                conn.execute(
                    insert(workers).values(id=worker_id, started_at=now, seen_at=now, jobs_done=0, **fields)
                )
            else:
                conn.execute(update(workers).where(workers.c.id == worker_id).values(seen_at=now, **fields))

    def heartbeat(self, worker_id: str, job_id: str | None = None, **fields: Any) -> None:
        """The worker is alive: refresh it and renew the lease of the job it runs."""
        now = time.time()
        with self._write() as conn:
            conn.execute(update(workers).where(workers.c.id == worker_id).values(seen_at=now, **fields))
            if job_id is not None:
                conn.execute(
                    update(jobs).where(*self._mine(job_id, worker_id)).values(lease_until=now + self.lease_s)
                )

    def set_worker(self, worker_id: str, **fields: Any) -> None:
        with self._write() as conn:
            conn.execute(update(workers).where(workers.c.id == worker_id).values(**fields))

    def live_workers(self) -> list[dict[str, Any]]:
        horizon = time.time() - self.lease_s
        with self._read() as conn:
            rows = conn.execute(
                select(workers)
                .where(workers.c.seen_at > horizon, workers.c.state != "gone")
                .order_by(workers.c.slot, workers.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    # --- metrics -----------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        duration = jobs.c.finished_at - jobs.c.started_at
        done = jobs.c.state == "succeeded"
        buckets = [func.sum(case((and_(done, duration <= b), 1), else_=0)) for b in DURATION_BUCKETS]
        with self._read() as conn:
            hist = conn.execute(
                select(
                    *buckets,
                    func.sum(case((done, duration), else_=0)),
                    func.sum(case((done, 1), else_=0)),
                    func.sum(case((jobs.c.error_code == "out_of_memory", 1), else_=0)),
                    func.sum(jobs.c.attempt - 1),
                )
            ).one()
            per_model = conn.execute(
                select(
                    jobs.c.model,
                    func.sum(jobs.c.seconds_per_step),
                    func.count(jobs.c.seconds_per_step),
                    func.max(jobs.c.peak_mib),
                )
                .where(done)
                .group_by(jobs.c.model)
            ).all()
            errors = conn.execute(
                select(jobs.c.error_code, func.count())
                .where(jobs.c.state == "failed")
                .group_by(jobs.c.error_code)
            ).all()
        n = len(DURATION_BUCKETS)
        return {
            "duration_buckets": list(zip(DURATION_BUCKETS, [int(v or 0) for v in hist[:n]], strict=True)),
            "duration_sum": float(hist[n] or 0.0),
            "duration_count": int(hist[n + 1] or 0),
            "oom_total": int(hist[n + 2] or 0),
            "requeues_total": int(hist[n + 3] or 0),
            "per_model": [
                {"model": m, "sps_sum": float(s or 0), "sps_count": int(c), "peak_mib": p}
                for m, s, c, p in per_model
            ],
            "failures": {code or "unknown": int(c) for code, c in errors},
        }
