"""POST /v1/videos and /v1/videos/extensions after the form is read: stage the media under server-made
names, turn the wire's terms into the model's (`i2v.server.fields`), validate against the catalogue
and the planner, and admit the job if the queue has room. Any refusal removes what was staged.

Admission is exact: the queue is counted and the job inserted in one write transaction (SQLite
BEGIN IMMEDIATE / PostgreSQL row lock), so N concurrent submissions against a queue of Q free
places admit exactly Q.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import secrets
import uuid
from typing import Any

from i2v import catalogue
from i2v.images import FORMATS
from i2v.jobs import IdempotencyConflictError, NewJob, QueueFullError
from i2v.planner import PlanRefusedError, plan_for
from i2v.request import InvalidRequestError, require_prompt, resolve
from i2v.server.errors import ApiError
from i2v.server.fields import frames_for_seconds, lora_files, preset_value, request_error
from i2v.server.fit import weights_present
from i2v.server.form import Submission
from i2v.server.media import MediaInput
from i2v.server.staging import Staging
from i2v.server.wire import MEDIA_KIND


def admit(
    service: Any, submission: Submission, owner: str, key: str | None, *, extension: bool = False
) -> tuple[dict[str, Any], bool]:
    """(job row, created); raises ApiError for every refusal."""
    settings = service.settings
    fields = dict(submission.fields)
    job_id = uuid.uuid4().hex
    notes = list(submission.notes)
    extras: dict[str, Any] = {}
    with Staging(service, job_id) as staging:
        source = _stage_source(staging, submission, fields, notes) if extension else None
        spec = _spec(fields.pop("model", None) or (source or {}).get("model") or settings.model)
        preset = fields.pop("preset", settings.preset)
        _check_prompts(fields, settings.max_prompt_chars)
        fields.setdefault("seed", secrets.randbelow(2**31))
        if submission.image is not None:
            image_path = staging.put(submission.image, "image")
        elif source is not None:
            image_path = staging.put(MediaInput("video", data=source["last_frame"]), "image")
        else:
            image_path = ""
        for name, media in submission.media.items():
            fields[name] = staging.put(media, MEDIA_KIND[name], name)
        if submission.keyframes:
            fields["keyframes"] = [
                {
                    "path": staging.put(k.image, "image", f"keyframe-{n}"),
                    "frame": k.frame,
                    "strength": k.strength,
                }
                for n, k in enumerate(submission.keyframes)
            ]
        hidden = dict(staging.paths)
        if submission.loras:
            fields["loras"], names = lora_files(submission.loras, settings.loras_path())
            hidden.update(names)
        if submission.seconds is not None:
            fps = fields.get("fps", preset_value(spec, preset, "fps"))
            if isinstance(fps, int) and 1 <= fps <= 60:
                fields["frames"], note = frames_for_seconds(spec, submission.seconds, fps, plus_one=extension)
                notes.append(note)
        request = _resolve(spec, preset, fields, submission, hidden)
        try:
            require_prompt(spec, request)
        except InvalidRequestError as exc:
            raise request_error(exc, submission.names, hidden) from None
        _check_media(spec, request, submission, staging, image_path)
        if not spec.tiny and not weights_present(spec, settings.models_dir):
            raise ApiError(
                422,
                "weights_missing",
                f"weights for {spec.id} are not on this server; an operator runs `i2v fetch {spec.id}`",
                field="model",
                value=spec.id,
            )
        budget, _source = service.budget.get()
        try:
            plan = plan_for(spec, request, budget, settings)
        except PlanRefusedError as exc:
            first = re.search(r"--(\w+)", exc.suggestions[0]) if exc.suggestions else None
            raise ApiError(
                422, "does_not_fit", str(exc), field=first.group(1) if first else None, valid=exc.suggestions
            ) from None
        idempotency = f"{owner}:{key}" if key is not None else None
        if idempotency is None:
            depth = service.store.queue_depth()  # cheap early refusal; the insert re-checks exactly
            if depth >= settings.queue_size:
                raise queue_full(service, depth)
        if source is not None:
            extras["extends"] = {"id": source["id"], "frames": source["frames"], "path": source["path"]}
        if notes:
            extras["notes"] = notes
        job = NewJob(
            id=job_id,
            model=spec.id,
            params=request.to_dict(),
            image_path=image_path,
            request_hash=hashlib.sha256(f"{extension}:{submission.digest}".encode()).hexdigest(),
            plan=plan.to_dict(),
            idempotency_key=idempotency,
            extras=extras or None,
        )
        try:
            row, created = service.store.submit(job, settings.queue_size)
        except QueueFullError as exc:
            raise queue_full(service, exc.depth) from None
        except IdempotencyConflictError as exc:
            raise ApiError(
                409, "idempotency_key_reused", str(exc), field="Idempotency-Key", value=key
            ) from None
        if created:
            staging.commit()
    return row, created


def _resolve(spec: Any, preset: str, fields: dict[str, Any], submission: Submission, hidden: dict[str, str]):
    size = (fields["width"], fields["height"]) if submission.names.get("width") == "size" else None

    def valid_size(width: int, height: int) -> tuple[int, int] | None:
        for _ in range(3):  # each side's nearest value in turn, until the model takes both
            try:
                resolve(spec, preset, **{**fields, "width": width, "height": height})
                return width, height
            except InvalidRequestError as exc:
                if exc.field not in ("width", "height") or exc.nearest is None:
                    return (width, height) if exc.field not in ("width", "height") else None
                width, height = (exc.nearest, height) if exc.field == "width" else (width, exc.nearest)
        return None

    try:
        return resolve(spec, preset, **fields)
    except InvalidRequestError as exc:
        raise request_error(exc, submission.names, hidden, size, valid_size) from None


def _check_media(spec: Any, request: Any, submission: Submission, staging: Staging, image_path: str) -> None:
    mode = spec.adapter.mode(request)
    if not image_path and (mode is None or mode.image == "required"):
        runs = f"mode {mode.name!r}" if mode is not None else spec.id
        raise ApiError(
            422,
            "missing_field",
            f"`input_reference` is required: {runs} starts from an image (a PNG, JPEG or WebP file part, "
            "or a data: URL in input_reference[image_url])",
            field="input_reference",
            valid=list(FORMATS),
        )
    if image_path and mode is not None and mode.image == "unused":
        raise ApiError(
            422,
            "invalid_field",
            f"`input_reference` is not taken by mode {mode.name!r}: it starts from its source video",
            field="input_reference",
        )
    video = staging.checked.get("video")
    if video is not None and video.duration_s is not None:
        for name in ("start_time", "end_time"):
            value = getattr(request, name)
            if value is not None and not 0 <= value <= video.duration_s:
                raise ApiError(
                    422,
                    "invalid_field",
                    f"`{name}` = {value:g} is outside the source video (0..{video.duration_s:.3g} s)",
                    field=name,
                    value=value,
                    valid={"min": 0, "max": round(video.duration_s, 3)},
                    nearest=round(min(max(value, 0.0), video.duration_s), 3),
                )


def _stage_source(staging: Staging, submission: Submission, fields: dict[str, Any], notes: list[str]) -> dict:
    """An extension's source: staged, read (frames, rate, size, last frame); size and fps set from it."""
    from PIL import Image

    from i2v.stitch import read_source

    if submission.source is None:
        raise ApiError(
            422,
            "missing_field",
            "`video` is required: the completed video to extend (video[id]) or an mp4 file part",
            field="video",
        )
    if submission.seconds is None:
        raise ApiError(
            422, "missing_field", "`seconds` is required: how long the extension runs", field="seconds"
        )
    media = submission.source
    path = staging.put(media, "video", "extends")  # a video id must name a completed video here
    model = staging.service.store.get(media.video_id)["model"] if media.video_id is not None else None
    try:
        clip = read_source(path)
    except Exception as exc:  # noqa: BLE001 - an unreadable upload
        raise ApiError(
            422, "invalid_video", f"`{media.field}` could not be decoded: {exc}", field=media.field
        ) from None
    fps = round(float(clip.fps)) if clip.fps else 0
    if not 1 <= fps <= 60:
        raise ApiError(
            422,
            "invalid_video",
            f"`{media.field}` runs at {float(clip.fps):g} fps; 1..60 can be extended",
            field=media.field,
        )
    if not math.isclose(float(clip.fps), fps, abs_tol=0.01):
        notes.append(f"the source runs at {float(clip.fps):g} fps; extended at {fps}")
    fields.update(width=clip.width, height=clip.height, fps=fps)
    buffer = io.BytesIO()
    Image.fromarray(clip.last_frame).save(buffer, format="PNG")
    return {
        "id": media.video_id,
        "model": model or fields.get("model"),
        "frames": clip.frames,
        "path": path,
        "last_frame": buffer.getvalue(),
    }


def _check_prompts(fields: dict[str, Any], max_chars: int) -> None:
    for name in ("prompt", "negative_prompt"):
        if len(fields.get(name, "")) > max_chars:
            raise ApiError(
                422,
                "invalid_field",
                f"`{name}` is {len(fields[name])} characters; the limit is {max_chars}",
                field=name,
                valid={"max_chars": max_chars},
            )


def _spec(model_id: Any):
    try:
        return catalogue.get(str(model_id))
    except catalogue.UnknownModelError as exc:
        raise ApiError(
            422,
            "invalid_field",
            str(exc),
            field="model",
            value=model_id,
            valid=[s.id for s in catalogue.all_specs()],
        ) from None


def queue_full(service: Any, depth: int) -> ApiError:
    # A place frees up when a worker takes the next job: about one run time divided by the workers.
    typical = service.store.recent_run_seconds() or 10.0
    workers = max(1, len(service.ready_workers()))
    retry = max(1, min(600, math.ceil(typical / workers)))
    return ApiError(
        429,
        "queue_full",
        f"the queue is full ({depth} of {service.settings.queue_size} jobs "
        f"waiting); retry in about {retry} s",
        valid={"queue_size": service.settings.queue_size},
        headers={"Retry-After": str(retry)},
    )
