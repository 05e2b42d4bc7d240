"""`provision` as a user runs it: a real subprocess, with a recorded host's tools first on PATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hosts import use_host

from provision.envfile import parse


def provision(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "provision", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ.copy(),
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def test_detect_json_on_a_machine_without_accelerators(monkeypatch):
    use_host(monkeypatch, "none")
    report = json.loads(provision("detect", "--json").stdout)
    assert report["vendor"] == "none" and report["devices"] == []
    assert report["ram_mib"] > 0 and report["arch"] in ("x86_64", "aarch64")
    assert report["profile"] == "cpu"


def test_detect_json_h100x8(monkeypatch):
    use_host(monkeypatch, "h100x8")
    report = json.loads(provision("detect", "--json").stdout)
    assert report["vendor"] == "nvidia" and len(report["devices"]) == 8
    first = report["devices"][0]
    assert (first["index"], first["name"], first["memory_total_mib"], first["memory_free_mib"]) == (
        0,
        "NVIDIA H100 80GB HBM3",
        81559,
        81106,
    )


def test_detect_json_atlas(monkeypatch):
    use_host(monkeypatch, "910b3x8")
    result = provision("detect", "--json")
    report = json.loads(result.stdout)  # one JSON document on stdout, nothing else
    assert report["vendor"] == "ascend" and report["profile"] == "npu"
    assert [d["index"] for d in report["devices"]] == list(range(8))
    assert all(d["memory_total_mib"] == 65536 for d in report["devices"])


def test_driver_error_is_a_warning_not_a_traceback(monkeypatch):
    use_host(monkeypatch, "nvidia-driver-error")
    result = provision("detect", "--json")
    assert json.loads(result.stdout)["vendor"] == "none"
    assert "warning" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("host", "profile", "device", "dtype", "image_tail"),
    [
        ("h100x8", "cuda", "cuda", "bfloat16", "-cuda12.6"),  # driver 565.57: 12.6 (>= 560.28), not 12.8
        ("rtx3060-12g", "cuda", "cuda", "float16", "-cuda12.8"),  # i2vgen-xl is an fp16 model
        ("910b3x8", "npu", "npu", "bfloat16", "-910b"),
        ("none", "cpu", "cpu", "float32", "-cpu"),
    ],
)
def test_env_describes_the_host(monkeypatch, tmp_path, host, profile, device, dtype, image_tail):
    use_host(monkeypatch, host)
    out = tmp_path / ".env"
    provision("env", "--output", str(out), cwd=tmp_path)
    values = parse(out.read_text())
    assert values["COMPOSE_PROFILES"] == profile
    assert values["I2V_DEVICE"] == device
    assert values["I2V_DTYPE"] == dtype
    assert values["I2V_IMAGE"].endswith(image_tail), values["I2V_IMAGE"]
    for key in (
        "I2V_MODEL",
        "I2V_PRESET",
        "I2V_STRATEGY",
        "I2V_PORT",
        "I2V_MODELS_DIR",
        "PIP_INDEX_URL",
        "HF_ENDPOINT",
        "MODELSCOPE_DOMAIN",
    ):
        assert values[key], key
    assert out.stat().st_mode & 0o777 == 0o600


def test_env_rerun_is_byte_identical_and_keeps_user_lines(monkeypatch, tmp_path):
    use_host(monkeypatch, "910b3x8")
    out = tmp_path / ".env"
    provision("env", "--output", str(out), cwd=tmp_path)
    first = out.read_bytes()
    provision("env", "--output", str(out), cwd=tmp_path)
    assert out.read_bytes() == first
    values = parse(first.decode())
    assert values["I2V_NPU_DEVICES"] == ",".join(f"/dev/davinci{i}" for i in range(8))
    assert values["ASCEND_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6,7"
    with out.open("a") as handle:
        handle.write("# added by me\nMY_TOKEN=abc\n")
    edited = out.read_bytes()
    provision("env", "--output", str(out), "--model", "svd-xt", cwd=tmp_path)
    text = out.read_text()
    assert "# added by me\nMY_TOKEN=abc\n" in text and parse(text)["I2V_MODEL"] == "svd-xt"
    provision("env", "--output", str(out), cwd=tmp_path)  # the choice sticks
    assert parse(out.read_text())["I2V_MODEL"] == "svd-xt" and edited != out.read_bytes()


def test_310p_lists_one_node_per_chip(monkeypatch, tmp_path):
    use_host(monkeypatch, "310p")
    out = tmp_path / ".env"
    provision("env", "--output", str(out), cwd=tmp_path)
    values = parse(out.read_text())
    assert values["I2V_NPU_DEVICES"] == ",".join(f"/dev/davinci{i}" for i in range(8))
    assert values["I2V_DTYPE"] == "float16"
    assert values["I2V_IMAGE"].endswith("-310p")


def test_unknown_model_lists_valid_ids(monkeypatch, tmp_path):
    use_host(monkeypatch, "none")
    result = provision("env", "--output", str(tmp_path / ".env"), "--model", "sora", check=False)
    assert result.returncode == 2
    assert (
        "'sora'" in result.stderr and "wan2.1-i2v-14b-480p" in result.stderr and "i2vgen-xl" in result.stderr
    )
    assert not (tmp_path / ".env").exists()


def test_unwritable_env_is_a_clear_error_and_old_file_untouched(monkeypatch, tmp_path):
    use_host(monkeypatch, "none")
    result = provision("env", "--output", "/proc/i2v.env", check=False)
    assert result.returncode == 3 and "cannot write /proc/i2v.env" in result.stderr
    assert "Traceback" not in result.stderr


def test_plan_json_on_a_12gb_card(monkeypatch):
    use_host(monkeypatch, "rtx3060-12g")
    plan = json.loads(provision("plan", "--model", "i2vgen-xl", "--json").stdout)
    assert plan["strategy"] == "resident" and plan["dtype"] == "float16"
    assert plan["predicted_peak_mib"] <= plan["budget_mib"]


def test_plan_refusal_exit_code_names_the_reason(monkeypatch):
    use_host(monkeypatch, "rtx3060-12g")
    result = provision("plan", "--model", "wan2.1-i2v-14b-720p", "--preset", "hq", check=False)
    assert result.returncode == 4, result.stdout
    assert "does not fit NVIDIA GeForce RTX 3060" in result.stderr
    assert "GiB" in result.stderr and "Traceback" not in result.stderr


def test_doctor_reports_fixes_and_exits_1_without_engine(monkeypatch):
    use_host(monkeypatch, "910b3x8")
    result = provision("doctor", "--json", "--no-network", "--model", "i2vgen-xl", check=False)
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["errors"] >= 1
    engine = [f for f in report["findings"] if f["check"] == "engine"][0]
    assert engine["level"] == "error" and "docker" in engine["fix"]
    devices = [f for f in report["findings"] if f["check"] == "devices"][0]
    assert devices["level"] == "ok"


def test_detect_imports_no_torch(monkeypatch):
    use_host(monkeypatch, "h100x8")
    code = (
        "import sys; from provision.cli import app\n"
        "try:\n    app(['detect', '--json'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=os.environ.copy())
