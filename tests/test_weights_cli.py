"""`i2v fetch` as a user runs it, against the fake hub: output, JSON, exit codes and their messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import GATED_REPO, PICKLE_REPO, REPO, TINY, UNET, standard_hub
from typer.testing import CliRunner

from i2v.cli import app


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from i2v.tiny import build_tiny

    folder = build_tiny(TINY, tmp_path_factory.mktemp("tiny") / TINY)
    with standard_hub(folder) as server:
        yield server


@pytest.fixture
def env(hub, monkeypatch, tmp_path):
    for name in ("HF_TOKEN", "MODELSCOPE_ENDPOINT", "MODELSCOPE_DOMAIN", "I2V_OFFLINE", "I2V_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    return tmp_path / "models"


def i2v(*args: str):
    return CliRunner().invoke(app, ["fetch", *args], catch_exceptions=False)


def test_fetch_json_prints_one_manifest_summary(env):
    result = i2v(TINY, "--repo", REPO, "--source", "huggingface", "--dir", str(env), "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["folder"] == str(env / TINY) and data["source"] == "hf-mirror" and data["repo"] == REPO
    assert data["file_count"] == 13 and data["total_bytes"] > 2_000_000 and data["up_to_date"] is False
    assert (env / TINY / "i2v-manifest.json").is_file()


def test_fetch_shows_per_file_progress_on_stderr_and_a_line_on_stdout(env):
    result = i2v(TINY, "--repo", REPO, "--source", "huggingface", "--dir", str(env))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"fetched: {TINY} (13 files, 0.00 GB) from hf-mirror {REPO}@")
    assert UNET in result.stderr and "MB" in result.stderr and "/s" in result.stderr  # bytes, rate


def test_verify_passes_then_names_a_flipped_file(env):
    assert i2v(TINY, "--repo", REPO, "--source", "huggingface", "--dir", str(env), "--json").exit_code == 0
    ok = i2v(TINY, "--dir", str(env), "--verify")
    assert ok.exit_code == 0 and ok.stdout.startswith(f"verified: {TINY} (13 files")
    path = env / TINY / UNET
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    bad = i2v(TINY, "--dir", str(env), "--verify")
    assert bad.exit_code == 6
    assert f"error: `{UNET}` in {env / TINY} is corrupted: its sha256" in bad.stderr
    assert f"re-fetch it: i2v fetch {TINY} --dir {env}" in " ".join(bad.stderr.split())


def test_verify_of_a_model_never_fetched_says_how_to_fetch_it(env):
    result = i2v("wan2.1-i2v-14b-480p", "--dir", str(env), "--verify")
    assert result.exit_code == 3
    assert "run: i2v fetch wan2.1-i2v-14b-480p --dir" in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    ("repo", "code", "text"),
    [
        (
            GATED_REPO,
            7,
            f"`{GATED_REPO}` is gated on Hugging Face: set HF_TOKEN (a token that accepted the licence)",
        ),
        (PICKLE_REPO, 8, f"`{PICKLE_REPO}`: component `vae` has only pickle weights"),
        ("org/nothing-here", 9, "could not fetch tiny-i2vgen-xl; tried:"),
    ],
)
def test_failures_exit_with_their_code_and_message(env, repo, code, text):
    result = i2v(TINY, "--repo", repo, "--source", "huggingface", "--dir", str(env))
    assert result.exit_code == code
    assert text in " ".join(result.stderr.split())


def test_offline_fetch_exits_10(env, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("I2V_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # restored after the test,
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # as offline mode sets both
    result = i2v("wan2.1-i2v-14b-480p", "--dir", str(env))
    assert result.exit_code == 10 and "offline mode (I2V_OFFLINE=1)" in result.stderr


def test_the_installed_entry_point_fetches_from_HF_ENDPOINT(env, hub, tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "i2v",
            "fetch",
            TINY,
            "--repo",
            REPO,
            "--source",
            "huggingface",
            "--dir",
            str(env),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["endpoint"] == hub.url
