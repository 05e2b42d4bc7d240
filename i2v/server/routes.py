"""The /v1 API: submit, follow, download, cancel and list videos; the model catalogue."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from i2v.jobs import TERMINAL, NotCancellableError
from i2v.jobs.paths import is_job_id, video_path
from i2v.server.admission import admit
from i2v.server.auth import owner_of, require_key
from i2v.server.errors import ApiError
from i2v.server.fit import describe_models
from i2v.server.limits import FORM_FIELDS, idempotency_key, read_submission
from i2v.server.views import job_view

EVENT_POLL_S = 0.25
KEEPALIVE_S = 10.0

_FORM_SCHEMA = {
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {"type": "string", "format": "binary", "description": "PNG, JPEG or WebP"},
        "model": {
            "type": "string",
            "description": "catalogue id (GET /v1/models); default: the served model",
        },
        "preset": {"type": "string", "enum": ["fast", "standard", "hq"]},
        "prompt": {"type": "string"},
        "negative_prompt": {"type": "string"},
        **{name: {"type": "integer"} for name in ("height", "width", "frames", "steps", "fps", "seed")},
        "guidance": {"type": "number"},
    },
}
assert set(_FORM_SCHEMA["properties"]) == set(FORM_FIELDS)


def _service(request: Request) -> Any:
    return request.app.state.service


def _row(service: Any, job_id: str) -> dict[str, Any]:
    row = service.store.get(job_id) if is_job_id(job_id) else None
    if row is None:
        raise ApiError(404, "not_found", f"no video job {job_id!r}", field="id", value=job_id)
    return row


def view(service: Any, row: dict[str, Any]) -> dict[str, Any]:
    position = service.store.queue_position(row["seq"]) if row["state"] == "queued" else None
    typical = service.store.recent_run_seconds() if row["state"] == "queued" else None
    return job_view(row, position=position, typical_run_s=typical, workers=len(service.ready_workers()) or 1)


async def submit(request: Request) -> JSONResponse:
    service = _service(request)
    await run_in_threadpool(service.check_accepting)
    key = idempotency_key(request)
    submission = await read_submission(request)
    row, created = await run_in_threadpool(admit, service, submission, owner_of(request), key)
    body = await run_in_threadpool(view, service, row)
    headers = {"Location": f"/v1/videos/{row['id']}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=202, headers=headers)


def history(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[int | None, Query(ge=0, description="next_cursor of the previous page")] = None,
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
) -> dict[str, Any]:
    service = _service(request)
    rows = service.store.page(limit + 1, before_seq=cursor, state=state)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [view(service, r) for r in rows], "next_cursor": rows[-1]["seq"] if more else None}


def status(request: Request, job_id: str) -> dict[str, Any]:
    service = _service(request)
    return view(service, _row(service, job_id))


async def events(request: Request, job_id: str) -> StreamingResponse:
    service = _service(request)
    await run_in_threadpool(_row, service, job_id)

    async def stream():
        last, last_sent, seq = None, time.monotonic(), 0
        while True:
            row = await run_in_threadpool(service.store.get, job_id)
            body = await run_in_threadpool(view, service, row)
            snapshot = (body["state"], body["progress"], body["queue_position"], body["cancel_requested"])
            if snapshot != last:
                last, last_sent, seq = snapshot, time.monotonic(), seq + 1
                kind = "end" if body["state"] in TERMINAL else "progress"
                yield f"id: {seq}\nevent: {kind}\ndata: {json.dumps(body)}\n\n"
                if kind == "end":
                    return
            elif time.monotonic() - last_sent > KEEPALIVE_S:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"
            if service.draining.is_set():
                yield "event: draining\ndata: {}\n\n"  # the client reconnects to another replica or later
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(EVENT_POLL_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def content(request: Request, job_id: str) -> FileResponse:
    service = _service(request)
    row = _row(service, job_id)
    if row["state"] != "succeeded":
        raise ApiError(
            409,
            "not_finished" if row["state"] not in TERMINAL else "no_video",
            f"the job is {row['state']}; its video exists once it has succeeded",
            field="id",
            value=job_id,
        )
    path = video_path(service.outputs, row["id"])  # made from the validated id, never from the request
    if not path.is_file():
        raise ApiError(410, "video_gone", "the job succeeded but its video file is no longer on the server")
    return FileResponse(
        path, media_type="video/mp4", filename=f"{row['id']}.mp4", content_disposition_type="inline"
    )


def cancel(request: Request, job_id: str) -> JSONResponse:
    service = _service(request)
    _row(service, job_id)
    try:
        row = service.store.cancel(job_id)
    except NotCancellableError as exc:
        raise ApiError(
            409, "not_cancellable", f"the job is already {exc.state}", field="id", value=job_id
        ) from None
    if row["state"] == "cancelled":
        service.discard_upload(row)
    return JSONResponse(view(service, row), status_code=200 if row["state"] == "cancelled" else 202)


def models(request: Request) -> dict[str, Any]:
    service = _service(request)
    budget, source = service.budget.get()
    return {
        "device": {
            "kind": budget.kind,
            "name": budget.name,
            "total_mib": budget.total_mib,
            "free_mib": budget.free_mib,
            "measured_by": source,
        },
        "default_model": service.settings.model,
        "default_preset": service.settings.preset,
        "queue_size": service.settings.queue_size,
        "max_upload_bytes": service.settings.max_upload_bytes,
        "max_image_pixels": service.settings.max_image_pixels,
        "models": describe_models(budget, service.settings),
    }


def install(app: FastAPI) -> None:
    """Add the /v1 routes to `app` itself (not through an included router), so `app.routes` lists
    every route with its full path and its key check."""
    auth = [Depends(require_key)]
    add = app.add_api_route
    add(
        "/v1/videos",
        submit,
        methods=["POST"],
        status_code=202,
        dependencies=auth,
        tags=["videos"],
        summary="Submit an image-to-video job",
        response_class=JSONResponse,
        openapi_extra={
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _FORM_SCHEMA}}}
        },
        responses={
            202: {"description": "accepted: the job, with its id"},
            413: {},
            415: {},
            422: {},
            429: {},
            503: {},
        },
    )
    add(
        "/v1/videos",
        history,
        methods=["GET"],
        dependencies=auth,
        tags=["videos"],
        summary="History, newest first, paged",
    )
    add(
        "/v1/videos/{job_id}",
        status,
        methods=["GET"],
        dependencies=auth,
        tags=["videos"],
        summary="State, progress, ETA, plan, error",
    )
    add(
        "/v1/videos/{job_id}",
        cancel,
        methods=["DELETE"],
        dependencies=auth,
        tags=["videos"],
        summary="Cancel: a queued job at once, a running one at its next step",
        response_class=JSONResponse,
    )
    add(
        "/v1/videos/{job_id}/events",
        events,
        methods=["GET"],
        dependencies=auth,
        tags=["videos"],
        summary="Server-sent progress events until the job ends",
        response_class=StreamingResponse,
    )
    add(
        "/v1/videos/{job_id}/content",
        content,
        methods=["GET"],
        dependencies=auth,
        tags=["videos"],
        summary="The mp4 (H.264), once the job succeeded",
        response_class=FileResponse,
        responses={200: {"content": {"video/mp4": {}}}, 409: {}},
    )
    add(
        "/v1/models",
        models,
        methods=["GET"],
        dependencies=auth,
        tags=["models"],
        summary="The catalogue: weights present, what fits this device",
    )
