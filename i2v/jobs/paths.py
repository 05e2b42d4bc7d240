"""Where a job's files live. Every name is made by the server from the job id (32 hex digits);
nothing a client sends (file names, ids in URLs) ever becomes part of a path unchecked.

Uploads: ``uploads/<id><suffix>`` for the main image, ``uploads/<id>-<role><suffix>`` for a mode's
other inputs (``keyframe-<n>`` for the n-th keyframe). Results: ``videos/<id>.mp4`` and its previews.
"""

from __future__ import annotations

import re
from pathlib import Path

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
IMAGE_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".m4a")
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm")
UPLOAD_SUFFIXES = frozenset((*IMAGE_SUFFIX.values(), *AUDIO_SUFFIXES, *VIDEO_SUFFIXES))
# The media inputs a request can carry (i2v.request.MEDIA) and the source of an extension.
UPLOAD_ROLE = re.compile(r"^(last_image|keyframe-[0-9]{1,2}|audio|video|reference_video|extends)$")
PREVIEWS = {"thumbnail": ".thumbnail.webp", "spritesheet": ".spritesheet.jpg"}


def is_job_id(value: str) -> bool:
    return bool(JOB_ID.fullmatch(value))


def video_path(outputs: Path, job_id: str) -> Path:
    if not is_job_id(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return outputs / "videos" / f"{job_id}.mp4"


def preview_path(outputs: Path, job_id: str, variant: str) -> Path:
    """``videos/<id>.thumbnail.webp`` (the first frame) or ``videos/<id>.spritesheet.jpg`` (a grid)."""
    return video_path(outputs, job_id).with_name(job_id + PREVIEWS[variant])


def upload_path(outputs: Path, job_id: str, suffix: str, role: str = "") -> Path:
    if not is_job_id(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    if suffix not in UPLOAD_SUFFIXES or (role and not UPLOAD_ROLE.fullmatch(role)):
        raise ValueError(f"not an upload name: role {role!r}, suffix {suffix!r}")
    return outputs / "uploads" / f"{job_id}{'-' + role if role else ''}{suffix}"


def upload_path_ok(outputs: Path, path: str) -> bool:
    """True when `path` is a file name this server made inside `outputs/uploads`."""
    candidate = Path(path)
    job_id, dash, role = candidate.stem.partition("-")
    return (
        candidate.parent == outputs / "uploads"
        and is_job_id(job_id)
        and (not dash or bool(UPLOAD_ROLE.fullmatch(role)))
        and candidate.suffix in UPLOAD_SUFFIXES
    )


def upload_paths(outputs: Path, job_id: str) -> list[Path]:
    """Every upload this server made for the job (to remove them when it ends)."""
    if not is_job_id(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    folder = outputs / "uploads"
    return [p for p in folder.glob(f"{job_id}*") if upload_path_ok(outputs, str(p))]


def remove_uploads(outputs: Path, rows: dict[str, list[dict]] | None) -> None:
    """Remove the uploads of jobs `JobStore.requeue_lost` ended (failed or cancelled; not requeued)."""
    import contextlib
    import os

    for state in ("failed", "cancelled"):
        for row in (rows or {}).get(state, ()):
            for path in upload_paths(outputs, row["id"]):
                with contextlib.suppress(OSError):
                    os.remove(path)
