"""The /v1 API in OpenAI's Videos shape (the `openai` SDK's ``client.videos``) plus ours.

| route                                   | SDK call                  | what it does                                |
| --------------------------------------- | ------------------------- | ------------------------------------------- |
| POST /v1/videos                         | create, create_and_poll   | admit a job (multipart; `i2v.server.wire`)  |
| POST /v1/videos/extensions              | extend                    | continue a completed video from its last frame |
| GET /v1/videos/{id}                     | retrieve, poll            | the Video object, `openai-poll-after-ms`    |
| GET /v1/videos                          | list                      | after / limit / order (+ our `state`)       |
| GET /v1/videos/{id}/content?variant=    | download_content          | video (mp4), thumbnail (WebP), spritesheet (JPEG) |
| DELETE /v1/videos/{id}                  | delete                    | cancel a queued or running job; delete a finished one |
| GET /v1/videos/{id}/events              | -                         | server-sent progress until the job ends     |
| POST /v1/videos/{id}/remix, /edits, /characters, GET /characters/{id} | remix, edit, create_character, get_character | 501 not_implemented |
| GET /v1/models, GET /v1/loras           | -                         | the catalogue with modes; the LoRA folder   |
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import os
import time
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from i2v.jobs import TERMINAL
from i2v.jobs.paths import PREVIEWS, is_job_id, preview_path, upload_paths, video_path
from i2v.previews import VARIANT_MEDIA, previews_from_mp4
from i2v.server.admission import admit
from i2v.server.auth import owner_of, require_key
from i2v.server.errors import ApiError
from i2v.server.fields import list_loras
from i2v.server.fit import describe_models
from i2v.server.form import read_submission
from i2v.server.views import poll_after_ms, video_object
from i2v.server.wire import FIELDS, NOT_IN_EXTENSION, idempotency_key

EVENT_POLL_S = 0.25
KEEPALIVE_S = 10.0
VARIANTS = ("video", *PREVIEWS)


def _form_schema(extension: bool) -> dict[str, Any]:
    kinds = {"int": "integer", "float": "number", "image": "string", "media": "string"}
    properties = {
        f.name: {"type": kinds.get(f.kind, "string")}
        | ({"format": "binary"} if f.kind in ("image", "media") else {})
        | ({"deprecated": True, "description": f"alias of {f.alias_of}"} if f.alias_of else {})
        for f in FIELDS
        if f.kind != "keyframes" and not (extension and f.name in NOT_IN_EXTENSION)
    }
    properties["keyframes[N][image]"] = {"type": "string", "format": "binary"}
    properties["keyframes[N][frame]"] = {"type": "integer"}
    properties["keyframes[N][strength]"] = {"type": "number"}
    if extension:
        properties["video[id]"] = {"type": "string", "description": "the completed video to extend"}
    return {
        "type": "object",
        "required": ["prompt", "seconds"] if extension else [],
        "properties": properties,
    }


def _service(request: Request) -> Any:
    return request.app.state.service


def _row(service: Any, job_id: str) -> dict[str, Any]:
    row = service.store.get(job_id) if is_job_id(job_id) else None
    if row is None or row.get("deleted_at") is not None:
        raise ApiError(404, "not_found", f"no video {job_id!r}", field="id", value=job_id)
    return row


def view(service: Any, row: dict[str, Any]) -> dict[str, Any]:
    position = service.store.queue_position(row["seq"]) if row["state"] == "queued" else None
    typical = service.store.recent_run_seconds() if row["state"] == "queued" else None
    return video_object(
        row, position=position, typical_run_s=typical, workers=len(service.ready_workers()) or 1
    )


async def _admit(request: Request, extension: bool) -> JSONResponse:
    service = _service(request)
    await run_in_threadpool(service.check_accepting)
    key = idempotency_key(request)
    submission = await read_submission(request, service.settings.max_upload_bytes, extension=extension)
    row, created = await run_in_threadpool(
        admit, service, submission, owner_of(request), key, extension=extension
    )
    body = await run_in_threadpool(view, service, row)
    headers = {"Location": f"/v1/videos/{row['id']}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=202, headers=headers)


async def create(request: Request) -> JSONResponse:
    return await _admit(request, extension=False)


async def extend(request: Request) -> JSONResponse:
    return await _admit(request, extension=True)


def retrieve(request: Request, job_id: str) -> JSONResponse:
    service = _service(request)
    body = view(service, _row(service, job_id))
    wait = poll_after_ms(body)
    return JSONResponse(body, headers={"openai-poll-after-ms": str(wait)} if wait is not None else None)


def history(
    request: Request,
    after: Annotated[str | None, Query(description="the id of the last video of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
) -> dict[str, Any]:
    service = _service(request)
    after_seq = None
    if after is not None:
        anchor = service.store.get(after) if is_job_id(after) else None
        if anchor is None:
            raise ApiError(422, "invalid_field", f"`after`: no video {after!r}", field="after", value=after)
        after_seq = anchor["seq"]
    rows = service.store.page(limit + 1, after_seq=after_seq, state=state, order=order)
    more = len(rows) > limit
    data = [view(service, r) for r in rows[:limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }


async def events(request: Request, job_id: str) -> StreamingResponse:
    service = _service(request)
    await run_in_threadpool(_row, service, job_id)

    async def stream():
        last, last_sent, seq = None, time.monotonic(), 0
        while True:
            row = await run_in_threadpool(service.store.get, job_id)
            body = await run_in_threadpool(view, service, row)
            snapshot = (
                body["state"],
                body["progress"],
                body["step"],
                body["queue_position"],
                body["cancel_requested"],
            )
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


async def content(request: Request, job_id: str, variant: str = "video") -> FileResponse:
    service = _service(request)
    if variant not in VARIANTS:
        close = difflib.get_close_matches(variant, VARIANTS, n=1)
        raise ApiError(
            422,
            "invalid_field",
            f"`variant` = {variant!r} is not one of {', '.join(VARIANTS)}",
            field="variant",
            value=variant,
            valid=list(VARIANTS),
            nearest=close[0] if close else "video",
        )
    row = await run_in_threadpool(_row, service, job_id)
    if row["state"] != "succeeded":
        raise ApiError(
            409,
            "not_finished" if row["state"] not in TERMINAL else "no_video",
            f"the job is {row['state']}; its video exists once it has completed",
            field="id",
            value=job_id,
        )
    mp4 = video_path(service.outputs, row["id"])  # made from the validated id, never from the request
    if not mp4.is_file():
        raise ApiError(410, "video_gone", "the job completed but its video file is no longer on the server")
    if variant == "video":
        return FileResponse(
            mp4, media_type="video/mp4", filename=f"{row['id']}.mp4", content_disposition_type="inline"
        )
    path = preview_path(service.outputs, row["id"], variant)
    if not path.is_file():  # a video made before previews existed
        await run_in_threadpool(
            previews_from_mp4, mp4, {v: preview_path(service.outputs, row["id"], v) for v in PREVIEWS}
        )
    return FileResponse(
        path, media_type=VARIANT_MEDIA[variant], filename=path.name, content_disposition_type="inline"
    )


def delete(request: Request, job_id: str) -> dict[str, Any]:
    service = _service(request)
    _row(service, job_id)
    done = service.store.delete(job_id)
    if done is None:  # deleted by someone else meanwhile
        raise ApiError(404, "not_found", f"no video {job_id!r}", field="id", value=job_id)
    action, row = done
    if action != "cancel_requested":  # the worker removes a running job's uploads when it stops
        remove_files(service.outputs, row["id"], results=action == "deleted")
    return {
        "id": row["id"],
        "object": "video.deleted",
        "deleted": True,
        "state": row["state"],
        "cancel_requested": bool(row["cancel_requested"]),
    }


def remove_files(outputs: Any, job_id: str, results: bool) -> None:
    paths = upload_paths(outputs, job_id)
    if results:
        paths += [video_path(outputs, job_id), *(preview_path(outputs, job_id, v) for v in PREVIEWS)]
    for path in paths:
        with contextlib.suppress(OSError):
            os.remove(path)


def not_implemented(request: Request) -> None:
    name = next(w for w in ("remix", "edits", "characters") if f"/{w}" in request.url.path)
    raise ApiError(
        501,
        "not_implemented",
        f"videos.{name} is not served here: remix, edits and characters need a video-to-video model "
        "with a hosted asset store; to continue a video use videos.extend, to start from a video use "
        "an ic-lora mode with reference_video",
    )


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
        "fields": {f.name: {"ours": f.ours, "sdk": f.sdk, "alias_of": f.alias_of} for f in FIELDS},
        "loras": list_loras(service.settings.loras_path()),
        "models": describe_models(budget, service.settings),
    }


def loras(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": list_loras(_service(request).settings.loras_path())}


def install(app: FastAPI) -> None:
    """Add the /v1 routes to `app` itself (not through an included router), so `app.routes` lists
    every route with its full path and its key check."""
    auth = [Depends(require_key)]
    add = app.add_api_route
    errors = {413: {}, 415: {}, 422: {}, 429: {}, 503: {}}
    for path, endpoint, summary, extension in (
        ("/v1/videos", create, "Create a video job (OpenAI Videos: create)", False),
        (
            "/v1/videos/extensions",
            extend,
            "Extend a completed video from its last frame (videos.extend)",
            True,
        ),
    ):
        add(
            path,
            endpoint,
            methods=["POST"],
            status_code=202,
            dependencies=auth,
            tags=["videos"],
            summary=summary,
            response_class=JSONResponse,
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": _form_schema(extension)}},
                }
            },
            responses={202: {"description": "accepted: the Video object"}, **errors},
        )
    for path, methods in (
        ("/v1/videos/edits", ["POST"]),
        ("/v1/videos/characters", ["POST"]),
        ("/v1/videos/characters/{character_id}", ["GET"]),
        ("/v1/videos/{job_id}/remix", ["POST"]),
    ):
        add(
            path,
            not_implemented,
            methods=methods,
            dependencies=auth,
            tags=["videos"],
            summary="Not served (501)",
            responses={501: {}},
        )
    add("/v1/videos", history, methods=["GET"], dependencies=auth, tags=["videos"], summary="List videos")
    add(
        "/v1/videos/{job_id}",
        retrieve,
        methods=["GET"],
        dependencies=auth,
        tags=["videos"],
        summary="The Video object: status, progress, ETA, plan, error",
        response_class=JSONResponse,
    )
    add(
        "/v1/videos/{job_id}",
        delete,
        methods=["DELETE"],
        dependencies=auth,
        tags=["videos"],
        summary="Cancel a queued (now) or running (next step) job; delete a finished one",
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
        summary="The mp4 (H.264), its first frame (thumbnail, WebP) or a grid of frames (spritesheet, JPEG)",
        response_class=FileResponse,
        responses={200: {"content": {"video/mp4": {}, "image/webp": {}, "image/jpeg": {}}}, 409: {}, 422: {}},
    )
    add(
        "/v1/models",
        models,
        methods=["GET"],
        dependencies=auth,
        tags=["models"],
        summary="The catalogue: weights present, what fits this device, modes and their inputs",
    )
    add("/v1/loras", loras, methods=["GET"], dependencies=auth, tags=["models"], summary="The LoRA folder")
