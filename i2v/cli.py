"""`i2v`: generate videos, list models, show plans. Thin wiring over the engine and the catalogue.

Every command prints through one sink: `--json` gives one JSON document on stdout with progress
and logs on stderr; exceptions map to a message and an exit code in `i2v.errors` (I2V_DEBUG=1 for the
traceback).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from i2v import catalogue
from i2v.output import Output, handle_errors
from i2v.planner import PlanRefusedError
from i2v.request import InvalidRequestError, require_prompt, resolve

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Image-to-video on CUDA, Ascend NPU or CPU, choosing how to use memory.",
)


Json = Annotated[bool, typer.Option("--json", help="One JSON document on stdout; logs on stderr.")]
Model = Annotated[str, typer.Option("--model", "-m", help="Catalogue id (`i2v models`).")]
Preset = Annotated[str, typer.Option("--preset", "-p", help="fast | standard | hq")]
Height = Annotated[int | None, typer.Option(help="Pixels; the model's rule applies (`i2v models`).")]
Width = Annotated[int | None, typer.Option(help="Pixels; the model's rule applies.")]
Frames = Annotated[int | None, typer.Option(help="Frame count; LTX 8k+1, Wan 4k+1.")]
Steps = Annotated[int | None, typer.Option(help="Denoising steps.")]
Guidance = Annotated[float | None, typer.Option(help="Classifier-free guidance scale.")]
Fps = Annotated[
    int | None, typer.Option(help="Frames per second of the mp4 (and the model's fps conditioning).")
]
Seed = Annotated[int | None, typer.Option(help="Random seed: same seed, same device, same frames.")]


def _setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("I2V_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def run_generation(
    model: str,
    image_path: Path | None,
    prompt: str,
    out: Path,
    preset: str,
    json: bool,
    cards: str | None = None,
    **fields,
) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from i2v.images import load_image
    from i2v.settings import load_settings
    from i2v.video import write_mp4

    _setup_logging()
    sink = Output(json)
    spec = catalogue.get(model)
    request = resolve(spec, preset, prompt=prompt, **fields)
    require_prompt(spec, request)
    settings = load_settings()
    layout = _layout(settings, spec, request, cards)
    mode = spec.adapter.mode(request)
    if image_path and mode is not None and mode.image == "unused":
        raise InvalidRequestError("image", str(image_path), f"mode {mode.name!r} takes no input image")
    if image_path:
        image = load_image(image_path)
    elif mode is not None and mode.image != "required":  # without --image no first frame is pinned
        image = None
    else:
        image = demo_image(request.width, request.height)
    started = time.perf_counter()
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=sink.err,
        disable=json,
    )
    with bar:
        task = bar.add_task(f"{spec.id}: loading", total=request.steps, rate="")

        def on_progress(p) -> None:
            rate = f"{p.seconds_per_step:.2f} s/step" if p.seconds_per_step else ""
            bar.update(task, completed=p.step, total=p.total, description=f"{spec.id}: {p.stage}", rate=rate)

        if layout.cards > 1:
            from i2v.parallel.follower import run_on_cards

            [result] = run_on_cards(settings, layout, [(request, image)], on_progress)
        else:
            from i2v.engine import Engine

            result = Engine(settings).generate(request, image, on_progress)
        bar.update(task, description=f"{spec.id}: writing mp4")
        fps = result.output.fps or request.fps  # a retake keeps its source's frame rate
        info = write_mp4(
            result.output.frames,
            out,
            fps=fps,
            audio=result.output.audio,
            audio_sample_rate=result.output.audio_sample_rate,
        )
    total = time.perf_counter() - started
    data = {
        "path": str(out),
        "frames": info.frames,
        "width": info.width,
        "height": info.height,
        "fps": fps,
        "has_audio": info.has_audio,
        "bytes": info.bytes,
        "seconds": round(total, 2),
        "load_s": round(result.load_s, 2),
        "weights_read_bytes": result.weights_read_bytes,
        "run_s": round(result.run_s, 2),
        "seconds_per_step": result.seconds_per_step and round(result.seconds_per_step, 3),
        "peak_mib": result.peak_mib,
        "plan": result.plan.to_dict(),
        "request": request.to_dict(),
        "cards": result.cards,
    }
    sink.result(
        data,
        lambda c: c.print(
            f"wrote {out}: {info.frames} frames {info.width}x{info.height} @ {fps:g} fps"
            f"{' with audio' if info.has_audio else ''} in {total:.1f} s\nplan: {result.plan.summary()}"
        ),
    )


def _layout(settings, spec, request, cards: str | None):
    """The cards this run uses: --cards, else I2V_CARDS_PER_JOB (auto: from the device and the model)."""
    from i2v.devices import select_device
    from i2v.parallel import cards_for, layout_for

    device = select_device(None if settings.device == "auto" else settings.device)
    setting = cards if cards is not None else settings.cards_per_job
    available = device.device_count()  # the CPU counts as one; `--cards N` runs N gloo processes there
    ring = device.ring_attention_backend is not None
    n = cards_for(setting, spec, request, kind=device.kind, available=available, ring_available=ring)
    return layout_for(spec, n, ring_available=ring)


def demo_image(width: int, height: int):
    """The embedded input: a smooth colour field with a disc, so motion is visible."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width].astype("float32")
    r = (x / max(width - 1, 1)) * 255
    g = (y / max(height - 1, 1)) * 255
    b = np.full_like(r, 128)
    disc = (x - width * 0.35) ** 2 + (y - height * 0.5) ** 2 < (min(width, height) * 0.2) ** 2
    rgb = np.stack([r, g, b], axis=-1)
    rgb[disc] = (250, 240, 60)
    return Image.fromarray(rgb.astype("uint8"), "RGB")


@app.command()
@handle_errors
def generate(
    model: Model = catalogue.DEFAULT_MODEL,
    image: Annotated[
        Path | None, typer.Option(help="PNG, JPEG or WebP; default: a built-in test image.")
    ] = None,
    prompt: Annotated[str, typer.Option(help="What should happen in the video.")] = "",
    out: Annotated[Path, typer.Option(help="The mp4 to write.")] = Path("out.mp4"),
    preset: Preset = "standard",
    height: Height = None,
    width: Width = None,
    frames: Frames = None,
    steps: Steps = None,
    guidance: Guidance = None,
    fps: Fps = None,
    seed: Seed = None,
    json: Json = False,
    mode: Annotated[
        str | None,
        typer.Option(
            help="LTX-2 models: two-stage | two-stage-hq | one-stage | distilled | keyframes | audio-to-video "
            "| retake | ic-lora (each model's modes and default: `i2v models`)."
        ),
    ] = None,
    lora: Annotated[
        list[str] | None,
        typer.Option(
            "--lora",
            help="PATH[:SCALE] of a .safetensors LoRA (repeatable; LTX-Video, LTX-2, Wan). Mode ic-lora: "
            "the IC-LoRA.",
        ),
    ] = None,
    last_image: Annotated[
        Path | None, typer.Option(help="Mode keyframes: the last frame (--image is the first).")
    ] = None,
    keyframe: Annotated[
        list[str] | None,
        typer.Option(
            "--keyframe",
            help="Mode keyframes: PATH:FRAME[:STRENGTH] pins an image at FRAME (negative counts from the end; "
            "repeatable).",
        ),
    ] = None,
    audio: Annotated[
        Path | None,
        typer.Option(help="Mode audio-to-video: the soundtrack (wav, flac, mp3; mono is upmixed)."),
    ] = None,
    video: Annotated[Path | None, typer.Option(help="Mode retake: the source video.")] = None,
    start_time: Annotated[
        float | None, typer.Option(help="Mode retake: where the regenerated range starts, in seconds.")
    ] = None,
    end_time: Annotated[
        float | None, typer.Option(help="Mode retake: where the regenerated range ends, in seconds.")
    ] = None,
    reference_video: Annotated[Path | None, typer.Option(help="Mode ic-lora: the reference mp4.")] = None,
    cards: Annotated[
        str | None,
        typer.Option(
            help="Cards this one job runs on: auto | 1 | 2 | 4 | 8 (default I2V_CARDS_PER_JOB). On the CPU, N "
            "gloo processes (a correctness check, not a speed-up)."
        ),
    ] = None,
) -> None:
    """Turn an image + prompt into an mp4."""
    run_generation(
        model,
        image,
        prompt,
        out,
        preset,
        json,
        cards,
        height=height,
        width=width,
        frames=frames,
        steps=steps,
        guidance=guidance,
        fps=fps,
        seed=seed,
        mode=mode,
        loras=lora or None,
        last_image=last_image,
        keyframes=keyframe or None,
        audio=audio,
        video=video,
        start_time=start_time,
        end_time=end_time,
        reference_video=reference_video,
    )


@app.command()
@handle_errors
def demo(
    out: Annotated[Path, typer.Option(help="The mp4 to write.")] = Path("outputs/demo.mp4"),
    json: Json = False,
) -> None:
    """The embedded default on this machine: a tiny local model, a built-in image, an mp4."""
    out.parent.mkdir(parents=True, exist_ok=True)
    run_generation(
        catalogue.DEFAULT_MODEL, None, "a yellow ball rolls across a colourful field", out, "standard", json
    )


@app.command("plan")
@handle_errors
def plan_cmd(
    model: Model = catalogue.DEFAULT_MODEL,
    preset: Preset = "standard",
    height: Height = None,
    width: Width = None,
    frames: Frames = None,
    steps: Steps = None,
    measure: Annotated[
        bool,
        typer.Option(
            "--measure",
            help="Also run the request's full-size pipeline under fake tensors on this CPU (no GPU, no "
            "weights; seconds to minutes) and print the measured peak per phase next to the prediction.",
        ),
    ] = False,
    json: Json = False,
) -> None:
    """How a request would run on this device (live free memory), or what would fit."""
    from i2v.engine import Engine

    spec = catalogue.get(model)
    request = resolve(spec, preset, height=height, width=width, frames=frames, steps=steps)
    p = Engine().plan(request)
    if not measure:
        Output(json).result(p.to_dict(), lambda c: c.print(p.summary()))
        return
    from i2v.plan_measure import measure_plan

    report = measure_plan(spec, request, p)
    Output(json).result(p.to_dict() | {"measured": report.to_dict()}, lambda c: report.print(c, p))


@app.command()
@handle_errors
def models(json: Json = False) -> None:
    """The catalogue: id, family, backend, modes (* the default), weights here, fits this device and how."""
    from rich.table import Table

    from i2v.engine import Engine, model_dir

    engine = Engine()
    rows = []
    for spec in catalogue.all_specs():
        present = spec.adapter.weights_present(model_dir(spec, engine.settings))
        try:
            p = engine.plan(resolve(spec, "standard"))
            fits, how = True, p.summary()
        except PlanRefusedError as exc:
            fits, how = False, str(exc)
        adapter = spec.adapter
        rows.append(
            {
                "id": spec.id,
                "family": spec.family,
                "backend": spec.backend,
                "modes": [m.name for m in adapter.modes.values() if m.supported],
                "default_mode": adapter.default_mode,
                "title": spec.title,
                "weights_present": present,
                "built_on_first_use": spec.tiny,
                "fits": fits,
                "plan": how,
            }
        )

    def human(console) -> None:
        table = Table("id", "family", "backend", "modes", "weights", "fits", "plan")
        for r in rows:
            weights = "yes" if r["weights_present"] else ("built on use" if r["built_on_first_use"] else "no")
            modes = ", ".join(f"{m}*" if m == r["default_mode"] else m for m in r["modes"]) or "-"
            table.add_row(
                r["id"], r["family"], r["backend"], modes, weights, "yes" if r["fits"] else "no", r["plan"]
            )
        console.print(table)

    Output(json).result(rows, human)


@app.command()
@handle_errors
def bench(
    model: Annotated[
        str, typer.Option("--model", "-m", help="A catalogue id, or 'all' (real models).")
    ] = "all",
    preset: Preset = "standard",
    height: Height = None,
    width: Width = None,
    frames: Frames = None,
    steps: Steps = None,
    arch_only: Annotated[
        bool, typer.Option("--arch-only", help="Full-size architecture, random weights, no download.")
    ] = False,
    results_dir: Annotated[Path, typer.Option(help="Where the JSON lines are appended.")] = Path(
        "bench/results"
    ),
    json: Json = False,
) -> None:
    """Plain diffusers vs this runtime's plan: seconds, s/step, peak memory, ratios, frame difference."""
    from rich.table import Table

    from i2v import bench as bench_mod
    from i2v.devices import select_device

    _setup_logging()
    models = [s.id for s in catalogue.all_specs(include_tiny=False)] if model == "all" else [model]
    for m in models:
        catalogue.get(m)
    env, comparisons, path = bench_mod.run(
        models,
        preset,
        arch_only=arch_only,
        device=select_device(),
        results_dir=results_dir,
        height=height,
        width=width,
        frames=frames,
        steps=steps,
    )

    def human(console) -> None:
        table = Table(
            "model",
            "plain s",
            "plan s",
            "speedup",
            "plain s/step",
            "plan s/step",
            "plain GiB",
            "plan GiB",
            "max diff",
            title=f"{env['device']} · torch {env['torch']} · diffusers {env['diffusers']}",
        )
        gib = lambda v: f"{v / 1024:.2f}" if v is not None else "-"  # noqa: E731
        step = lambda v: f"{v:.3f}" if v is not None else "-"  # noqa: E731
        for c in comparisons:
            table.add_row(
                c.model,
                f"{c.plain.total_s:.2f}",
                f"{c.runtime.total_s:.2f}",
                f"{c.speedup:.2f}x",
                step(c.plain.seconds_per_step),
                step(c.runtime.seconds_per_step),
                gib(c.plain.peak_mib),
                gib(c.runtime.peak_mib),
                f"{c.max_abs_diff:.2e}" + (" (lossy)" if c.lossy else ""),
            )
        console.print(f"appended to {path}")
        console.print(table)

    from dataclasses import asdict

    Output(json).result(
        {"environment": env, "results": [asdict(c) for c in comparisons], "path": str(path)}, human
    )


@app.command("fetch")
@handle_errors
def fetch_cmd(
    model: Annotated[str, typer.Argument(help="Catalogue id (`i2v models`).")],
    source: Annotated[
        str,
        typer.Option(
            help="auto (ModelScope, then HF_ENDPOINT, then Hugging Face) | modelscope | huggingface"
        ),
    ] = "auto",
    revision: Annotated[
        str | None, typer.Option(help="Branch, tag or commit; default the hub's main/master.")
    ] = None,
    dir_: Annotated[
        Path | None,
        typer.Option("--dir", help="Models folder; the model goes in DIR/MODEL (default I2V_MODELS_DIR)."),
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="No download: re-hash the local copy against its manifest.")
    ] = False,
    repo: Annotated[str | None, typer.Option(help="Hub repo id to use instead of the catalogue's.")] = None,
    mode: Annotated[
        list[str] | None,
        typer.Option(
            "--mode", help="Models fetched per mode (ltx-2.3): only the files these modes read (repeatable)."
        ),
    ] = None,
    json: Json = False,
) -> None:
    """Download a model's weights into DIR/MODEL (only what the pipeline needs) and write its manifest."""
    from i2v.weights.cli import run_fetch

    run_fetch(
        model,
        source=source,
        revision=revision,
        models_dir=dir_,
        verify=verify,
        repo=repo,
        modes=tuple(mode or ()),
        json=json,
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (I2V_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (I2V_PORT).")] = None,
) -> None:
    """The video service: HTTP API, web page at /, and one supervised worker per device."""
    from i2v.jobs import load_service_settings
    from i2v.server.run import serve as run_server

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    raise typer.Exit(run_server(load_service_settings(**overrides)))


@app.command()
def workers() -> None:
    """This host's workers without the API (worker hosts): one per device or card group, supervised,
    claiming jobs from I2V_DATABASE_URL and writing videos into the shared I2V_OUTPUTS_DIR."""
    from i2v.jobs import load_service_settings
    from i2v.server.run import run_workers

    raise typer.Exit(run_workers(load_service_settings()))


@app.command()
def worker(
    worker_id: Annotated[
        str | None, typer.Option(help="Name in the job store; default host-slot-random.")
    ] = None,
    slot: Annotated[str | None, typer.Option(help="Device label, e.g. cuda:0 (set by `i2v serve`).")] = None,
) -> None:
    """One worker: claims jobs from the store (I2V_DATABASE_URL) and runs them on this process's device."""
    from i2v.worker import main

    raise typer.Exit(main(worker_id=worker_id, slot=slot))


if __name__ == "__main__":  # pragma: no cover
    app()
