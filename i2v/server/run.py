"""`i2v serve`: the API under uvicorn plus the supervised workers, with a graceful SIGTERM.
`i2v workers`: the supervised workers alone (a worker host of a many-host deployment: no HTTP, the
job store at I2V_DATABASE_URL, the outputs folder shared with the API hosts).

On SIGTERM (or Ctrl-C) the service first drains while it still answers: new submissions and
/health/ready get 503, the workers finish their running job within `drain_grace_s` or hand it back
to the queue, and only then does uvicorn stop; the exit status is 0 and no worker is left behind.
A second signal skips the wait.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from i2v.jobs import JobStore, ServiceSettings

log = logging.getLogger("i2v.serve")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, service: Any):
        super().__init__(config)
        self.service = service
        self._signalled = False

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, _frame: Any) -> None:
        if self._signalled:  # second signal: stop now
            self.force_exit = self.should_exit = True
            return
        self._signalled = True
        log.warning(
            "%s: draining (grace %.0f s)", signal.Signals(sig).name, self.service.settings.drain_grace_s
        )
        self.service.draining.set()
        threading.Thread(target=self._drain, name="drain", daemon=True).start()

    def _drain(self) -> None:
        try:
            if self.service.supervisor is not None:
                self.service.supervisor.drain(self.service.settings.drain_grace_s)
        finally:
            self.should_exit = True


def _open(settings: ServiceSettings | None) -> tuple[ServiceSettings, JobStore]:
    """The settings (from the environment unless given), logging, and the job store with its schema."""
    settings = settings or ServiceSettings()
    logging.basicConfig(
        level=os.environ.get("I2V_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    store = JobStore.from_settings(settings)
    store.create_schema()
    return settings, store


def serve(settings: ServiceSettings | None = None) -> int:
    from i2v.server.app import create_app
    from i2v.server.supervisor import Supervisor, worker_slots

    settings, store = _open(settings)
    supervisor = Supervisor(settings, store, worker_slots(settings)) if settings.spawn_workers else None
    app = create_app(settings, store, supervisor)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
    server = DrainingServer(config, app.state.service)
    sock = config.bind_socket()  # a taken port fails here, before any worker is started
    log.info(
        "serving on http://%s:%d (%s)",
        settings.host,
        settings.port,
        f"{len(supervisor.children)} worker(s)" if supervisor else "no workers started here",
    )
    server.run(sockets=[sock])
    return 0


def run_workers(settings: ServiceSettings | None = None) -> int:
    """Supervise this host's workers until SIGTERM / SIGINT, then drain them; exit 0."""
    from i2v.server.supervisor import Supervisor, worker_slots

    settings, store = _open(settings)
    (settings.outputs_path() / "videos").mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(settings, store, worker_slots(settings))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info(
        "%s: %d worker slot(s) on %s",
        settings.host_name(),
        len(supervisor.children),
        store.engine.url.render_as_string(hide_password=True),
    )
    supervisor.start()
    stop.wait()
    log.warning("draining (grace %.0f s)", settings.drain_grace_s)
    supervisor.drain(settings.drain_grace_s)
    store.dispose()
    return 0
