"""Checks without an engine: hadolint, compose config for every profile and recorded host, the bake file."""

from __future__ import annotations

import json
from pathlib import Path

from .dockerfile import DOCKERFILES
from .runner import DOCKER, ROOT, Runner, env_value, free_port, this_platform

GOLDEN = ROOT / "tests/golden"
# Recorded hosts whose provision output drives the compose checks (tests/golden/<host>.env).
CUDA_HOST, NPU_HOST = "h100x8", "910b3x8"


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
    with r.check(f"compose resolves one device_ids entry per GPU ({CUDA_HOST}'s override)") as c:
        resolved = json.loads(
            r.output(
                compose_cmd(CUDA_HOST) + ["--profile", "cuda", "config", "--format", "json"],
                env=compose_env(r, CUDA_HOST),
            )
        )
        (device,) = resolved["services"]["server-cuda"]["deploy"]["resources"]["reservations"]["devices"]
        visible = env_value(GOLDEN / f"{CUDA_HOST}.env", "I2V_VISIBLE_DEVICES").split(",")
        assert device["device_ids"] == visible, (
            f"device_ids {device['device_ids']} != I2V_VISIBLE_DEVICES {visible}"
        )
        c["detail"] = f"device_ids {device['device_ids']}"
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
        unpaired = [
            name
            for name, t in targets.items()
            if t["args"].get("TORCHAUDIO_VERSION") != t["args"].get("TORCH_VERSION")
        ]
        assert not unpaired, f"targets whose torchaudio is not their torch's: {unpaired}"
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
