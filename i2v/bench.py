"""`i2v bench`: plain diffusers vs this runtime's plan, same process, same inputs, same seed.

For each model: the plain pipeline (same dtype, all on the device, diffusers' defaults) and the
runtime's plan (the planner's choice applied with `apply`), each built fresh, timed end to end
with seconds per step, peak device memory and build/load time; then the ratios and the frame
difference between the two outputs. `--arch-only` builds the catalogue's full-size architecture
with random weights directly on the device (no download; time and memory equal real weights').
Results are appended as JSON lines under bench/results/ with the device, versions and command.
"""

from __future__ import annotations

import gc
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from i2v import catalogue
from i2v.catalogue.spec import ModelSpec
from i2v.families import RunContext, adapter_for
from i2v.planner import Plan, plan
from i2v.progress import StepTracker
from i2v.request import GenerationRequest, resolve

MIB = 1024 * 1024


@dataclass
class Measurement:
    variant: str  # "plain diffusers" | "i2v plan"
    build_s: float
    total_s: float
    seconds_per_step: float | None
    peak_mib: int | None
    settings: str


@dataclass
class Comparison:
    model: str
    request: dict
    plain: Measurement
    runtime: Measurement
    speedup: float
    memory_ratio: float | None
    max_abs_diff: float
    mean_abs_diff: float
    lossy: bool


def _build(spec: ModelSpec, dtype: Any, device: Any, arch_only: bool, models_dir: Path | None) -> Any:
    """The pipeline the family adapter loads (or builds with random weights), prepared, not yet placed."""
    adapter = adapter_for(spec)
    if arch_only:
        pipe = adapter.build_random(spec, dtype, device)
    else:
        from i2v.engine import ensure_weights
        from i2v.settings import Settings

        folder = ensure_weights(spec, Settings(models_dir=models_dir) if models_dir else Settings())
        pipe = adapter.load(spec, folder, dtype, None)
    return adapter.prepare(pipe)


def _run(
    spec: ModelSpec, pipe: Any, request: GenerationRequest, image: Any, device: Any, decode_chunk: int | None
) -> tuple[Any, float, float | None, int | None]:
    """One timed run through the adapter's own call path (the engine's); ``decode_chunk`` None: the
    pipeline's default, as plain diffusers runs it."""
    import torch

    tracker = StepTracker(request.steps, None, lambda: None, log_every=10**9)
    generator = torch.Generator(device="cpu").manual_seed(request.seed)
    torch.manual_seed(request.seed)
    ctx = RunContext(device, generator, tracker, decode_chunk=decode_chunk)
    device.synchronize()
    device.reset_peak_memory_stats()
    started = time.perf_counter()
    with torch.inference_mode():
        output = adapter_for(spec).run(pipe, spec, request, image, ctx)
    device.synchronize()
    total = time.perf_counter() - started
    per_step = (time.perf_counter() - tracker.started) / tracker.step if tracker.step else None
    peak = None if device.kind == "cpu" else int(device.max_memory_allocated() // MIB)
    return output.frames, total, per_step, peak


def _free(device: Any) -> None:
    gc.collect()
    device.empty_cache()


def compare(
    spec: ModelSpec,
    request: GenerationRequest,
    device: Any,
    *,
    arch_only: bool,
    models_dir: Path | None = None,
    headroom: float = 0.9,
) -> Comparison:
    import numpy as np

    from i2v.cli import demo_image
    from i2v.devices.base import to_torch_dtype
    from i2v.engine import Engine

    image = demo_image(request.width, request.height)
    engine = Engine(device=device)
    p: Plan = plan(
        spec, request, engine.budget(spec), headroom=headroom, allow_compile=engine.settings.compile == "auto"
    )
    dtype = to_torch_dtype(p.dtype)

    started = time.perf_counter()
    pipe = _build(spec, dtype, device, arch_only, models_dir)
    pipe.to(device.torch_device())
    build_plain = time.perf_counter() - started
    plain_frames, plain_s, plain_step, plain_peak = _run(spec, pipe, request, image, device, None)
    del pipe
    _free(device)

    started = time.perf_counter()
    pipe = _build(spec, dtype, device, arch_only, models_dir)
    adapter_for(spec).apply_plan(pipe, p, device)
    build_ours = time.perf_counter() - started
    ours_frames, ours_s, ours_step, ours_peak = _run(spec, pipe, request, image, device, p.decode_chunk)
    del pipe
    _free(device)

    diff = np.abs(plain_frames.astype("float64") - ours_frames.astype("float64"))
    return Comparison(
        model=spec.id,
        request=request.to_dict(),
        plain=Measurement(
            "plain diffusers", build_plain, plain_s, plain_step, plain_peak, f"{p.dtype}, all on device"
        ),
        runtime=Measurement("i2v plan", build_ours, ours_s, ours_step, ours_peak, p.summary()),
        speedup=plain_s / ours_s if ours_s else 0.0,
        memory_ratio=(ours_peak / plain_peak) if plain_peak and ours_peak else None,
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        lossy=spec.running_preset(request).lossy,
    )


def environment(device: Any) -> dict[str, Any]:
    import diffusers
    import torch

    from i2v.engine import device_name

    return {
        "device": device_name(device),
        "kind": device.kind,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "python": platform.python_version(),
        "command": " ".join(["i2v", *sys.argv[1:]]) if sys.argv else "i2v bench",
    }


def append_results(results_dir: Path, env: dict[str, Any], comparisons: list[Comparison]) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{time.strftime('%Y-%m-%d')}-{env['kind']}.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        for c in comparisons:
            handle.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **env, **asdict(c)}) + "\n")
    return path


def run(
    models: list[str],
    preset: str,
    *,
    arch_only: bool,
    device: Any,
    results_dir: Path,
    models_dir: Path | None = None,
    **fields: Any,
) -> tuple[dict[str, Any], list[Comparison], Path]:
    comparisons = []
    for model_id in models:
        spec = catalogue.get(model_id)
        request = resolve(spec, preset, prompt="a ball rolls across a field", **fields)
        comparisons.append(compare(spec, request, device, arch_only=arch_only, models_dir=models_dir))
    env = environment(device)
    return env, comparisons, append_results(results_dir, env, comparisons)
