"""Real builds of both Dockerfiles on the stand-ins, every stage, and a rebuild after a source-only change."""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

from .dockerfile import DOCKERFILES, STAGES
from .runner import DOCKER, ROOT, Runner

# This machine's CPU torch (the images pin CUDA / CPU-index builds; PyPI's x86_64 torch is multi-GB CUDA).
TORCH_WHEEL = "torch==2.13.0+cpu"
TORCH_NPU = "2.13.0"  # the torch_npu release that pairs with that torch
# CI build arguments: PyPI instead of the Chinese mirrors, the base's own apt sources, the local torch (which
# has no torchaudio build: TORCHAUDIO_VERSION empty), the stand-in's own Python 3.11.2 (PYTHON_SOURCE=system:
# python-build-standalone downloads come from GitHub, which no machine here reaches).
CI_ARGS = {
    "PIP_INDEX_URL": "https://pypi.org/simple",
    "APT_MIRROR": "",
    "TORCH_INDEX_URL": "https://pypi.org/simple",
    "TORCH_VERSION": TORCH_WHEEL.split("==")[1],
    "TORCHAUDIO_VERSION": "",
}
CUDA_CI_ARGS = {"PYTHON_SOURCE": "system"}
CANN_CI_ARGS = {"TORCH_NPU_VERSION": TORCH_NPU}


def build_args(kind: str, extra: dict[str, str] | None = None) -> list[str]:
    values = {**CI_ARGS, **(CANN_CI_ARGS if kind == "cann" else CUDA_CI_ARGS), **(extra or {})}
    return [arg for key, value in values.items() for arg in ("--build-arg", f"{key}={value}")]


def bake_overrides(target: str = "*") -> str:
    """The same arguments for `make build-*` (BAKE_ARGS), so `make up` can build here as CI does."""
    values = {**CI_ARGS, **CUDA_CI_ARGS}
    return " ".join(f"--set {target}.args.{key}={value}" for key, value in values.items())


def build(
    r: Runner,
    kind: str,
    target: str,
    tag: str,
    context: Path = ROOT,
    extra: dict[str, str] | None = None,
    log: str | None = None,
) -> tuple[float, str]:
    start = time.monotonic()
    log = log or f"build-{kind}"
    r.run(
        [
            DOCKER,
            "build",
            "--progress=plain",
            "-f",
            str(context / DOCKERFILES[kind].relative_to(ROOT)),
            "--target",
            target,
            "-t",
            tag,
            *build_args(kind, extra),
            str(context),
        ],
        log,
        timeout=1800,
    )
    return time.monotonic() - start, log


def image_size(r: Runner, tag: str) -> int:
    return int(r.output([DOCKER, "image", "inspect", "--format", "{{.Size}}", tag]))


def fetch_torch_wheel(r: Runner) -> None:
    wheels = ROOT / "docker/wheels"
    if not list(wheels.glob("torch-" + TORCH_WHEEL.split("==")[1] + "-*.whl")):
        r.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), TORCH_WHEEL],
            "wheels",
        )


def build_all_stages(r: Runner, kind: str) -> None:
    sizes = r.report.sizes.setdefault(kind, {})
    for stage in STAGES:
        with r.check(f"build {DOCKERFILES[kind].name} --target {stage}") as c:
            took, _ = build(r, kind, stage, f"ci/{kind}:{stage}")
            sizes[stage] = image_size(r, f"ci/{kind}:{stage}")
            c["detail"] = f"{sizes[stage] / 1e9:.2f} GB, {took:.0f} s"


def rebuild_after_source_change(r: Runner) -> None:
    """Copy the build context, change one source file, rebuild the runtime stage: only the app layers rerun."""
    with r.check("rebuild Dockerfile.cuda after a source-only change") as c:
        context = r.work / "context"
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        for name in ("pyproject.toml", "README.md", "i2v", "provision", "docker"):
            source = ROOT / name
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, context / name)
        shutil.copy2(ROOT / ".dockerignore", context / ".dockerignore")
        with (context / "i2v/__init__.py").open("a") as handle:
            handle.write(f"\n# container checks: source-only change {time.time()}\n")
        log = r.logs / "rebuild.log"
        log.unlink(missing_ok=True)
        took, _ = build(r, "cuda", "runtime", "ci/cuda:rebuilt", context=context, log="rebuild")
        steps = parse_steps(log.read_text())
        cached = sum(1 for s in steps.values() if s == "CACHED")
        rerun = sorted(n for n, s in steps.items() if s != "CACHED")
        assert not any("pip install --index-url" in n for n in rerun), f"dependency layers rebuilt: {rerun}"
        r.report.figures.update(
            rebuild_seconds=round(took, 1),
            rebuild_steps_cached=cached,
            rebuild_steps_total=len(steps),
            rebuild_rerun=rerun,
        )
        c["detail"] = f"{took:.0f} s, {cached}/{len(steps)} steps cached; rerun: " + ", ".join(
            re.sub(r"\s+", " ", n)[:40] for n in rerun
        )
        shutil.rmtree(context, ignore_errors=True)


def parse_steps(log: str) -> dict[str, str]:
    """BuildKit plain progress -> {step name: CACHED | DONE}, internal steps left out."""
    names, states = {}, {}
    for line in log.splitlines():
        m = re.match(r"#(\d+) \[([^\]]+)\] (.*)", line)
        if m and not m.group(2).startswith("internal"):
            names[m.group(1)] = f"[{m.group(2)}] {m.group(3)}"
        m = re.match(r"#(\d+) (CACHED|DONE)", line)
        if m and m.group(1) in names:
            states[m.group(1)] = m.group(2)
    return {names[i]: states.get(i, "?") for i in names if not names[i].split("] ", 1)[1].startswith("FROM")}
