"""The container checks (scripts/containers.py) as tests: real builds and a real `docker compose up`.

Marked `containers`: they need root, a Debian machine like CI's and ~15 minutes, so they run in CI
(CI=true, from `make test`), with `--run-containers`, or as `make containers`. The script runs once
for the module, its output streamed to the terminal; each test then reads one part of its report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.containers

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory, pytestconfig) -> dict:
    path = tmp_path_factory.mktemp("containers") / "report.json"
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "containers.py"), "--report", str(path)],
            cwd=ROOT,
            timeout=40 * 60,
            check=False,
        )
    if not path.exists():
        pytest.fail("scripts/containers.py wrote no report; its output is above")
    return json.loads(path.read_text())


def checks(report: dict, prefix: str) -> list[dict]:
    found = [c for c in report["checks"] if c["name"].startswith(prefix)]
    assert found, f"no check named {prefix!r} ran; the script stopped early (see its output)"
    return found


def assert_ok(report: dict, prefix: str) -> None:
    failed = [f"{c['name']}: {c['detail']}" for c in checks(report, prefix) if not c["ok"]]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize(
    "prefix",
    [
        "tools:",
        "hadolint",
        "compose config",
        "compose resolves one device_ids entry per GPU",
        "docker-bake.hcl",
        "engine:",
        "stand-in base images",
        "this machine's CPU torch",
    ],
)
def test_static_checks_and_setup(report, prefix):
    assert_ok(report, prefix)


@pytest.mark.parametrize("dockerfile", ["Dockerfile.cuda", "Dockerfile.cann"])
def test_every_stage_builds_on_the_stand_in_base(report, dockerfile):
    assert_ok(report, f"build {dockerfile}")
    kind = dockerfile.split(".")[1]
    assert set(report["sizes"][kind]) == {"base", "deps", "app", "weights", "runtime", "test"}


def test_source_only_change_reuses_the_dependency_layers(report):
    assert_ok(report, "rebuild Dockerfile.cuda")
    rerun = report["figures"]["rebuild_rerun"]
    assert rerun and not [
        step for step in rerun if step.startswith(("[base", "[deps")) or "/opt/venv /opt/venv" in step
    ]


@pytest.mark.parametrize(
    "prefix",
    [
        "provision picks the CANN image",  # stand-in version.info files -> the CANN release
        "CANN 8.3.rc2 image: entrypoint",  # toolkit + NNAL --cxx_abi=1, no torch import
        "the picked CANN",  # built on its base, sources its ascendnpu-ir script
        "CANN openEuler variant",  # no useradd in the base: installed, user i2v
    ],
)
def test_cann_image(report, prefix):
    assert_ok(report, prefix)


def test_cpu_image_has_a_ca_store_and_a_compiler(report):
    assert_ok(report, "build the cpu image's test stage")  # HTTPS via huggingface_hub, Triton-style build


def test_make_up_says_the_tag_is_in_no_registry_then_builds_here(report):
    assert_ok(report, "make up PULL=only")
    assert_ok(report, "make up: pull fails")


def test_cpu_profile_serves_a_real_job(report):
    assert_ok(report, "a real job over HTTP")


def test_service_user_is_not_root(report):
    assert_ok(report, "the service runs as a non-root user")


def test_air_gapped_bundle_round_trip(report):
    assert_ok(report, "make bundle")
    assert_ok(report, "make load refuses a truncated bundle")
    assert_ok(report, "make load refuses a tampered bundle")
    assert_ok(report, "remove the image and the models")
    assert_ok(report, "make load, then make up offline")
    assert report["figures"]["bundle_bytes"] > 0 and report["figures"]["load_to_finished_job_seconds"] > 0


@pytest.mark.parametrize(
    "profile", ["cuda", "npu"], ids=lambda p: f"{p}-service"
)  # id "cuda" would mean @cuda
def test_accelerator_services_request_their_devices(report, profile):
    assert_ok(report, f"{profile} service requests its devices")
