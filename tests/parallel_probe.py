"""Run requests on N cards the way `i2v generate --cards N` does and keep the raw frames.

    python tests/parallel_probe.py CARDS OUT_DIR MODEL[:GUIDANCE] ...

One process group serves every request in turn (the pipeline is reloaded between models, as a
worker reloads), so the process start-up is paid once. For each request writes
OUT_DIR/<model>-<guidance>.npy (float32 frames, before the mp4's 8-bit rounding) and
OUT_DIR/<model>-<guidance>.json (the layout, seconds per step, what each card held).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cards", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("cases", nargs="+", help="MODEL or MODEL:GUIDANCE")
    args = parser.parse_args()

    from i2v import catalogue
    from i2v.cli import demo_image
    from i2v.engine import Engine
    from i2v.parallel import layout_for
    from i2v.parallel.follower import run_on_cards
    from i2v.request import resolve
    from i2v.settings import load_settings

    settings = load_settings(device="cpu")
    requests = []
    for case in args.cases:
        model, _, guidance = case.partition(":")
        spec = catalogue.get(model)
        request = resolve(
            spec,
            "standard",
            prompt="a red ball rolls across a green field",
            steps=2,
            guidance=float(guidance) if guidance else None,
            seed=7,
        )
        requests.append(
            (f"{model}-{guidance or 'default'}", request, demo_image(request.width, request.height))
        )
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.cards == 1:
        engine = Engine(settings)
        results = [engine.generate(request, image) for _, request, image in requests]
    else:
        # Every model here splits the same way over these cards (tests/test_parallel_equivalence.py).
        layout = layout_for(catalogue.get(requests[0][1].model), args.cards, ring_available=False)
        results = run_on_cards(settings, layout, [(request, image) for _, request, image in requests])
    for (name, _, _), result in zip(requests, results, strict=True):
        np.save(args.out / f"{name}.npy", np.asarray(result.output.frames, dtype=np.float32))
        info = {
            "cards": args.cards,
            "layout": result.plan.layout,
            "seconds_per_step": result.seconds_per_step,
            "run_s": result.run_s,
            "per_card": result.cards,
        }
        (args.out / f"{name}.json").write_text(json.dumps(info, indent=2))
    (args.out / "wall.json").write_text(json.dumps({"wall_s": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
