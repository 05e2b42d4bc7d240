"""dockerd on a private socket; stopped by its own PID, with its bridge and netns mount removed."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .runner import DOCKER, CheckFailed, Runner, tail


class Engine:
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
