"""How a job looks on the wire: OpenAI's Video object (what the `openai` SDK parses), then ours.

| SDK field      | from the job                                                                   |
| -------------- | ------------------------------------------------------------------------------ |
| status         | queued -> queued, running -> in_progress, succeeded -> completed, failed and   |
|                | cancelled -> failed (a cancelled job has error.code "cancelled"; `state` says   |
|                | "cancelled"): the SDK's `poll` stops on completed and failed, and its types    |
|                | allow no other value                                                           |
| progress       | 0-100: denoising is 95 of it, encoding the rest; 100 once completed            |
| created_at, completed_at | Unix seconds (completed_at: when it ended, any way)                  |
| size, seconds  | "WIDTHxHEIGHT"; the clip's duration ("1.125"), the stitched total for an extension |
| error          | {code, message} (i2v.errors' job codes, or "cancelled")                        |

Ours beside them: `state` (our five states), `stage`/`step`/`total_steps`, `queue_position`,
`eta_s` (from the measured seconds per step; for a queued job from recent run times), `plan`,
`frames`, `fps`, `request` (no server paths), `notes`, `result`, the preview links.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from i2v.previews import sprite_layout

STATUS = {
    "queued": "queued",
    "running": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "failed",
}
POLL_MIN_MS, POLL_MAX_MS, POLL_DEFAULT_MS = 250, 10_000, 1000
_MEDIA = ("last_image", "audio", "video", "reference_video")


def _progress(row: dict[str, Any]) -> float:
    state, step, total = row["state"], row.get("step") or 0, row.get("total_steps") or 0
    if state == "succeeded":
        return 1.0
    if state == "running" and total:
        # denoising is most of the work; loading counts as 0, encoding as nearly done
        return 0.98 if row.get("stage") == "encoding" else min(step / total, 1.0) * 0.95
    if state in ("failed", "cancelled") and total:
        return min(step / total, 1.0) * 0.95  # where it stopped
    return 0.0


def seconds_text(frames: int, fps: int) -> str:
    return f"{round(frames / fps, 3):g}"


def public_request(params: dict[str, Any]) -> dict[str, Any]:
    """The stored request without server paths: uploads as "uploaded", LoRAs by file name."""
    out = dict(params)
    for name in _MEDIA:
        if out.get(name):
            out[name] = "uploaded"
    out["keyframes"] = [
        {"frame": k["frame"], "strength": k["strength"]} for k in params.get("keyframes") or ()
    ]
    out["loras"] = [{"name": Path(r["path"]).name, "scale": r["scale"]} for r in params.get("loras") or ()]
    return out


def video_object(
    row: dict[str, Any], *, position: int | None = None, typical_run_s: float | None = None, workers: int = 1
) -> dict[str, Any]:
    state, job_id = row["state"], row["id"]
    params = json.loads(row["params"])
    extras = json.loads(row["extras"]) if row.get("extras") else {}
    result = json.loads(row["result"]) if state == "succeeded" and row.get("result") else None
    eta = None
    if state == "running":
        eta = row.get("eta_s")
    elif state == "queued" and typical_run_s is not None and position is not None:
        eta = (position // max(workers, 1) + 1) * typical_run_s
    extends = extras.get("extends")
    frames, fps = params["frames"], params["fps"]
    if result is not None:
        total_frames = result["frames"]
    elif extends:
        total_frames = extends["frames"] + frames - 1
    else:
        total_frames = frames
    error = None
    if row.get("error_code"):
        error = {"code": row["error_code"], "message": row["error_message"]}
    elif state == "cancelled":
        error = {"code": "cancelled", "message": "the job was cancelled (DELETE) before it finished"}
    base = f"/v1/videos/{job_id}"
    return {
        # OpenAI's Video object
        "id": job_id,
        "object": "video",
        "model": row["model"],
        "status": STATUS[state],
        "progress": int(_progress(row) * 100),
        "created_at": int(row["created_at"]),
        "completed_at": int(row["finished_at"]) if row.get("finished_at") else None,
        "expires_at": None,
        "size": f"{result['width']}x{result['height']}"
        if result
        else f"{params['width']}x{params['height']}",
        "seconds": seconds_text(total_frames, fps),
        "prompt": params.get("prompt", ""),
        "error": error,
        "remixed_from_video_id": None,
        # ours
        "extended_from_video_id": extends.get("id") if extends else None,
        "state": state,
        "stage": row.get("stage") if state == "running" else state,
        "step": row.get("step") or 0,
        "total_steps": row.get("total_steps") or 0,
        "queue_position": position if state == "queued" else None,
        "eta_s": round(eta, 1) if eta is not None else None,
        "seconds_per_step": row.get("seconds_per_step"),
        "frames": total_frames,
        "fps": fps,
        "mode": params.get("mode"),
        "attempt": row["attempt"],
        "started_at": int(row["started_at"]) if row.get("started_at") else None,
        "cancel_requested": bool(row.get("cancel_requested")),
        "plan": json.loads(row["plan"]) if row.get("plan") else None,
        "request": public_request(params),
        "notes": extras.get("notes", []),
        "result": None
        if result is None
        else result
        | {
            "load_s": row.get("load_s"),
            "run_s": row.get("run_s"),
            "peak_mib": row.get("peak_mib"),
            "spritesheet": sprite_layout(result["frames"], result["width"], result["height"]).to_dict(),
        },
        "links": {
            "self": base,
            "events": f"{base}/events",
            "content": f"{base}/content",
            "thumbnail": f"{base}/content?variant=thumbnail",
            "spritesheet": f"{base}/content?variant=spritesheet",
        },
    }


def poll_after_ms(video: dict[str, Any]) -> int | None:
    """How long the SDK's `poll` should wait before asking again (`openai-poll-after-ms`).

    Running: about one denoising step (progress moves a step at a time), less when the ETA is
    shorter. Queued: a quarter of the wait, so the start is seen soon after it happens. Finished:
    no advice (the SDK stops polling). openai 3.57.0's `poll` reads the header on its first read and
    keeps that interval, so the first answer (usually "queued") sets the pace; hence the 10 s cap."""
    if video["state"] == "running":
        per_step = video.get("seconds_per_step")
        ms = per_step * 1000 if per_step else POLL_DEFAULT_MS
        if video.get("eta_s") is not None:
            ms = min(ms, video["eta_s"] * 1000)
    elif video["state"] == "queued":
        ms = video["eta_s"] * 250 if video.get("eta_s") is not None else POLL_DEFAULT_MS
    else:
        return None
    return int(min(max(ms, POLL_MIN_MS), POLL_MAX_MS))
