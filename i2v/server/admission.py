"""POST /v1/videos after the form is read: validate against the catalogue and the planner, check the
image, store the upload under a server-made name, and admit the job if the queue has room.

Admission is exact: the queue is counted and the job inserted in one write transaction (SQLite
BEGIN IMMEDIATE / PostgreSQL row lock), so N concurrent submissions against a queue of Q free
places admit exactly Q.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import uuid
from typing import Any

from i2v import catalogue
from i2v.jobs import IdempotencyConflictError, NewJob, QueueFullError
from i2v.jobs.paths import upload_path
from i2v.planner import PlanRefusedError, plan_for
from i2v.request import InvalidRequestError, resolve
from i2v.server.errors import ApiError
from i2v.server.fit import weights_present
from i2v.server.limits import Submission, inspect_image


def admit(service: Any, submission: Submission, owner: str, key: str | None) -> tuple[dict[str, Any], bool]:
    """(job row, created); raises ApiError for every refusal."""
    settings = service.settings
    fields = dict(submission.fields)
    spec = _spec(fields.pop("model", settings.model))
    preset = fields.pop("preset", settings.preset)
    for name in ("prompt", "negative_prompt"):
        if len(fields.get(name, "")) > settings.max_prompt_chars:
            raise ApiError(
                422,
                "invalid_field",
                f"`{name}` is {len(fields[name])} characters; the limit is {settings.max_prompt_chars}",
                field=name,
                valid={"max_chars": settings.max_prompt_chars},
            )
    fields.setdefault("seed", secrets.randbelow(2**31))
    try:
        request = resolve(spec, preset, **fields)
    except InvalidRequestError as exc:
        raise ApiError(
            422,
            "invalid_field",
            str(exc),
            field=exc.field,
            value=exc.value,
            valid=exc.rule,
            nearest=exc.nearest,
        ) from None
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
    image_format = inspect_image(
        submission.image, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
    )
    idempotency = f"{owner}:{key}" if key is not None else None
    if idempotency is None:
        depth = service.store.queue_depth()  # cheap early refusal; the insert re-checks exactly
        if depth >= settings.queue_size:
            raise queue_full(service, depth)
    job_id = uuid.uuid4().hex
    path = upload_path(service.outputs, job_id, image_format)
    _write_atomically(path, submission.image)
    digest = hashlib.sha256(
        json.dumps(
            {"fields": submission.raw, "image": hashlib.sha256(submission.image).hexdigest()}, sort_keys=True
        ).encode()
    ).hexdigest()
    job = NewJob(
        id=job_id,
        model=spec.id,
        params=request.to_dict(),
        image_path=str(path),
        request_hash=digest,
        plan=plan.to_dict(),
        idempotency_key=idempotency,
    )
    created = False
    try:
        row, created = service.store.submit(job, settings.queue_size)
    except QueueFullError as exc:
        raise queue_full(service, exc.depth) from None
    except IdempotencyConflictError as exc:
        raise ApiError(409, "idempotency_key_reused", str(exc), field="Idempotency-Key", value=key) from None
    finally:
        if not created:
            with contextlib.suppress(OSError):
                path.unlink()
    return row, created


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


def _write_atomically(path: Any, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
