"""The CANN image an Atlas host gets, and how that image sources CANN's environment.

provision picks the CANN release from the host's NPU driver (/usr/local/Ascend/driver/version.info;
cases in tests/fixtures/ascend-driver/), `provision doctor` names a driver too old for every image with
the fix; docker/scripts/cann-env.sh sources CANN's scripts the way the bases' own ENTRYPOINT does, on
fixture trees laid out like the 8.3.RC2, 8.5.1 and 9.0.0 bases.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hosts import HOSTS_DIR, use_host
from test_provision_cli import provision

from provision import cann

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = Path(__file__).parent / "fixtures" / "ascend-driver"
CANN_ENV = ROOT / "docker" / "scripts" / "cann-env.sh"


# ---------------------------------------------------------------------------------------------- versions


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("24.1.rc2.2", "24.1.0"),
        ("24.1.0", "25.3.RC1"),
        ("25.3.rc1", "25.3.0"),
        ("25.3.0", "25.3.1"),
        ("25.5.0", "25.5.1"),
        ("25.5.1", "25.5.2"),
        ("25.5.2", "26.0.RC1"),
        ("25.0.rc1.b033", "25.0.rc1.b034"),
    ],
)
def test_driver_versions_order_release_candidates_before_the_release(older, newer):
    assert cann.driver_key(older) < cann.driver_key(newer)


@pytest.mark.parametrize("bad", ["", "25", "x.y", "25.3.final"])
def test_a_driver_version_that_is_not_one_is_named(bad):
    with pytest.raises(cann.DriverVersionError, match=re.escape(repr(bad))):
        cann.driver_key(bad)


@pytest.mark.parametrize(
    ("driver", "tag"),
    [
        ("25.3.RC1", "8.3.rc2"),
        ("25.3.1", "8.3.rc2"),
        ("25.5.0", "8.5.1"),
        ("25.5.1", "9.0.0"),
        ("26.0.RC1", "9.0.0"),
    ],
)
def test_the_newest_cann_the_driver_runs(driver, tag):
    choice = cann.choose(driver)
    assert choice.release.tag == tag and choice.mismatch is None
    assert cann.runs(driver, choice.release)


def test_a_driver_older_than_every_image_gets_the_oldest_image_and_the_fix():
    choice = cann.choose("24.1.rc2.2")
    assert choice.release is cann.CANN_RELEASES[0]
    assert "Ascend driver 24.1.rc2.2 is older than every CANN image needs" in choice.mismatch
    assert "CANN 8.3.RC2 needs >= 25.3.RC1" in choice.mismatch
    assert choice.fix.startswith(
        f"upgrade the Ascend HDK driver and firmware to {cann.CANN_RELEASES[-1].min_driver}"
    )


# ---------------------------------------------------------------------------------------------- provision


def atlas_with_driver(tmp_path: Path, version_info: Path | None) -> Path:
    """A copy of the recorded 910b3x8 host whose driver version.info is `version_info` (None: removed)."""
    shutil.copy(HOSTS_DIR / "_replay.sh", tmp_path / "_replay.sh")
    host = tmp_path / "910b3x8"
    shutil.copytree(HOSTS_DIR / "910b3x8", host, symlinks=True)
    target = host / "root/usr/local/Ascend/driver/version.info"
    target.unlink()
    if version_info is not None:
        shutil.copy(version_info, target)
    return host


@pytest.mark.parametrize(
    ("case", "tag"),
    [
        (DRIVERS / "25.3.rc1" / "version.info", "cann8.3.rc2-910b"),
        (DRIVERS / "25.5.0" / "version.info", "cann8.5.1-910b"),
        (DRIVERS / "25.5.1" / "version.info", "cann9.0.0-910b"),
        (HOSTS_DIR / "npu-dcmi-error/root/usr/local/Ascend/driver/version.info", "cann9.0.0-910b"),
        (HOSTS_DIR / "910b3x8/root/usr/local/Ascend/driver/version.info", "cann8.3.rc2-910b"),
    ],
    ids=["25.3.rc1", "25.5.0", "25.5.1", "25.5.2", "24.1.rc2.2"],
)
def test_provision_env_names_the_cann_image_of_the_host_driver(monkeypatch, tmp_path, case, tag):
    use_host(monkeypatch, atlas_with_driver(tmp_path, case))
    out = tmp_path / "deploy" / ".env"
    out.parent.mkdir()
    provision("env", "--output", str(out), cwd=out.parent)
    image = re.search(r"(?m)^I2V_IMAGE=(.*)$", out.read_text()).group(1)
    assert image == f"docker.io/i2vdeploy/i2v-deploy:0.1.0-{tag}"


def doctor_driver(monkeypatch, tmp_path, case: Path | None) -> dict:
    use_host(monkeypatch, atlas_with_driver(tmp_path, case))
    done = provision("doctor", "--json", "--no-network", cwd=tmp_path, check=False)
    return next(f for f in json.loads(done.stdout)["findings"] if f["check"] == "driver")


def test_doctor_names_a_driver_cann_mismatch_and_the_fix(monkeypatch, tmp_path):
    finding = doctor_driver(
        monkeypatch, tmp_path, HOSTS_DIR / "910b3x8/root/usr/local/Ascend/driver/version.info"
    )
    assert finding["level"] == "error"
    assert finding["message"].startswith("Ascend driver 24.1.rc2.2 is older than every CANN image needs")
    assert "upgrade the Ascend HDK driver and firmware to 25.5.1 or newer" in finding["fix"]


def test_doctor_is_content_with_a_driver_that_runs_the_image(monkeypatch, tmp_path):
    finding = doctor_driver(monkeypatch, tmp_path, DRIVERS / "25.5.1" / "version.info")
    assert finding["level"] == "ok" and "runs CANN 9.0.0 (needs >= 25.5.1)" in finding["message"]
    assert "torch 2.10.0 / torch_npu 2.10.0" in finding["message"]


def test_doctor_without_version_info_says_which_file_is_missing(monkeypatch, tmp_path):
    finding = doctor_driver(monkeypatch, tmp_path, None)
    assert finding["level"] == "error" and "/usr/local/Ascend/driver/version.info" in finding["message"]


def test_every_cann_release_is_a_bake_target_with_its_pair():
    bake = (ROOT / "docker" / "docker-bake.hcl").read_text()
    for release in cann.CANN_RELEASES:
        assert (
            f'{{ cann = "{release.tag}", torch = "{release.torch}", torchaudio = "{release.torch}", '
            f'torch_npu = "{release.torch_npu}" }}'
        ) in bake, release


# ---------------------------------------------------------------------------------------------- cann-env.sh


def ascend_tree(root: Path, cann_version: str) -> Path:
    """/usr/local/Ascend as the CANN bases lay it out, with stub scripts that log how they were sourced.
    The NNAL stub does what the real one does without `--cxx_abi=`: ask python3 whether torch uses the
    C++11 ABI (here: it logs that it would import torch)."""
    log = root / "log"
    log.unlink(missing_ok=True)

    def stub(path: str, body: str) -> None:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)

    stub("ascend-toolkit/set_env.sh", f'echo "toolkit $*" >> {log}\n')
    if cann_version != "8.3.rc2":  # 8.5.1 / 9.0.0: cann-<v>/share/info/ascendnpu-ir/bin/set_env.sh
        stub(
            f"cann-{cann_version}/share/info/ascendnpu-ir/bin/set_env.sh",
            f'echo "ascendnpu-ir {cann_version} $*" >> {log}\n',
        )
    stub(
        "nnal/atb/set_env.sh",
        'abi=""\nfor arg in "$@"; do case "$arg" in --cxx_abi=*) abi="${arg#--cxx_abi=}";; esac; done\n'
        f'if [ -z "$abi" ]; then echo "nnal imports torch to find the ABI" >> {log}; '
        f'else echo "nnal cxx_abi=$abi" >> {log}; fi\n',
    )
    return log


def source_cann_env(root: Path, cann_version: str, **env: str) -> list[str]:
    log = ascend_tree(root, cann_version)
    subprocess.run(
        ["bash", "-c", f'. "{CANN_ENV}" && echo "args after: $#" >> "{log}"', "bash", "one", "two"],
        env={**os.environ, "I2V_ASCEND_ROOT": str(root), "I2V_CANN_VERSION": cann_version, **env},
        check=True,
    )
    return log.read_text().splitlines()


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("8.3.rc2", ["toolkit ", "nnal cxx_abi=1"]),
        ("8.5.1", ["toolkit ", "ascendnpu-ir 8.5.1 ", "nnal cxx_abi=1"]),
        ("9.0.0", ["toolkit ", "ascendnpu-ir 9.0.0 ", "nnal cxx_abi=1"]),
    ],
)
def test_cann_env_sources_what_the_bases_entrypoint_does_without_importing_torch(tmp_path, version, expected):
    # the caller's positional arguments neither reach the scripts nor get lost
    assert source_cann_env(tmp_path, version) == [*expected, "args after: 2"]


def test_cann_env_takes_another_abi_from_atb_cxx_abi(tmp_path):
    assert "nnal cxx_abi=0" in source_cann_env(tmp_path, "9.0.0", ATB_CXX_ABI="0")


def test_cann_env_sources_only_its_own_releases_ascendnpu_ir(tmp_path):
    ascend_tree(tmp_path, "9.0.0")  # the same tree also holds cann-9.0.0's script
    assert source_cann_env(tmp_path, "8.5.1") == [
        "toolkit ",
        "ascendnpu-ir 8.5.1 ",
        "nnal cxx_abi=1",
        "args after: 2",
    ]
