"""Prometheus text exposition, computed at scrape time from the job store (so every API replica
reports the same numbers and a restart loses nothing) plus this process's request counters."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from i2v.jobs import STATES


class RequestCounters:
    """Answers given by this API process, by route template and status."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, int]] = Counter()

    def add(self, method: str, route: str, status: int) -> None:
        with self._lock:
            self._counts[(method, route, status)] += 1

    def items(self) -> list[tuple[tuple[str, str, int], int]]:
        with self._lock:
            return sorted(self._counts.items())


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(
    store: Any,
    counters: RequestCounters,
    *,
    queue_size: int,
    workers: list[dict[str, Any]],
    restarts: int,
    draining: bool,
) -> str:
    counts = store.counts()
    stats = store.stats()
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, Any], float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            labels = dict(labels)
            sample = labels.pop("__name__", name)
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{sample}{{{text}}} {value}" if text else f"{sample} {value}")

    metric(
        "i2v_jobs_submitted_total",
        "counter",
        "Jobs accepted (one row each; refused requests are not jobs).",
        [({}, sum(counts.values()))],
    )
    metric(
        "i2v_jobs",
        "gauge",
        "Jobs by state; they sum to i2v_jobs_submitted_total.",
        [({"state": s}, counts[s]) for s in STATES],
    )
    metric("i2v_queue_depth", "gauge", "Jobs waiting for a worker.", [({}, counts["queued"])])
    metric(
        "i2v_queue_capacity", "gauge", "Jobs that may wait before submissions get 429.", [({}, queue_size)]
    )
    buckets = [
        ({"__name__": "i2v_job_duration_seconds_bucket", "le": le}, n) for le, n in stats["duration_buckets"]
    ]
    buckets.append(({"__name__": "i2v_job_duration_seconds_bucket", "le": "+Inf"}, stats["duration_count"]))
    buckets.append(({"__name__": "i2v_job_duration_seconds_sum"}, round(stats["duration_sum"], 3)))
    buckets.append(({"__name__": "i2v_job_duration_seconds_count"}, stats["duration_count"]))
    metric("i2v_job_duration_seconds", "histogram", "Run time of succeeded jobs, claim to finish.", buckets)
    metric(
        "i2v_seconds_per_step_sum",
        "counter",
        "Sum of mean seconds per denoising step of succeeded jobs.",
        [({"model": m["model"]}, round(m["sps_sum"], 4)) for m in stats["per_model"]],
    )
    metric(
        "i2v_seconds_per_step_count",
        "counter",
        "Succeeded jobs with a seconds-per-step figure.",
        [({"model": m["model"]}, m["sps_count"]) for m in stats["per_model"]],
    )
    metric(
        "i2v_peak_memory_mib",
        "gauge",
        "Highest peak memory of a job (device memory; on CPU the worker's peak RSS).",
        [({"model": m["model"]}, m["peak_mib"]) for m in stats["per_model"] if m["peak_mib"] is not None],
    )
    metric("i2v_oom_total", "counter", "Jobs that ran out of device memory.", [({}, stats["oom_total"])])
    metric(
        "i2v_job_failures_total",
        "counter",
        "Failed jobs by error code.",
        [({"code": code}, n) for code, n in sorted(stats["failures"].items())],
    )
    metric(
        "i2v_job_requeues_total",
        "counter",
        "Runs lost to dead workers and retried.",
        [({}, stats["requeues_total"])],
    )
    by_state = Counter(w["state"] for w in workers)
    metric(
        "i2v_workers",
        "gauge",
        "Live workers by state.",
        [({"state": s}, by_state.get(s, 0)) for s in ("starting", "ready", "busy", "failed")],
    )
    metric(
        "i2v_worker_rss_mib",
        "gauge",
        "Resident memory of each live worker process.",
        [
            ({"worker": w["id"], "slot": w["slot"]}, w["rss_mib"])
            for w in workers
            if w.get("rss_mib") is not None
        ],
    )
    metric(
        "i2v_worker_restarts_total",
        "counter",
        "Workers restarted by this supervisor after they died.",
        [({}, restarts)],
    )
    metric("i2v_draining", "gauge", "1 while the service drains after SIGTERM.", [({}, int(draining))])
    metric(
        "i2v_http_responses_total",
        "counter",
        "Answers of this API process.",
        [({"method": m, "route": r, "status": s}, n) for (m, r, s), n in counters.items()],
    )
    return "\n".join(lines) + "\n"
