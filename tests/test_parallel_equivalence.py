"""One job over 2 and 4 CPU "cards" (gloo processes) gives the frames one card gives.

Each run is a real process group started the way `i2v generate --cards N` starts it (rank 0 here,
`python -m i2v.parallel.follower` for the others), on the tiny Wan 2.1 and LTX-Video pipelines:
2 cards = CFG parallel (Wan: the two passes on two cards; LTX-Video: the CFG batch split), 4 cards =
CFG 2 x Ulysses 2 (diffusers' context parallelism; the tiny models' 2 heads divide 2, not 4, and
the CPU's attention backend has no ring). On the CPU this is slower, not faster: the test is about
correctness; the figures (per-step time ratio, what each card holds) go to test-artifacts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from service_harness import record_figure

pytest.importorskip("diffusers")

REPO = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("parallel_probe.py")
MODELS = ["tiny-wan2.1-i2v", "tiny-ltx-video"]
TOLERANCE = 1e-4  # float32 frames in [0, 1]; the runs so far agree to the last bit
_RUNS: dict[int, dict] = {}


def env_for(models: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("I2V_")}
    env.update(I2V_MODELS_DIR=str(models), I2V_DEVICE="cpu", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


CASES = [*MODELS, "tiny-wan2.1-i2v:1.0"]  # guidance 1: one Wan forward a step, nothing for the pair to split


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """probe(model, cards, guidance=None): one group per card count runs every case (start-up paid once)."""
    models = tmp_path_factory.getbasetemp() / "models"
    root = tmp_path_factory.mktemp("parallel")

    def run(model: str, cards: int, guidance: float | None = None) -> dict:
        if cards not in _RUNS:
            out = root / str(cards)
            command = [sys.executable, str(PROBE), str(cards), str(out), *CASES]
            started = time.monotonic()
            done = subprocess.run(
                command, env=env_for(models), cwd=REPO, capture_output=True, text=True, timeout=900
            )
            assert done.returncode == 0, done.stderr[-4000:]
            _RUNS[cards] = {"dir": out, "process_wall_s": time.monotonic() - started}
        name = f"{model}-{guidance if guidance is not None else 'default'}"
        info = json.loads((_RUNS[cards]["dir"] / f"{name}.json").read_text())
        info["frames"] = np.load(_RUNS[cards]["dir"] / f"{name}.npy")
        info["process_wall_s"] = _RUNS[cards]["process_wall_s"]
        return info

    return run


@pytest.mark.parametrize("cards", [2, 4])
@pytest.mark.parametrize("model", MODELS)
def test_frames_on_several_cards_match_one_card(probe, model, cards):
    one, many = probe(model, 1), probe(model, cards)
    assert many["layout"] == {2: "2 cards: cfg 2", 4: "4 cards: cfg 2 x ulysses 2"}[cards]
    assert one["frames"].shape == many["frames"].shape
    assert one["frames"].std() > 0.01  # a real video, not a constant that would match anything
    delta = float(np.abs(one["frames"] - many["frames"]).max())
    assert delta <= TOLERANCE, f"{model} on {cards} cards differs from 1 card by {delta}"
    per_card = many["per_card"]
    assert [c["rank"] for c in per_card] == list(range(cards))
    assert len({c["weights_bytes"] for c in per_card}) == 1  # context parallelism shards activations only
    _record(model, cards, one, many, delta)


@pytest.mark.parametrize("model", MODELS)
def test_ulysses_halves_what_each_card_computes_on(probe, model):
    pair, four = probe(model, 2), probe(model, 4)
    assert {c["shard_tokens"] for c in four["per_card"]} == {pair["per_card"][0]["shard_tokens"] // 2}
    assert {c["shard_bytes"] for c in four["per_card"]} == {pair["per_card"][0]["shard_bytes"] // 2}


def test_unguided_request_runs_the_same_on_a_cfg_pair(probe):
    """guidance 1: Wan runs one forward a step, so the CFG pair must not pair calls up."""
    one, pair = probe("tiny-wan2.1-i2v", 1, guidance=1.0), probe("tiny-wan2.1-i2v", 2, guidance=1.0)
    assert float(np.abs(one["frames"] - pair["frames"]).max()) <= TOLERANCE
    assert (
        float(np.abs(one["frames"] - probe("tiny-wan2.1-i2v", 1)["frames"]).max()) > 1e-3
    )  # guidance mattered


def test_i2v_generate_cards_writes_the_video_and_what_each_card_held(tmp_path, probe, tmp_path_factory):
    import av

    out = tmp_path / "ltx.mp4"
    command = [sys.executable, "-m", "i2v", "generate", "--model", "tiny-ltx-video", "--cards", "2", "--json"]
    command += ["--prompt", "a red ball rolls across a green field", "--steps", "2", "--seed", "7"]
    command += ["--out", str(out)]
    env = env_for(tmp_path_factory.getbasetemp() / "models")
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    data = json.loads(done.stdout)
    assert data["plan"]["layout"] == "2 cards: cfg 2" and [c["rank"] for c in data["cards"]] == [0, 1]
    with av.open(str(out)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]) / 255.0
    from i2v.video import write_mp4

    # The same request on one card, written the same way (random weights make noise, which H.264 blurs).
    write_mp4(probe("tiny-ltx-video", 1)["frames"], tmp_path / "one-card.mp4", fps=data["fps"])
    with av.open(str(tmp_path / "one-card.mp4")) as container:
        reference = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]) / 255.0
    assert frames.shape == reference.shape
    assert float(np.abs(frames - reference).max()) <= 1 / 255


def _record(model: str, cards: int, one: dict, many: dict, delta: float) -> None:
    figures = {
        "layout": many["layout"],
        "max_abs_delta_vs_1_card": delta,
        "seconds_per_step": {
            "1": round(one["seconds_per_step"], 4),
            str(cards): round(many["seconds_per_step"], 4),
        },
        "per_step_time_ratio": round(many["seconds_per_step"] / one["seconds_per_step"], 2),
        "probe_process_wall_s_all_cases": {
            "1": round(one["process_wall_s"], 1),
            str(cards): round(many["process_wall_s"], 1),
        },
        "per_card": [
            {k: c[k] for k in ("rank", "weights_bytes", "shard_tokens", "shard_bytes", "peak_bytes")}
            for c in many["per_card"]
        ],
    }
    record_figure(f"parallel_equivalence/{model}/{cards}", figures)
