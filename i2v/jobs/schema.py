"""The job store's tables (SQLAlchemy Core) and the database engine.

Portable on purpose: plain types (strings, integers, floats holding Unix seconds, JSON as text),
no SQLite-only SQL, so a PostgreSQL URL works unchanged. SQLite gets WAL, a busy timeout, and
`BEGIN IMMEDIATE` for write transactions (the SQLAlchemy pysqlite recipe): a writer takes the
write lock when it begins, so "count the queue, then insert" cannot interleave with another
writer. On PostgreSQL the same exclusion comes from `SELECT ... FOR UPDATE` on the admission row.

Columns added after a database was first made are added by `add_missing_columns` (plain `ALTER TABLE
... ADD COLUMN`, nullable, on both databases), so an existing jobs.db keeps working after an upgrade.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")
IMMEDIATE = "i2v_begin_immediate"  # execution option: this connection writes

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # FIFO order and paging cursor
    Column("id", String(32), nullable=False, unique=True),  # public id, server-made
    Column("state", String(16), nullable=False),
    Column("model", String(64), nullable=False),
    Column("params", Text, nullable=False),  # the resolved request, JSON
    Column("plan", Text),  # JSON: the API's plan, then the worker's
    Column("image_path", Text, nullable=False),  # "" when the mode runs without an image (ic-lora)
    Column("output_path", Text),
    Column("idempotency_key", String(300), unique=True),  # "<owner>:<Idempotency-Key>"
    Column("request_hash", String(64), nullable=False),
    Column("attempt", Integer, nullable=False, default=1),
    Column("worker_id", String(64)),
    Column("lease_until", Float),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("stage", String(16)),
    Column("step", Integer),
    Column("total_steps", Integer),
    Column("seconds_per_step", Float),
    Column("eta_s", Float),
    Column("load_s", Float),
    Column("run_s", Float),
    Column("peak_mib", Integer),
    Column("error_code", String(32)),
    Column("error_message", Text),
    Column("result", Text),  # JSON: what the mp4 holds
    # JSON: what the API decided at admission besides the request (notes on rounding and aliases, the
    # video an extension continues); never read back as a request.
    Column("extras", Text),
    Column("deleted_at", Float),  # DELETE of a finished job: its files are gone, reads answer 404
    CheckConstraint(f"state IN ({', '.join(repr(s) for s in STATES)})", name="jobs_state_valid"),
)
Index("jobs_state_seq", jobs.c.state, jobs.c.seq)

workers = Table(
    "workers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("slot", String(64), nullable=False),  # "cpu", "cuda:0", "npu:3"
    Column("state", String(16), nullable=False),  # starting | ready | busy | failed | stopping | gone
    Column("model", String(64)),  # the warm model, once loaded
    Column("budget", Text),  # JSON DeviceBudget measured before loading
    Column("error", Text),
    Column("job_id", String(32)),
    Column("jobs_done", Integer, nullable=False, default=0),
    Column("rss_mib", Integer),
    Column("started_at", Float, nullable=False),
    Column("seen_at", Float, nullable=False),
)

# One row per named lock; admission takes `SELECT ... FOR UPDATE` on "admission" (PostgreSQL).
locks = Table("locks", metadata, Column("name", String(32), primary_key=True))


def add_missing_columns(engine: Engine) -> list[str]:
    """Add the columns of `metadata` that an older database lacks; returns their names."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import DBAPIError

    added = []
    for table in metadata.sorted_tables:
        present = {c["name"] for c in inspect(engine).get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
                added.append(column.name)
            except DBAPIError:
                # another process added it first; anything else shows on the re-check
                if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise
    return added


BUSY_TIMEOUT_S = 30


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """`PRAGMA journal_mode=WAL`, retried while another connection holds the lock. The switch does not
    wait on the busy timeout: processes opening a new jobs.db together (API replicas and workers
    starting at once) got "database is locked" at once, in 7-14 of 60 rounds of 8 processes here;
    with the retry, 0 of 200. Once one process has switched, the mode is stored in the file."""
    deadline, delay = time.monotonic() + BUSY_TIMEOUT_S, 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_size=10, max_overflow=30, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        _switch_to_wal(cursor)  # the busy timeout is already set: sqlite3.connect's `timeout`
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        immediate = connection.get_execution_options().get(IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
