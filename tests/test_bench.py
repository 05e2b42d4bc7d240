"""`i2v bench --arch-only` smoke on CPU: the command runs both variants and records them."""

import json
import os
import subprocess
import sys

import pytest


def test_bench_arch_only_smoke(tmp_path):
    env = os.environ | {"I2V_DEVICE": "cpu", "I2V_MODELS_DIR": str(tmp_path / "models")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "i2v",
            "bench",
            "--model",
            "tiny-i2vgen-xl",
            "--arch-only",
            "--steps",
            "2",
            "--results-dir",
            str(tmp_path / "results"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (row,) = report["results"]
    assert row["model"] == "tiny-i2vgen-xl" and row["plain"]["variant"] == "plain diffusers"
    for variant in ("plain", "runtime"):  # two steps: a step is part of the run, not the whole run
        assert 0 < row[variant]["seconds_per_step"] < row[variant]["total_s"], row[variant]
    assert row["speedup"] == pytest.approx(row["plain"]["total_s"] / row["runtime"]["total_s"])
    # same seed, same weights, fp32: the plan (batched VAE decode) must not change the frames
    assert not row["lossy"] and row["max_abs_diff"] < 1e-4
    lines = (tmp_path / "results").glob("*.jsonl")
    (path,) = list(lines)
    recorded = json.loads(path.read_text().splitlines()[-1])
    assert recorded["device"].endswith("CPU") and recorded["torch"] and recorded["diffusers"] == "0.42.1"
    assert "bench" in recorded["command"]
