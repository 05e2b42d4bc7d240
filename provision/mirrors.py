"""Time the package and model mirrors and pick the fastest that answers.

Each kind (pip, huggingface, modelscope) has candidates, fastest-first by experience in mainland
China. A candidate is timed with one small GET and a short timeout, all in parallel; the fastest
that answers with a non-5xx status wins, and the first candidate is kept when none answers.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

CANDIDATES: dict[str, tuple[tuple[str, str, str], ...]] = {
    # (name, value written to .env, URL timed)
    "pip": (
        (
            "tsinghua",
            "https://pypi.tuna.tsinghua.edu.cn/simple",
            "https://pypi.tuna.tsinghua.edu.cn/simple/pip/",
        ),
        ("aliyun", "https://mirrors.aliyun.com/pypi/simple/", "https://mirrors.aliyun.com/pypi/simple/pip/"),
        ("pypi", "https://pypi.org/simple", "https://pypi.org/simple/pip/"),
    ),
    "huggingface": (
        ("hf-mirror", "https://hf-mirror.com", "https://hf-mirror.com/api/models/gpt2"),
        ("huggingface", "https://huggingface.co", "https://huggingface.co/api/models/gpt2"),
    ),
    "modelscope": (
        (
            "modelscope",
            "www.modelscope.cn",
            "https://www.modelscope.cn/api/v1/models/Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        ),
        (
            "modelscope-intl",
            "www.modelscope.ai",
            "https://www.modelscope.ai/api/v1/models/Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        ),
    ),
}
DEFAULTS = {kind: options[0][1] for kind, options in CANDIDATES.items()}
ENV_KEYS = {"pip": "PIP_INDEX_URL", "huggingface": "HF_ENDPOINT", "modelscope": "MODELSCOPE_DOMAIN"}


@dataclass(frozen=True)
class Timing:
    kind: str
    name: str
    value: str
    url: str
    seconds: float | None  # None: no answer
    status: int | None
    error: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def time_url(url: str, timeout: float) -> tuple[float | None, int | None, str | None]:
    start = time.perf_counter()
    request = urllib.request.Request(url, headers={"User-Agent": "i2v-deploy-provision"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (fixed https URLs)
            response.read(4096)
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        if status >= 500:
            return None, status, f"HTTP {status}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, None, str(reason) or type(exc).__name__
    return time.perf_counter() - start, status, None


def time_all(
    candidates: dict[str, tuple[tuple[str, str, str], ...]] = CANDIDATES, timeout: float = 3.0
) -> list[Timing]:
    jobs = [(kind, name, value, url) for kind, options in candidates.items() for name, value, url in options]
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        results = list(pool.map(lambda job: time_url(job[3], timeout), jobs))
    return [
        Timing(kind, name, value, url, *result)
        for (kind, name, value, url), result in zip(jobs, results, strict=True)
    ]


def fastest(timings: list[Timing]) -> dict[str, Timing | None]:
    best: dict[str, Timing | None] = {}
    for t in timings:
        best.setdefault(t.kind, None)
        if t.seconds is not None and (best[t.kind] is None or t.seconds < best[t.kind].seconds):  # type: ignore[union-attr]
            best[t.kind] = t
    return best
