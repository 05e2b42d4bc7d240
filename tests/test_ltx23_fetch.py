"""`i2v fetch ltx-2.3 [--mode M]` against the fake hub through the real ModelScope client: only the files
the modes read from Lightricks/LTX-2.3, the Gemma root whole in a folder of its own, a manifest each,
resume of a cut download, offline, and what the runtime says when a mode's file was never fetched.

The hub serves the tiny-ltx-2.3 set under the real repo ids and file names, with files a fetch must
leave out (another checkpoint, code, docs).
"""

from __future__ import annotations

import json

import pytest
from hub_server import FakeHub
from typer.testing import CliRunner

from i2v.cli import app
from i2v.families.ltx2_official.weights import GEMMA_FOLDER, GEMMA_REPO, LTX_FOLDER, LTX_REPO

pytest.importorskip("torch")

DEV = "ltx-2.3-22b-dev.safetensors"
DISTILLED = "ltx-2.3-22b-distilled-1.1.safetensors"
LORA = "ltx-2.3-22b-distilled-lora-384-1.1.safetensors"
UPSAMPLER = "ltx-2.3-spatial-upscaler-x2-1.1.safetensors"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from i2v.tiny import ltx23

    tiny = ltx23.build(tmp_path_factory.mktemp("tiny") / "tiny-ltx-2.3")
    server = FakeHub()
    server.add_folder(
        LTX_REPO, tiny / LTX_FOLDER, extra={"ltx-2.3-22b-dev-fp8.safetensors": b"\0" * 512, "README.md": b"#"}
    )
    server.add_folder(GEMMA_REPO, tiny / GEMMA_FOLDER, extra={"modeling_gemma.py": b"import os\n"})
    with server:
        yield server


@pytest.fixture
def env(hub, monkeypatch, tmp_path):
    for name in ("HF_TOKEN", "MODELSCOPE_ENDPOINT", "MODELSCOPE_API_TOKEN", "I2V_OFFLINE", "I2V_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELSCOPE_DOMAIN", hub.url)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms-cache"))
    return tmp_path / "models"


def fetch(*args: str):
    return CliRunner().invoke(
        app, ["fetch", "ltx-2.3", "--source", "modelscope", *args], catch_exceptions=False
    )


def listed(folder) -> set[str]:
    """Files in ``folder``, leaving out side files (our hash cache, the ModelScope client's locks)."""
    paths = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return {p for p in paths if not p.startswith(".")}


def test_a_mode_fetches_only_its_files_and_the_gemma_root(env, hub):
    result = fetch("--mode", "distilled", "--dir", str(env), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    ltx, gemma = env / "ltx-2.3" / LTX_FOLDER, env / "ltx-2.3" / GEMMA_FOLDER
    assert [p["repo"] for p in data["parts"]] == [LTX_REPO, GEMMA_REPO] and data["up_to_date"] is False
    assert listed(ltx) == {DISTILLED, UPSAMPLER, "i2v-manifest.json"}
    gemma_files = listed(gemma)
    assert (
        "tokenizer.model" in gemma_files
        and "config.json" in gemma_files
        and "i2v-manifest.json" in gemma_files
    )
    assert any(f.startswith("model") and f.endswith(".safetensors") for f in gemma_files)
    assert "modeling_gemma.py" not in gemma_files  # never code
    # a second mode adds its files and keeps the first mode's
    again = fetch("--mode", "two-stage", "--dir", str(env), "--json")
    assert again.exit_code == 0, again.output
    manifest = json.loads((ltx / "i2v-manifest.json").read_text())
    assert {f["path"] for f in manifest["files"]} == {DISTILLED, UPSAMPLER, DEV, LORA}
    assert not hub.file_gets("ltx-2.3-22b-dev-fp8.safetensors")


def test_offline_verifies_what_is_there_and_names_the_command(env, monkeypatch):
    assert fetch("--mode", "one-stage", "--dir", str(env)).exit_code == 0
    monkeypatch.setenv("I2V_OFFLINE", "1")
    assert fetch("--mode", "one-stage", "--dir", str(env)).exit_code == 0
    (env / "ltx-2.3" / LTX_FOLDER / DEV).write_bytes(b"truncated")
    result = fetch("--mode", "one-stage", "--dir", str(env))
    assert (
        result.exit_code == 6
        and DEV in result.output
        and "i2v fetch ltx-2.3 --mode one-stage" in result.output
    )


def test_a_mode_whose_files_were_not_fetched_is_refused_before_loading(env):
    assert fetch("--mode", "distilled", "--dir", str(env)).exit_code == 0
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "-m",
            "ltx-2.3",
            "--mode",
            "two-stage",
            "--prompt",
            "p",
            "--height",
            "64",
            "--width",
            "64",
        ]
        + ["--frames", "9", "--out", str(env / "x.mp4")],
        env={"I2V_MODELS_DIR": str(env), "I2V_DEVICE": "cpu"},
    )
    assert result.exit_code == 3, result.output
    assert DEV in result.output and LORA in result.output and UPSAMPLER not in result.output.split("needs")[1]
    assert "run: i2v fetch ltx-2.3 --mode two-stage" in result.output and not (env / "x.mp4").exists()


def test_a_mode_the_model_does_not_have_is_a_clear_error(env):
    result = fetch("--mode", "slow-motion", "--dir", str(env))
    assert (
        result.exit_code == 2
        and "`mode` = 'slow-motion' is invalid: a mode of ltx-2.3 (two-stage" in result.output
    )
    assert not env.exists()


def test_a_cut_download_resumes_and_finished_parts_are_not_fetched_again(env, hub):
    hub.drop(LTX_REPO, DISTILLED, after=100_000, then_fail=True)
    try:
        cut = fetch("--mode", "distilled", "--dir", str(env))
    finally:
        hub.heal()
    assert cut.exit_code == 9 and "could not fetch ltx-2.3/LTX-2.3" in cut.output
    assert not (env / "ltx-2.3" / LTX_FOLDER / "i2v-manifest.json").exists()  # unfinished: no manifest
    before = len(hub.file_gets(UPSAMPLER))
    done = fetch("--mode", "distilled", "--dir", str(env))
    assert done.exit_code == 0, done.output
    assert len(hub.file_gets(UPSAMPLER)) == before  # delivered by the first run, kept
    assert (env / "ltx-2.3" / LTX_FOLDER / "i2v-manifest.json").is_file()
