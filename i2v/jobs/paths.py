"""Where a job's files live. Every name is made by the server from the job id (32 hex digits);
nothing a client sends (file names, ids in URLs) ever becomes part of a path unchecked."""

from __future__ import annotations

import re
from pathlib import Path

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
IMAGE_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}


def is_job_id(value: str) -> bool:
    return bool(JOB_ID.fullmatch(value))


def video_path(outputs: Path, job_id: str) -> Path:
    if not is_job_id(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return outputs / "videos" / f"{job_id}.mp4"


def upload_path(outputs: Path, job_id: str, image_format: str) -> Path:
    if not is_job_id(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return outputs / "uploads" / f"{job_id}{IMAGE_SUFFIX[image_format]}"


def upload_path_ok(outputs: Path, path: str) -> bool:
    """True when `path` is a file name this server made inside `outputs/uploads`."""
    candidate = Path(path)
    return (
        candidate.parent == outputs / "uploads"
        and is_job_id(candidate.stem)
        and candidate.suffix in IMAGE_SUFFIX.values()
    )
