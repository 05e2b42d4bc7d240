"""Run `i2v serve` the way an operator does, for the service tests: a real subprocess listening on
127.0.0.1:<free port>, a real SQLite file (or the PostgreSQL database given as `database_url`), real
`i2v worker` processes running tiny pipelines on CPU.

Each service runs in its own folder (its cwd, so no developer `.env` leaks in) and shares one
models folder per test session, so every tiny model is built once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
KEY = "test-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_bytes(width: int = 64, height: int = 64) -> bytes:
    import io

    from i2v.cli import demo_image

    buffer = io.BytesIO()
    demo_image(width, height).save(buffer, format="PNG")
    return buffer.getvalue()


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc, no psutil)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def record_figure(name: str, value: Any) -> None:
    """Keep each test's measured figure in test-artifacts/service-figures.json (for the closing note)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "service-figures.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[name] = value
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


class Service:
    def __init__(self, root: Path, models_dir: Path, **settings: Any):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.outputs = root / "outputs"
        self.log_path = root / "serve.log"
        self.keys = settings.get("api_keys", "")
        env = {k: v for k, v in os.environ.items() if not k.startswith("I2V_")}
        env.update(
            {
                "I2V_HOST": "127.0.0.1",
                "I2V_PORT": str(self.port),
                "I2V_OUTPUTS_DIR": str(self.outputs),
                "I2V_MODELS_DIR": str(models_dir),
                "I2V_DEVICE": "cpu",
                "I2V_DATABASE_URL": "",
                "I2V_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                # Tiny models gain nothing from a second thread, and the API and the test client share
                # CI's two cores with the worker: spin-waiting OpenMP threads make step times erratic.
                "OMP_NUM_THREADS": "1",
            }
        )
        env.update({f"I2V_{k.upper()}": str(v) for k, v in settings.items()})
        self.env = env
        self.process: subprocess.Popen | None = None

    # --- process -----------------------------------------------------------------------------------

    command = "serve"

    def start(self, wait_ready: bool = True, timeout: float = 180) -> Service:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "i2v", self.command],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"i2v serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def db_url(self) -> str:
        """The job store this service uses (its SQLite file unless `database_url` was given)."""
        return self.env.get("I2V_DATABASE_URL") or f"sqlite:///{self.outputs / 'jobs.db'}"

    def rows(self) -> dict[str, dict]:
        """Every job row, read from the store directly (what survives the service)."""
        from i2v.jobs import JobStore

        store = JobStore(self.db_url)
        try:
            return {r["id"]: r for r in store.page(1000)}
        finally:
            store.dispose()

    def workers(self) -> list[int]:
        return children(self.pid)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        tree = [self.pid, *self.workers()]
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            for pid in tree:  # never leave anything behind, even on failure
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)

    def crash(self) -> None:
        """kill -9 the service and its workers, as a power cut would."""
        tree = [self.pid, *self.workers()]
        for pid in tree:
            os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in tree) and time.monotonic() < deadline:
            time.sleep(0.05)

    # --- HTTP --------------------------------------------------------------------------------------

    def client(self, key: str | None = "default", **kwargs: Any) -> httpx.Client:
        headers = {}
        key = (self.keys.split(",")[0] if self.keys else None) if key == "default" else key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=kwargs.pop("timeout", 30), **kwargs)

    def submit(self, client: httpx.Client, image: bytes | None = None, **fields: Any) -> httpx.Response:
        files = {"image": ("in.png", image if image is not None else png_bytes(), "image/png")}
        return client.post("/v1/videos", files=files, data={k: str(v) for k, v in fields.items()})

    def wait_job(
        self,
        client: httpx.Client,
        job_id: str,
        states: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
        timeout: float = 120,
        until: Any = None,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = client.get(f"/v1/videos/{job_id}").json()
            if job["state"] in states and (until is None or until(job)):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} not in {states} after {timeout} s: {job}\n{self.log()}")


class WorkerHost(Service):
    """`i2v workers` as a worker-only host runs it: its own process tree and host name (`node_name`), the
    shared job store and outputs folder, no HTTP. Ready once all its slots have a loaded worker."""

    command = "workers"

    def __init__(self, root: Path, models_dir: Path, slots: int, **settings: Any):
        super().__init__(root, models_dir, **settings)
        self.name, self.slots = settings["node_name"], slots

    def live(self) -> list[dict[str, Any]]:
        from sqlalchemy.exc import DBAPIError

        from i2v.jobs import JobStore

        store = JobStore(self.db_url)
        try:
            return [w for w in store.live_workers() if w["host"] == self.name]
        except DBAPIError:  # no tables yet: the first process to start creates them
            return []
        finally:
            store.dispose()

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"i2v workers exited with {self.process.returncode}:\n{self.log()}")
            if len([w for w in self.live() if w["state"] in ("ready", "busy")]) >= self.slots:
                return
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not ready after {timeout} s:\n{self.log()}")

    def tree(self) -> list[int]:
        """The supervisor and every process under it (a card group's followers included)."""
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children(pid)
        return found
