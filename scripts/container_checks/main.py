"""Runs every check in order, then prints the summary and writes <work>/report.json."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from .builds import build_all_stages, fetch_torch_wheel, rebuild_after_source_change
from .bundle import bundle_round_trip
from .cann import cann_checks
from .devices import device_requests
from .dockerfile import DOCKERFILES, STAGES
from .engine import Engine
from .runner import DOCKER, ROOT, Runner
from .stack import cpu_stack
from .standins import build_stand_ins, tag_bases
from .static import static_checks
from .tools import install_tools

FIGURES = (
    ("rebuild_seconds", "rebuild after a source-only change: {} s"),
    ("make_up_with_local_build_seconds", "make up (pull fails, local build, compose up --wait): {} s"),
    ("cpu_job_seconds", "job submitted -> mp4 ready: {} s"),
    ("bundle_bytes", "bundle for the tiny model: {} bytes"),
    ("load_to_finished_job_seconds", "make load -> make up offline -> finished job: {} s"),
)


def summary(r: Runner) -> str:
    rows = [f"{'check':<78} {'result':<6} {'s':>6}"]
    rows += [f"{c.name[:78]:<78} {'ok' if c.ok else 'FAIL':<6} {c.seconds:6.0f}" for c in r.report.checks]
    rows.append("")
    rows.append(f"{'image size per stage (GB)':<28}" + "".join(f"{s:>9}" for s in STAGES))
    for kind, sizes in r.report.sizes.items():
        rows.append(
            f"{DOCKERFILES[kind].name:<28}"
            + "".join(f"{sizes[s] / 1e9:9.2f}" if s in sizes else f"{'-':>9}" for s in STAGES)
        )
    rows += [text.format(r.report.figures[key]) for key, text in FIGURES if key in r.report.figures]
    passed = len(r.report.checks) - len(r.report.failed)
    rows.append(f"total: {r.report.figures.get('total_seconds', 0)} s")
    rows.append(f"containers: {passed} passed, {len(r.report.failed)} failed")
    return "\n".join(rows)


def run_all(r: Runner, engine: Engine) -> None:
    with r.check("tools: docker.io, debootstrap, hadolint, compose, buildx") as c:
        tools = install_tools(r)
        c["detail"] = r.output([DOCKER, "compose", "version", "--short"])
    static_checks(r, tools)
    with r.check("engine: Debian's dockerd on a private socket") as c:
        c["detail"] = engine.start()
    with r.check("stand-in base images tagged as the real base names") as c:
        build_stand_ins(r)
        c["detail"] = ", ".join(tag_bases(r))
    with r.check("this machine's CPU torch wheel in docker/wheels/"):
        fetch_torch_wheel(r)
    for kind in DOCKERFILES:
        build_all_stages(r, kind)
    rebuild_after_source_change(r)
    cann_checks(r)
    stack = cpu_stack(r)
    bundle_round_trip(r, stack)
    device_requests(r)


def main() -> int:
    parser = argparse.ArgumentParser(description="The project's container checks.")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(os.environ.get("I2V_CONTAINERS_WORK", ROOT / ".cache" / "containers")),
    )
    parser.add_argument("--report", type=Path, help="also write the JSON report here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print(
            "container checks need root (they install Debian packages and start a Docker engine)",
            file=sys.stderr,
        )
        return 2
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    r = Runner(work)
    engine = Engine(r)
    try:
        run_all(r, engine)
    finally:
        engine.stop()
        r.report.figures["total_seconds"] = round(time.monotonic() - r.started, 1)
        report = json.dumps(asdict(r.report), indent=2)
        (work / "report.json").write_text(report)
        if args.report:
            args.report.write_text(report)
        print("\n" + summary(r), flush=True)
    return 1 if r.report.failed else 0
