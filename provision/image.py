"""`make up`'s image step: the image .env names is here, pulled, or to be built here; said honestly.

No i2v-deploy image has been pushed to a registry yet (README, "Registry"): a pull of a tag that is not
there fails, and this says so with Docker's own words, then either hands over to a local build (policy
`auto`) or stops with the command that builds it (`only`). Offline (I2V_OFFLINE=1, or policy `never`)
nothing is pulled: the image must already be loaded (`make load BUNDLE=...`).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from enum import Enum


class PullPolicy(str, Enum):
    AUTO = "auto"  # present, else pull, else build here
    ONLY = "only"  # present, else pull, else stop with the build command
    NEVER = "never"  # present, else stop (offline hosts)


class Outcome(str, Enum):
    PRESENT = "present"
    PULLED = "pulled"
    BUILD = "build"  # not in the registry: the caller builds it (make build-<kind>)


class ImageUnavailableError(RuntimeError):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Ensured:
    image: str
    outcome: Outcome
    message: str


def build_target(image: str) -> str:
    """The Makefile verb that builds this image: build-cpu | build-cuda | build-cann (from the tag)."""
    tag = image.rsplit(":", 1)[-1]
    variant = tag.split("-", 1)[1] if "-" in tag else tag
    for kind in ("cuda", "cann", "cpu"):
        if variant.startswith(kind):
            return f"build-{kind}"
    raise ImageUnavailableError(
        f"I2V_IMAGE = {image!r}: its tag names no variant this project builds "
        "(expected ...-cpu, ...-cuda<version>, ...-cann<version>-<chip>)",
        2,
    )


class DockerCli:
    """The two questions ensure() asks the engine, through the docker CLI."""

    def __init__(self, docker: str = "docker", pull_timeout: float = 900):
        self.docker, self.pull_timeout = docker, pull_timeout

    def run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                [self.docker, *args], capture_output=True, text=True, timeout=timeout, check=False
            )
        except FileNotFoundError as exc:
            raise ImageUnavailableError(
                f"{self.docker}: not found; install Docker Engine (README, step 2)", 13
            ) from exc
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, 124, "", f"no answer within {timeout:.0f} s")

    def inspect(self, image: str) -> subprocess.CompletedProcess:
        return self.run(["image", "inspect", "--format", "{{.Id}}", image], 30)

    def pull(self, image: str) -> subprocess.CompletedProcess:
        return self.run(["pull", image], self.pull_timeout)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def ensure(
    image: str,
    policy: PullPolicy,
    *,
    offline: bool = False,
    env_file: str = ".env",
    docker: DockerCli | None = None,
) -> Ensured:
    docker = docker or DockerCli()
    inspect = docker.inspect(image)
    if inspect.returncode == 0:
        return Ensured(image, Outcome.PRESENT, f"{image} is here ({inspect.stdout.strip()[:19]})")
    if (
        "Cannot connect to the Docker daemon" in inspect.stderr
        or "Is the docker daemon running" in inspect.stderr
    ):
        raise ImageUnavailableError(f"Docker engine not reachable: {last_line(inspect.stderr)}", 13)
    build = f"make {build_target(image)} ENV_FILE={env_file}"
    if offline or policy is PullPolicy.NEVER:
        why = "I2V_OFFLINE=1" if offline else "--pull never"
        raise ImageUnavailableError(
            f"{image} is not loaded here and {why} forbids a pull: load the bundle made for "
            f"this host (make load BUNDLE=<file>) or build it here ({build})",
            11,
        )
    pulled = docker.pull(image)
    if pulled.returncode == 0:
        return Ensured(image, Outcome.PULLED, f"pulled {image}")
    said = (
        f"{image} is not in the registry or the registry is unreachable (docker pull: {last_line(pulled.stderr)}); "
        "no i2v-deploy image has been published yet (README: Registry)"
    )
    if policy is PullPolicy.ONLY:
        raise ImageUnavailableError(f"{said}. Build it here: {build}", 12)
    return Ensured(image, Outcome.BUILD, f"{said}. Building it here: {build}")
