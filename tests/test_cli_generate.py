"""`i2v generate` / `models` / `plan` as a user runs them: real subprocesses, real tiny models, real mp4s."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from i2v import catalogue
from i2v.video import probe_mp4

TINY_IDS = [s.id for s in catalogue.all_specs() if s.tiny]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    return os.environ | {"I2V_MODELS_DIR": str(models), "I2V_DEVICE": "cpu"}


def i2v(env, *args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "i2v", *args], capture_output=True, text=True, env=env, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.mark.parametrize("model", TINY_IDS)
def test_generate_writes_the_requested_video(env, tmp_path, model):
    spec = catalogue.get(model)
    c = spec.constraints
    frames = c.nearest_frames(spec.defaults.frames + c.frames_step)  # not the default: the flag must work
    fps = 12
    out = tmp_path / "out.mp4"
    result = i2v(
        env,
        "generate",
        "--model",
        model,
        "--prompt",
        "a ball rolls",
        "--frames",
        str(frames),
        "--height",
        str(spec.defaults.height),
        "--width",
        str(spec.defaults.width),
        "--fps",
        str(fps),
        "--steps",
        "2",
        "--out",
        str(out),
        "--json",
    )
    data = json.loads(result.stdout)
    info = probe_mp4(out)
    assert (info.frames, info.height, info.width) == (frames, spec.defaults.height, spec.defaults.width)
    assert info.fps == fps and data["frames"] == frames and data["plan"]["model"] == model
    if spec.family == "ltx-2":
        assert info.has_audio


def test_invalid_frames_name_field_rule_and_nearest(env, tmp_path):
    result = i2v(
        env,
        "generate",
        "--model",
        "tiny-ltx-video",
        "--frames",
        "12",
        "--out",
        str(tmp_path / "x.mp4"),
        check=False,
    )
    assert result.returncode == 2
    assert (
        "`frames` = 12" in result.stderr
        and "8k+1" in result.stderr
        and "nearest valid value: 9" in result.stderr
    )
    assert not (tmp_path / "x.mp4").exists()


def test_not_an_image_is_a_clear_error(env, tmp_path):
    bogus = tmp_path / "notes.png"
    bogus.write_text("this is text")
    result = i2v(
        env,
        "generate",
        "--model",
        "tiny-wan2.1-i2v",
        "--image",
        str(bogus),
        "--out",
        str(tmp_path / "x.mp4"),
        check=False,
    )
    assert result.returncode == 2 and "is not an image" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_missing_weights_give_the_fetch_command(env, tmp_path):
    result = i2v(
        env,
        "generate",
        "--model",
        "svd-xt",
        "--preset",
        "fast",
        "--out",
        str(tmp_path / "x.mp4"),
        check=False,
    )
    assert result.returncode == 3 and "i2v fetch svd-xt" in result.stderr


def test_models_json_lists_every_model_with_fit_and_weights(env):
    rows = json.loads(i2v(env, "models", "--json").stdout)
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {s.id for s in catalogue.all_specs()}
    assert by_id["wan2.1-i2v-14b-480p"]["weights_present"] is False
    assert by_id["tiny-i2vgen-xl"]["fits"] is True and "resident" in by_id["tiny-i2vgen-xl"]["plan"]
    # each model's backend and its modes (the default first-class: default_mode)
    assert (by_id["ltx-2.3"]["backend"], by_id["ltx-2.3"]["default_mode"]) == ("ltx-pipelines", "two-stage")
    assert len(by_id["ltx-2.3"]["modes"]) == 8 and "retake" in by_id["ltx-2.3"]["modes"]
    # diffusers' LTX-2 refuses retake (no pipeline for it there)
    assert by_id["ltx-2"]["backend"] == "diffusers" and "retake" not in by_id["ltx-2"]["modes"]
    assert by_id["tiny-svd"]["modes"] == [] and by_id["tiny-svd"]["default_mode"] is None


def test_plan_json(env):
    plan = json.loads(i2v(env, "plan", "--model", "tiny-wan2.1-i2v", "--json").stdout)
    assert plan["dtype"] == "float32" and plan["strategy"] == "resident"
