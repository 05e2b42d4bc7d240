"""The FastAPI app: /v1 API, health and readiness, metrics, OpenAPI, the web page.

Torch-free: this process validates, plans (the planner is pure) and stores; workers run models.
`create_app` builds an app around a job store and, for `i2v serve`, the worker supervisor; the
lifespan creates the schema and starts the workers, and shuts them down on exit.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from i2v.jobs import JobStore, ServiceSettings
from i2v.server import errors, metrics, routes
from i2v.server.auth import digest, require_key
from i2v.server.fit import BudgetCache
from i2v.server.limits import BodyLimit, BodyTooLargeError, too_large
from i2v.server.wire import body_limit

STATIC = Path(__file__).with_name("static")
READY_CACHE_S = 0.5


class Service:
    """What the routes share: settings, store, supervisor, readiness, draining, counters."""

    def __init__(self, settings: ServiceSettings, store: JobStore, supervisor: Any = None):
        self.settings, self.store, self.supervisor = settings, store, supervisor
        self.outputs = settings.outputs_path()
        self.key_digests = [digest(k) for k in settings.key_list()]
        self.draining = threading.Event()
        self.counters = metrics.RequestCounters()
        self.budget = BudgetCache(store, settings.device)
        self._ready: tuple[float, list[dict[str, Any]]] | None = None

    def workers(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        if self._ready is None or now - self._ready[0] > READY_CACHE_S:
            self._ready = (now, self.store.live_workers())
        return self._ready[1]

    def ready_workers(self) -> list[dict[str, Any]]:
        return [w for w in self.workers() if w["state"] in ("ready", "busy") and w["model"]]

    def readiness(self) -> tuple[bool, str]:
        if self.draining.is_set():
            return False, "draining: the service is shutting down"
        if self.ready_workers():
            return True, "ready"
        failed = [w for w in self.workers() if w["state"] == "failed"]
        if failed:
            return False, f"no worker has its model loaded; {failed[0]['id']}: {failed[0]['error']}"
        return False, "no worker has its model loaded yet (starting)"

    def check_accepting(self) -> None:
        ready, reason = self.readiness()
        if not ready:
            code = "draining" if self.draining.is_set() else "not_ready"
            raise errors.ApiError(
                503, code, reason, headers={"Retry-After": "5" if code == "not_ready" else "30"}
            )


class Observe:
    """ASGI middleware: count answers by route template and status; add nosniff to every answer."""

    def __init__(self, app: ASGIApp, service: Service):
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = [500]

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-content-type-options", b"nosniff")]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.service.counters.add(scope["method"], route, status[0])


def create_app(
    settings: ServiceSettings | None = None, store: JobStore | None = None, supervisor: Any = None
) -> FastAPI:
    settings = settings or ServiceSettings()
    store = store or JobStore.from_settings(settings)
    service = Service(settings, store, supervisor)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store.create_schema()
        (service.outputs / "uploads").mkdir(parents=True, exist_ok=True)
        (service.outputs / "videos").mkdir(parents=True, exist_ok=True)
        if supervisor is not None:
            supervisor.start()
        try:
            yield
        finally:
            service.draining.set()
            if supervisor is not None:
                supervisor.drain(settings.drain_grace_s)
            store.dispose()

    app = FastAPI(
        title="i2v-deploy",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        description="Image-to-video jobs in OpenAI's Videos API shape (the `openai` SDK's client.videos): "
        "submit an image and a prompt, follow the progress, download an H.264 mp4, its thumbnail or "
        'spritesheet. Errors: {"error": {code, message, field, value, valid, nearest, param, type}}.',
    )
    app.state.service = service
    errors.install(app)

    @app.exception_handler(BodyTooLargeError)
    async def _too_large(_: Request, __: BodyTooLargeError) -> JSONResponse:
        return too_large(None, body_limit(settings.max_upload_bytes)).response()

    routes.install(app)
    _health_routes(app, service)
    _operator_routes(app, service)
    _page_routes(app)
    if settings.cors_list():
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_list(),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            max_age=600,
        )
    app.add_middleware(BodyLimit, max_bytes=body_limit(settings.max_upload_bytes))
    app.add_middleware(Observe, service=service)
    return app


def _health_routes(app: FastAPI, service: Service) -> None:
    @app.get("/health/live", tags=["health"], summary="The API process is up")
    def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get(
        "/health/ready", tags=["health"], summary="Ready when a worker has its model loaded and not draining"
    )
    def ready() -> JSONResponse:
        ok, reason = service.readiness()
        workers = [
            {k: w[k] for k in ("id", "slot", "state", "model", "jobs_done")} for w in service.workers()
        ]
        if ok:
            return JSONResponse({"status": "ready", "workers": workers})
        code = "draining" if service.draining.is_set() else "not_ready"
        body = errors.ApiError(503, code, reason).body() | {"workers": workers}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


def _operator_routes(app: FastAPI, service: Service) -> None:
    @app.get(
        "/metrics",
        tags=["operations"],
        dependencies=[Depends(require_key)],
        response_class=PlainTextResponse,
        summary="Prometheus metrics",
    )
    def scrape() -> PlainTextResponse:
        text = metrics.render(
            service.store,
            service.counters,
            queue_size=service.settings.queue_size,
            workers=service.workers(),
            draining=service.draining.is_set(),
            restarts=service.supervisor.restarts if service.supervisor else 0,
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get(
        "/openapi.json", tags=["operations"], dependencies=[Depends(require_key)], include_in_schema=False
    )
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())


def _page_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(
            STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
