"""The files of one submission, checked and written under server-made names in the uploads folder
(``uploads/<job id>[-<role>]<suffix>``, `i2v.jobs.paths`) before the request is validated, and
removed again unless the job is admitted. A video named by id (``reference_video[id]``) is a
completed video of this server: it is hard-linked (copied across file systems) into the uploads,
so deleting that video later does not pull the file from under a queued job.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from i2v.jobs.paths import is_job_id, upload_path, video_path
from i2v.server.errors import ApiError
from i2v.server.media import CheckedMedia, MediaInput, MediaKind, check, probe_file


class Staging:
    """Use as a context manager; `commit()` keeps the files, leaving without it removes them."""

    def __init__(self, service: Any, job_id: str):
        self.service, self.job_id = service, job_id
        self.settings, self.outputs = service.settings, service.outputs
        self.paths: dict[str, str] = {}  # server path -> the wire field it came from (errors show that)
        self.checked: dict[str, CheckedMedia] = {}  # role -> what the checks found
        self._committed = False

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._committed:
            for path in self.paths:
                with contextlib.suppress(OSError):
                    os.remove(path)

    def commit(self) -> None:
        self._committed = True

    def put(self, media: MediaInput, kind: MediaKind, role: str = "") -> str:
        """Check `media` as `kind` and store it for `role` ("" for the main image); its path."""
        if media.video_id is not None:
            source = self.completed_video(media.field, media.video_id)
            checked = probe_file(media.field, kind, str(source))
            path = upload_path(self.outputs, self.job_id, checked.suffix, role)
            _link(source, path)
        else:
            assert media.data is not None
            checked = check(
                media.field,
                kind,
                media.data,
                max_bytes=self.settings.max_upload_bytes,
                max_pixels=self.settings.max_image_pixels,
            )
            path = upload_path(self.outputs, self.job_id, checked.suffix, role)
            write_atomically(path, media.data)
        self.paths[str(path)] = f"<{media.field}>"
        self.checked[role] = checked
        return str(path)

    def completed_video(self, field: str, video_id: str) -> Path:
        """The mp4 of a completed, undeleted video of this server; ApiError naming `field` otherwise."""
        row = self.service.store.get(video_id) if is_job_id(video_id) else None
        if row is None or row.get("deleted_at") is not None:
            raise ApiError(404, "not_found", f"`{field}`: no video {video_id!r}", field=field, value=video_id)
        if row["state"] != "succeeded":
            raise ApiError(
                409,
                "not_finished",
                f"`{field}`: video {video_id} is {row['state']}; only a completed video can be used",
                field=field,
                value=video_id,
            )
        path = video_path(self.outputs, video_id)
        if not path.is_file():
            raise ApiError(410, "video_gone", f"`{field}`: the file of video {video_id} is gone", field=field)
        return path


def _link(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_atomically(path: Path, data: bytes) -> None:
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
