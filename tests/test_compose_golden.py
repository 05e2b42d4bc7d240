"""Golden files: the `.env` and `compose.override.yaml` that `provision env` writes for each recorded host.

A change to what provision writes shows up here as a diff against tests/golden/<host>.env and
tests/golden/<host>.compose.override.yaml (hosts without an override have no such file and must get
none). After an intended change: `I2V_UPDATE_GOLDEN=1 pytest tests/test_compose_golden.py`, then read
the diff. The container checks (scripts/containers.py) feed the same files to docker compose.

Host-dependent inputs are pinned: a copy of the fixture host with a fixed /proc/meminfo (256 GiB),
x86_64 where the recording has no arch, `--models-dir /srv/i2v/models`, and the gid of the fixture's
/dev/davinci* (whoever checked the repository out owns it) written as 1000, the images' default
HwHiAiUser gid.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from hosts import HOSTS_DIR, host_names, use_host
from test_provision_cli import provision

from provision import compose_override

GOLDEN = Path(__file__).parent / "golden"
MODELS_DIR = "/srv/i2v/models"
GOLDEN_GID = 1000


def fixed_host(tmp_path: Path, name: str) -> Path:
    shutil.copy(HOSTS_DIR / "_replay.sh", tmp_path / "_replay.sh")  # the fakes call ../../_replay.sh
    host = tmp_path / name
    shutil.copytree(HOSTS_DIR / name, host, symlinks=True)
    (host / "root" / "proc").mkdir(parents=True, exist_ok=True)
    (host / "root" / "proc" / "meminfo").write_text("MemTotal: 268435456 kB\nMemAvailable: 260000000 kB\n")
    return host


def written(monkeypatch, tmp_path: Path, name: str) -> dict[str, str]:
    host = fixed_host(tmp_path, name)
    use_host(monkeypatch, host)
    if not (host / "arch").is_file():
        monkeypatch.setenv("I2V_HOST_ARCH", "x86_64")
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    provision("env", "--output", str(deploy / ".env"), "--models-dir", MODELS_DIR, cwd=deploy)
    files = {"env": (deploy / ".env").read_text()}
    override = deploy / compose_override.NAME
    if override.exists():
        files["compose.override.yaml"] = override.read_text()
    nodes = sorted((host / "root" / "dev").glob("davinci[0-9]*"))
    if nodes:
        gid = os.stat(nodes[0]).st_gid
        files["env"] = re.sub(rf"(?m)^I2V_NPU_GID={gid}$", f"I2V_NPU_GID={GOLDEN_GID}", files["env"])
    return files


@pytest.mark.parametrize("name", host_names())
def test_provision_writes_the_golden_files(monkeypatch, tmp_path, name):
    files = written(monkeypatch, tmp_path, name)
    golden = {
        "env": GOLDEN / f"{name}.env",
        "compose.override.yaml": GOLDEN / f"{name}.compose.override.yaml",
    }
    if os.environ.get("I2V_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        for kind, path in golden.items():
            if kind in files:
                path.write_text(files[kind])
            else:
                path.unlink(missing_ok=True)
    for kind, path in golden.items():
        if kind in files:
            assert path.exists(), f"{path.name} missing; I2V_UPDATE_GOLDEN=1 writes it"
            assert files[kind] == path.read_text(), f"{name}: provision's {kind} differs from {path}"
        else:
            assert not path.exists(), f"{name}: provision wrote no {kind}, but {path.name} exists"


def test_every_accelerator_host_gets_an_override_and_no_other_does():
    overrides = {p.name.split(".")[0] for p in GOLDEN.glob("*.compose.override.yaml")}
    accelerated = {
        p.name.split(".")[0]
        for p in GOLDEN.glob("*.env")
        if re.search(r"(?m)^COMPOSE_PROFILES=(npu|cuda)$", p.read_text())
    }
    assert {"h100x8", "910b3x8"} <= accelerated and overrides == accelerated


def test_override_lists_exactly_the_env_file_devices():
    for override in GOLDEN.glob("*.compose.override.yaml"):
        env = (GOLDEN / override.name.replace(".compose.override.yaml", ".env")).read_text()
        text = override.read_text()
        if "server-npu:" in text:
            listed = re.search(r"(?m)^I2V_NPU_DEVICES=(.*)$", env).group(1).split(",")
            assert re.findall(r"(?m)^      - (/dev/davinci\d+)$", text) == listed, override.name
        else:  # one device_ids entry per GPU of I2V_VISIBLE_DEVICES, never one "0,1,..." string
            visible = re.search(r"(?m)^I2V_VISIBLE_DEVICES=(.*)$", env).group(1).split(",")
            entries = re.search(r"(?m)^              device_ids: \[(.*)\]$", text).group(1)
            assert [e.strip().strip('"') for e in entries.split(",")] == visible, override.name
