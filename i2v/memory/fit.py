"""`python -m i2v.memory.fit [--model M ...] [--out PATH]`: measure, fit, write the memory coefficients.

For each full-size catalogue model: the grid of requests in `GRIDS` is measured on its fake-tensor
pipeline (`i2v.memory.measure`), every phase is fitted as a non-negative combination of the request
features (`i2v.memory.model.Features`), scaled up until no measured point is under-predicted, and the
coefficients, the float8 weight sizes and every measurement they came from are written to
`i2v/catalogue/memory_fits.json` (temp file, then rename) with the command, date and versions. The
catalogue reads that file (`i2v.catalogue.memory`); rerun this after changing an architecture or
upgrading diffusers. It takes about an hour on two busy cores (LTX-2's forwards dominate).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from i2v.catalogue.memory_grid import GRIDS, SAME_ARCHITECTURE, Point
from i2v.memory.model import FEATURES, Features, PhaseFit, request_features

OUT = Path(__file__).resolve().parents[1] / "catalogue" / "memory_fits.json"
# What runs between the named phases (latent preparation, post-processing) is fitted as a phase of its
# own ("other", with the conditioning phase's components): the largest of two regimes (a constant VAE
# encode against a per-frame buffer) is not linear, each of the two is.
PHASE_OF_MEASURED = {
    "text": "text",
    "condition": "condition",
    "other": "other",
    "denoise": "denoise",
    "decode": "decode",
}
# Fitted coefficients are scaled until every measured point is predicted this much above its
# measurement: a shape between grid points must not land below its own measurement either.
MARGIN = 0.02
# Which features each phase may use (the others' coefficients stay 0): what its tensors scale with.
PHASE_FEATURES = {
    "text": (),
    "condition": ("mpixel", "mpixel_frame"),
    "other": ("mpixel", "mpixel_frame"),
    "denoise": ("mtoken", "mpixel_frame"),
    "decode": ("mpixel", "mpixel_frame", "mpixel_decoded"),
}


def default_point(spec: Any) -> Point:
    """The model's default request (decoding one frame at a time where the family takes a chunk): where
    the float8 pipeline is measured, against the same point of the grid."""
    d = spec.defaults
    return Point(d.height, d.width, d.frames, 1 if spec.adapter.levers.decode_chunk else None)


def fit_phase(rows: list[tuple[Features, float]], allowed: tuple[str, ...]) -> tuple[PhaseFit, float]:
    """Non-negative least squares on relative error, then scaled so no row is under-predicted; returns
    the fit and its worst over-prediction (fraction of the measurement)."""
    import numpy as np

    columns = [FEATURES.index(name) for name in allowed]
    x = np.array([[1.0] + [f.values()[i] for i in columns] for f, _ in rows])
    y = np.array([max(v, 1.0) for _, v in rows])
    active = list(range(x.shape[1]))
    coef = np.zeros(x.shape[1])
    while active:
        weights = x[:, active] / y[:, None]
        solution, *_ = np.linalg.lstsq(weights, np.ones(len(y)), rcond=None)
        if (solution >= 0).all():
            coef[:] = 0
            coef[active] = solution
            break
        active.pop(int(np.argmin(solution)))
    predicted = x @ coef
    if not (predicted > 0).all():  # nothing fitted (all zero): a constant at the largest value
        coef[:] = 0
        coef[0] = y.max()
        predicted = x @ coef
    coef *= max((y * (1 + MARGIN) / predicted).max(), 1.0)
    over = float(((x @ coef) / y).max() - 1.0)
    values = dict(zip(["base_mib", *[f"per_{FEATURES[i]}" for i in columns]], coef.tolist(), strict=True))
    # rounded up: a rounded coefficient must not under-predict either
    return PhaseFit(**{k: math.ceil(v * 1000) / 1000 for k, v in values.items()}), round(over, 4)


def _fit_model(spec: Any, measurements: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[tuple[Features, float]]] = {}
    for m in measurements:
        s = m["setting"]
        f = request_features(spec, m["height"], m["width"], m["frames"], s["decode_chunk"])
        merged: dict[str, float] = {}
        for name, value in m["phases"].items():
            phase = PHASE_OF_MEASURED.get(name)
            if phase is not None:
                merged[phase] = max(merged.get(phase, 0.0), value)
        for phase, value in merged.items():
            variant = None
            if phase == "denoise" and s["forward_chunks"]:
                variant = "chunked"
            if phase == "decode" and s["vae_tiling"]:
                variant = "tiled"
            if phase in ("text", "condition", "other") and (s["forward_chunks"] or s["vae_tiling"]):
                continue  # the levers do not touch these phases: fitted from the plain points
            key = phase if variant is None else f"{phase}+{variant}"
            groups.setdefault(key, []).append((f, value))
    fits, worst = {}, {}
    for key, rows in sorted(groups.items()):
        fit, over = fit_phase(rows, PHASE_FEATURES[key.split("+")[0]])
        fits[key], worst[key] = fit.__dict__, over
    return {"fits": fits, "worst_over_prediction": worst}


def measure_model(model_id: str, log: Any, points: int = 0) -> dict[str, Any]:
    from i2v import catalogue
    from i2v.memory.measure import FakePipeline, Setting

    spec = catalogue.get(model_id)
    started = time.perf_counter()
    pipe = FakePipeline(spec)
    measurements = []
    for point in GRIDS[model_id][: points or None]:
        setting = Setting(point.decode_chunk, point.vae_tiling, point.forward_chunks)
        m = pipe.measure(point.height, point.width, point.frames, setting)
        measurements.append(m.to_dict())
        log(f"{model_id} {point}: {m.phases} ({m.seconds} s)")
    weights = {"weights_mib": pipe.weights_bytes / 2**20}
    del pipe
    fp8 = FakePipeline(spec, fp8=True)
    fp8_weights = {}
    for name in fp8.adapter.denoiser_names:
        module = getattr(fp8.pipe, name, None)
        if module is not None:
            fp8_weights[name] = round(
                sum(t.untyped_storage().nbytes() for t in module.parameters()) / 2**20, 1
            )
    fp8_measurements = []
    for point in [default_point(spec)]:
        m = fp8.measure(point.height, point.width, point.frames, Setting(point.decode_chunk))
        fp8_measurements.append(m.to_dict())
        log(f"{model_id} fp8 {point}: weights {m.weights_mib} MiB, {m.phases} ({m.seconds} s)")
    result = _fit_model(spec, measurements)
    # The per-layer upcast: float8 denoise above its (smaller) weights, less the bf16 denoise there.
    plain = {(m["height"], m["width"], m["frames"]): m for m in measurements}
    transient = max(
        m["phases"]["denoise"] - plain[(m["height"], m["width"], m["frames"])]["phases"]["denoise"]
        for m in fp8_measurements
    )
    result["fp8"] = {"weights_mib": fp8_weights, "upcast_mib": round(max(transient, 0.0), 1)}
    result["fp8_measurements"] = fp8_measurements
    result["measurements"] = measurements
    result["dtype"] = spec.preferred_dtype
    result["seconds"] = round(time.perf_counter() - started, 1)
    return weights | result


def _versions() -> dict[str, str]:
    import diffusers
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def refit(path: Path, models: list[str] | None) -> None:
    """Fit every model's stored measurements again (after a change to the fitting, not the pipelines)."""
    from i2v import catalogue

    data = json.loads(path.read_text(encoding="utf-8"))
    for model_id, entry in data["models"].items():
        if "same_as" in entry or (models and model_id not in models):
            continue
        entry.update(_fit_model(catalogue.get(model_id), entry["measurements"]))
        entry["source"]["refitted"] = time.strftime("%Y-%m-%d") + " (python -m i2v.memory.fit --refit)"
        print(f"{model_id}: worst over-prediction {entry['worst_over_prediction']}", file=sys.stderr)
    write_atomic(path, data)


def print_table(path: Path, models: list[str] | None) -> None:
    """Each stored measurement's peak (weights + largest phase) against the planner's prediction for the
    same request all resident, without device factors or overhead (MiB)."""
    from i2v import catalogue
    from i2v.planner import predict_peak_mib
    from i2v.request import resolve

    data = json.loads(path.read_text(encoding="utf-8"))["models"]
    print("| model | request | levers | predicted GiB | measured GiB | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for model_id, entry in data.items():
        if "same_as" in entry or (models and model_id not in models):
            continue
        spec = catalogue.get(model_id)
        for m in entry["measurements"]:
            s = m["setting"]
            request = resolve(spec, "standard", height=m["height"], width=m["width"], frames=m["frames"])
            predicted = (
                predict_peak_mib(
                    spec,
                    request,
                    m["dtype"],
                    "resident",
                    decode_chunk=s["decode_chunk"] or 0,
                    vae_tiling=s["vae_tiling"],
                    forward_chunking=bool(s["forward_chunks"]),
                    device_factors=False,
                )
                - spec.memory.overhead_mib
            )
            measured = m["weights_mib"] + max(m["phases"].values())
            levers = ", ".join(
                x
                for x in (
                    f"decode {s['decode_chunk']}" if s["decode_chunk"] else "",
                    "tiling" if s["vae_tiling"] else "",
                    f"ff {s['forward_chunks']} chunks" if s["forward_chunks"] else "",
                )
                if x
            )
            print(
                f"| {model_id} | {m['height']}x{m['width']}x{m['frames']} | {levers or '-'} | "
                f"{predicted / 1024:.2f} | {measured / 1024:.2f} | {predicted / measured:.3f} |"
            )


def _check_grids(models: list[str]) -> None:
    from i2v import catalogue
    from i2v.request import resolve

    for model_id in models:
        spec = catalogue.get(model_id)
        for point in GRIDS[model_id]:
            resolve(spec, "standard", height=point.height, width=point.width, frames=point.frames)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m i2v.memory.fit", description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="only these models (default: all in GRIDS)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the JSON to update (default {OUT})")
    parser.add_argument(
        "--points", type=int, default=0, help="measure only the first N grid points (a quick check)"
    )
    parser.add_argument(
        "--table",
        action="store_true",
        help="measure nothing: print the file's measurements against the prediction",
    )
    parser.add_argument(
        "--refit", action="store_true", help="measure nothing: fit again from the measurements the file holds"
    )
    args = parser.parse_args(argv)
    if args.table:
        print_table(args.out, args.model)
        return 0
    if args.refit:
        refit(args.out, args.model)
        return 0
    models = args.model or list(GRIDS)
    unknown = [m for m in models if m not in GRIDS]
    if unknown:
        parser.error(f"no grid for {', '.join(unknown)}; models with a grid: {', '.join(GRIDS)}")
    _check_grids(models)  # an invalid point fails now, not after an hour of measuring
    data = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {"models": {}}

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    for model_id in models:
        entry = measure_model(model_id, log, args.points)
        entry["source"] = {
            "command": "python -m i2v.memory.fit " + " ".join(f"--model {model_id}".split()),
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()} CPU, fake tensors (no GPU)",
            **_versions(),
        }
        data["models"][model_id] = entry
        for other, same in SAME_ARCHITECTURE.items():
            if same == model_id:
                data["models"][other] = {"same_as": model_id}
        write_atomic(args.out, data)  # after each model: an interrupted run keeps what it measured
        log(
            f"{model_id}: fitted {sorted(entry['fits'])}, worst over-prediction {entry['worst_over_prediction']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
