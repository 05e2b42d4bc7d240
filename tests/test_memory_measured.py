"""The planner's memory model against fresh fake-tensor measurements of every full-size pipeline.

Each shape below is measured again on the full-size architecture (fake weights, one CPU, no GPU;
`i2v.memory.measure`) and compared with the prediction the planner makes for it all-resident without
device factors: a phase predicted below its measurement fails (a plan that would run out of memory),
and so does one more than 15% above it (a plan that wastes the card; 128 MiB of slack for the small
phases). The shapes are not the fit's grid points where that can be helped, and are kept few and
short (frames) so the file runs in minutes on two cores.
"""

from __future__ import annotations

import pytest

from i2v import catalogue
from i2v.catalogue.memory_grid import SAME_ARCHITECTURE
from i2v.memory.phases import PhaseSetting
from i2v.planner import predict_peak_mib, weights_mib
from i2v.request import resolve

TOLERANCE = 0.15
SLACK_MIB = 128.0

# model -> (height, width, frames, decode chunk, forward chunking)
SHAPES = [
    ("i2vgen-xl", 768, 768, 24, 1, False),  # the seeds' 768p x 24 frames: 13.4 GiB all resident
    ("i2vgen-xl", 768, 768, 24, 1, True),  # ... and with forward chunking: what fits a 12 GB card
    ("i2vgen-xl", 384, 640, 16, 4, False),
    ("svd-xt", 448, 768, 14, 2, False),
    ("ltx-video", 704, 1216, 41, None, False),
    ("ltx-2", 384, 576, 33, None, False),
    ("wan2.1-i2v-14b-480p", 480, 832, 29, None, False),
    ("wan2.1-i2v-14b-720p", 720, 1280, 17, None, False),
    ("wan2.2-ti2v-5b", 704, 1280, 41, None, False),
    ("wan2.2-i2v-a14b", 480, 832, 21, None, False),
]

_pipelines: dict[str, object] = {}


def fake_pipeline(model: str):
    from i2v.memory.measure import FakePipeline

    key = SAME_ARCHITECTURE.get(model, model)
    if key not in _pipelines:
        _pipelines.clear()  # one full-size pipeline alive at a time
        _pipelines[key] = FakePipeline(catalogue.get(model))
    return _pipelines[key]


@pytest.mark.parametrize(("model", "height", "width", "frames", "chunk", "chunking"), SHAPES)
def test_prediction_is_never_below_the_measurement_nor_15_percent_above(
    model, height, width, frames, chunk, chunking
):
    from i2v.levers import FORWARD_CHUNKS
    from i2v.memory.measure import Setting

    spec = catalogue.get(model)
    pipe = fake_pipeline(model)
    request = resolve(spec, "standard", height=height, width=width, frames=frames)
    setting = Setting(decode_chunk=chunk, forward_chunks=FORWARD_CHUNKS if chunking else 0)
    measured = pipe.measure(height, width, frames, setting, request=request.with_(steps=2))
    phases = spec.adapter.phases(
        spec, request, PhaseSetting(spec.preferred_dtype, chunk or 0, forward_chunking=chunking)
    )
    predicted = {p.name: p.activations_mib for p in phases}
    observed: dict[str, float] = {}
    for name, value in measured.phases.items():
        observed[name] = max(observed.get(name, 0.0), value)
    report = {n: (round(predicted[n]), round(observed.get(n, 0.0))) for n in predicted}
    print(
        f"{model} {height}x{width}x{frames} chunk {chunk} chunking {chunking}: predicted, measured MiB {report}"
    )
    for name, value in observed.items():
        assert predicted[name] >= value - 1.0, (name, report)
        assert predicted[name] <= value * (1 + TOLERANCE) + SLACK_MIB, (name, report)
    # The total: the catalogue's weights plus the largest phase, overhead left out (no tensor holds it).
    total = predict_peak_mib(
        spec,
        request,
        spec.preferred_dtype,
        "resident",
        decode_chunk=chunk or 0,
        forward_chunking=chunking,
        device_factors=False,
    )
    total -= spec.memory.overhead_mib
    assert (
        abs(sum(weights_mib(spec, spec.preferred_dtype).values()) - measured.weights_mib)
        < 0.01 * measured.weights_mib
    )
    assert measured.peak_mib * 0.99 <= total <= measured.peak_mib * (1 + TOLERANCE), (
        total,
        measured.peak_mib,
    )


def test_the_fit_never_under_predicts_a_point_it_was_fitted_on():
    from i2v.memory.fit import fit_phase
    from i2v.memory.model import Features

    # decode-like rows: a per-chunk cost plus noise the linear form cannot follow exactly
    rows = [
        (Features(m, m * f, 0.0, m * c), 50 + 1400 * m * c + 7 * m * f + (9 if c == 4 else 0))
        for m in (0.07, 0.26, 0.59)
        for f in (8, 16)
        for c in (1, 4, 8)
    ]
    fit, over = fit_phase(rows, ("mpixel", "mpixel_frame", "mpixel_decoded"))
    assert all(fit.mib(f) >= v - 1e-6 for f, v in rows)
    assert 0 <= over < 0.15 and fit.per_mpixel_decoded > 1000


def test_i2v_plan_measure_prints_the_measured_phases_next_to_the_prediction(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = os.environ | {"I2V_DEVICE": "cpu", "I2V_MODELS_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "i2v", "plan", "--model", "tiny-wan2.1-i2v", "--measure", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    rows = {r["phase"]: r for r in data["measured"]["rows"]}
    assert set(rows) == {"text", "condition", "other", "denoise", "decode"}
    assert data["measured"]["weights_measured_mib"] > 0 and data["measured"]["attention_kernels"]
    assert all(r["measured_mib"] >= data["measured"]["weights_measured_mib"] for r in rows.values())
