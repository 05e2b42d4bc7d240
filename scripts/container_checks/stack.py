"""The cpu profile through the Makefile, as a user runs it: `make up` against no registry, a real job.

`make up` provisions this machine (no accelerator: the cpu profile, tiny model), then its image step tries
`docker pull`, which fails (no registry answers here and nothing has been pushed); with PULL=only it must
stop with the build command, by default say so and build the image here (make build-cpu, bake) before
`compose up --wait`.
"""

from __future__ import annotations

import shutil
import sys
import time

from .builds import bake_overrides, build, image_size
from .dockerfile import CPU_BASE
from .jobs import submit_job
from .runner import DOCKER, ROOT, Runner, env_value, free_port, tail

MODEL = "tiny-i2vgen-xl"


class Stack:
    """One deployment folder under the work dir: its .env, models folder and port."""

    def __init__(self, r: Runner):
        self.r = r
        self.folder = r.work / "stack"
        self.env_file = self.folder / ".env"
        self.models = r.work / "models"
        self.port = free_port()

    def provision(self) -> str:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.models.mkdir(exist_ok=True)
        self.r.run(
            [
                sys.executable,
                "-m",
                "provision",
                "env",
                "--output",
                str(self.env_file),
                "--model",
                MODEL,
                "--port",
                str(self.port),
                "--models-dir",
                str(self.models),
            ],
            "stack",
        )
        assert env_value(self.env_file, "COMPOSE_PROFILES") == "cpu", (
            "this machine should provision the cpu profile"
        )
        return env_value(self.env_file, "I2V_IMAGE")

    def make(self, *args: str, log: str = "stack", check: bool = True, timeout: float = 1800):
        """`make ARGS ENV_FILE=...` with this engine and Debian's compose; the same build args as the checks."""
        return self.r.run(
            [
                "make",
                "--no-print-directory",
                *args,
                f"ENV_FILE={self.env_file}",
                f"COMPOSE={DOCKER} compose",
                f"BAKE_ARGS={bake_overrides()} --set *.cache-from=",
            ],
            log,
            check=check,
            timeout=timeout,
            cwd=ROOT,
        )

    def compose(self) -> list[str]:
        return [DOCKER, "compose", "--env-file", str(self.env_file), "-f", str(ROOT / "compose.yaml")]

    def down(self) -> None:
        self.r.run(
            self.compose() + ["--profile", "*", "logs", "--no-color"],
            "stack-logs",
            env={"I2V_ENV_FILE": str(self.env_file)},
            check=False,
        )
        self.make("down", check=False)

    def job(self, name: str) -> tuple[float, str]:
        summary, took = submit_job(self.port, self.r.work / f"{name}.mp4", MODEL)
        self.r.report.figures[f"{name}_job_seconds"] = round(took, 1)
        return took, summary


def cpu_stack(r: Runner) -> Stack:
    stack = Stack(r)
    image = stack.provision()
    with r.check("build the cpu image's test stage (ubuntu:22.04 stand-in without a CA store)") as c:
        took, _ = build(
            r,
            "cuda",
            "test",
            "ci/cpu:test",
            extra={"BUILD_BASE": CPU_BASE, "RUNTIME_BASE": CPU_BASE},
            log="build-cpu",
        )
        lines = (r.logs / "build-cpu.log").read_text().splitlines()[::-1]  # this run's lines come last
        https = next((line for line in lines if "https: GET" in line), "")
        compiler = next((line for line in lines if "compiler: " in line and "builds and loads" in line), "")
        assert https and compiler, (
            f"the test stage's checks printed nothing:\n{tail(r.logs / 'build-cpu.log')}"
        )
        c["detail"] = f"{took:.0f} s; {https.split('https: ', 1)[1][:80]}"
    r.run([DOCKER, "rmi", "-f", image], "stack", check=False)
    with r.check("make up PULL=only: the tag is in no registry, said so, stops with the build command") as c:
        start = time.monotonic()
        done = stack.make("up", "PULL=only", log="stack-pull-only", check=False, timeout=600)
        text = (r.logs / "stack-pull-only.log").read_text()
        assert done.returncode != 0, "make up PULL=only succeeded without the image"
        assert f"{image} is not in the registry" in text, tail(r.logs / "stack-pull-only.log", 8)
        assert f"Build it here: make build-cpu ENV_FILE={stack.env_file}" in text, tail(
            r.logs / "stack-pull-only.log", 8
        )
        c["detail"] = f"exit {done.returncode} after {time.monotonic() - start:.0f} s"
    try:
        with r.check(
            "make up: pull fails, says so, builds the image here (bake), then compose up --wait"
        ) as c:
            start = time.monotonic()
            stack.make("up", log="stack-up", timeout=1800)
            text = (r.logs / "stack-up.log").read_text()
            assert (
                "no i2v-deploy image has been published yet" in text
                and "Building it here: make build-cpu" in text
            )
            took = time.monotonic() - start
            r.report.figures["make_up_with_local_build_seconds"] = round(took, 1)
            c["detail"] = f"{took:.0f} s to healthy, image {image_size(r, image) / 1e9:.2f} GB"
        with r.check("a real job over HTTP: POST /v1/videos -> succeeded -> mp4") as c:
            _, c["detail"] = stack.job("cpu")
        with r.check("the service runs as a non-root user") as c:
            env = {"I2V_ENV_FILE": str(stack.env_file)}
            uid = r.output(stack.compose() + ["exec", "-T", "server-cpu", "id", "-u"], env=env)
            user = r.output(stack.compose() + ["exec", "-T", "server-cpu", "id", "-un"], env=env)
            assert uid != "0", f"server runs as uid {uid}"
            c["detail"] = f"uid {uid} ({user})"
    finally:
        stack.down()
    return stack
