"""Runs commands with their output in <work>/logs/, records checks, keeps going after a failure."""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker"  # Debian's 20.10 CLI: BuildKit in the daemon, no buildx plugin needed


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
    figures: dict[str, float | int | str | list] = field(default_factory=dict)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


class CheckFailed(Exception):
    pass


class Runner:
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


def env_value(path: Path, key: str) -> str:
    for line in path.read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1].strip().strip('"')
    raise KeyError(f"{key} not in {path}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def this_platform() -> str:
    return {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(os.uname().machine, os.uname().machine)
