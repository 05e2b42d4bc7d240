"""How a job row looks on the wire (GET /v1/videos/{id}, the list, the events)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds") if ts else None


def _progress(row: dict[str, Any]) -> dict[str, Any]:
    state, step, total = row["state"], row.get("step") or 0, row.get("total_steps") or 0
    if state == "succeeded":
        fraction = 1.0
    elif state == "running" and total:
        # denoising is most of the work; loading counts as 0, encoding as nearly done
        fraction = 0.98 if row.get("stage") == "encoding" else min(step / total, 1.0) * 0.95
    else:
        fraction = 0.0
    return {
        "stage": row.get("stage") if state == "running" else state,
        "step": step,
        "total_steps": total,
        "fraction": round(fraction, 4),
    }


def job_view(
    row: dict[str, Any], *, position: int | None = None, typical_run_s: float | None = None, workers: int = 1
) -> dict[str, Any]:
    state = row["state"]
    eta = None
    if state == "running":
        eta = row.get("eta_s")
    elif state == "queued" and typical_run_s is not None and position is not None:
        eta = round((position // max(workers, 1) + 1) * typical_run_s, 1)
    view: dict[str, Any] = {
        "id": row["id"],
        "state": state,
        "model": row["model"],
        "request": json.loads(row["params"]),
        "attempt": row["attempt"],
        "created_at": iso(row["created_at"]),
        "started_at": iso(row.get("started_at")),
        "finished_at": iso(row.get("finished_at")),
        "progress": _progress(row),
        "eta_s": round(eta, 1) if eta is not None else None,
        "seconds_per_step": row.get("seconds_per_step"),
        "queue_position": position if state == "queued" else None,
        "cancel_requested": bool(row.get("cancel_requested")),
        "plan": json.loads(row["plan"]) if row.get("plan") else None,
        "error": {"code": row["error_code"], "message": row["error_message"]}
        if row.get("error_code")
        else None,
        "result": None,
        "links": {
            "self": f"/v1/videos/{row['id']}",
            "events": f"/v1/videos/{row['id']}/events",
            "content": f"/v1/videos/{row['id']}/content",
        },
    }
    if state == "succeeded" and row.get("result"):
        view["result"] = json.loads(row["result"]) | {
            "url": f"/v1/videos/{row['id']}/content",
            "run_s": row.get("run_s"),
            "peak_mib": row.get("peak_mib"),
        }
    return view
