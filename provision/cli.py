"""`provision`: look at this host and write the settings compose and the runtime read. Torch-free.

Thin wiring: each command gathers its inputs, calls one module, and prints through `Output`.
Exceptions map to a message and an exit code in one table (`i2v.errors`, or the exception's own
`exit_code`: EnvWriteError 3, BundleError 6, ImageUnavailableError 11-13); set I2V_DEBUG=1 for the
traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from i2v import catalogue, hardware
from i2v.output import Output, handle_errors
from i2v.request import InvalidRequestError
from provision import compose_override, environment, host, roles
from provision import doctor as doctor_mod
from provision import image as image_mod
from provision import mirrors as mirrors_mod
from provision.envfile import EnvWriteError, existing_values, parse, render, write_atomic

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Probe a GPU / Atlas host and write the settings for i2v-deploy.",
)

# `provision image` exits 10 when the image must be built here (`make up` then runs make build-<kind>).
BUILD_HERE = 10

Json = Annotated[bool, typer.Option("--json", help="One JSON document on stdout; logs on stderr.")]
ModelsDir = Annotated[
    Path | None, typer.Option("--models-dir", help="Where model weights go (disk checked here).")
]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Catalogue id (`i2v models`).")]


def _probe(models_dir: Path | None, with_docker: bool = True) -> hardware.HardwareReport:
    path = (
        str(models_dir) if models_dir else str(Path(existing_values(Path(".env")).get("I2V_MODELS_DIR", ".")))
    )
    return hardware.probe(path, with_docker=with_docker)


@app.command()
@handle_errors
def detect(json: Json = False, models_dir: ModelsDir = None) -> None:
    """What this host has: accelerators, memory, driver/CANN, Docker engine and runtimes."""
    out = Output(json)
    report = _probe(models_dir)
    for warning in report.warnings:
        out.warn(warning)

    def human(console) -> None:
        console.print(
            f"vendor: {report.vendor}   arch: {report.arch}   RAM: {report.ram_mib / 1024:.1f} GiB   "
            f"CPUs: {report.cpu_count}"
        )
        if report.driver_version:
            console.print(
                f"driver: {report.driver_version}"
                + (f"   CANN: {report.cann_version}" if report.cann_version else "")
            )
        for d in report.devices:
            extra = f"cc {d.compute_capability}" if d.compute_capability else (d.chip or "")
            console.print(
                f"  [{d.index}] {d.name}  {d.memory_total_mib / 1024:.1f} GiB total, "
                f"{d.memory_free_mib / 1024:.1f} GiB free  {extra}"
            )
        if report.disk_free_mib is not None:
            console.print(f"disk: {report.disk_free_mib / 1024:.1f} GiB free at {report.disk_path}")
        docker = report.docker
        if docker is not None:
            console.print(
                f"docker: {docker.server_version} runtimes {', '.join(docker.runtimes)}"
                if docker.available
                else f"docker: not reachable ({docker.error})"
            )
        console.print(f"profile: {host.profile(report)}")

    out.result(report.to_dict() | {"profile": host.profile(report)}, human)


@app.command()
@handle_errors
def plan(
    model: ModelOpt = None,
    preset: str = "standard",
    height: int | None = None,
    width: int | None = None,
    frames: int | None = None,
    json: Json = False,
    free: Annotated[
        bool, typer.Option("--free", help="Plan against free memory now instead of total memory.")
    ] = False,
    cards: Annotated[str, typer.Option(help="Cards one job runs on: auto | 1 | 2 | 4 | 8.")] = "auto",
) -> None:
    """The plan provision would apply: dtype, memory strategy, decode chunk, cards a job, predicted peak."""
    out = Output(json)
    report = _probe(None, with_docker=False)
    spec = catalogue.get(model) if model else host.recommend(report).spec
    layout = host.job_layout(spec, report, preset, cards, height=height, width=width, frames=frames)
    p = host.plan_for(
        spec, report, preset, use_free=free, layout=layout, height=height, width=width, frames=frames
    )
    out.result(p.to_dict(), lambda console: console.print(p.summary()))


@app.command()
@handle_errors
def env(
    output: Annotated[Path, typer.Option("--output", "-o", help="The .env to write.")] = Path(".env"),
    model: ModelOpt = None,
    preset: Annotated[str | None, typer.Option(help="fast | standard | hq")] = None,
    port: int | None = None,
    models_dir: ModelsDir = None,
    registry: str = host.DEFAULT_REGISTRY,
    role: Annotated[
        str, typer.Option(help="single | head (API + the PostgreSQL job store) | worker (workers only)")
    ] = "single",
    database_url: Annotated[
        str | None, typer.Option(help="The shared job store (worker: the head's I2V_DATABASE_URL).")
    ] = None,
    shared_outputs: Annotated[
        str | None,
        typer.Option(help="Host folder every host mounts at /outputs (NFS/CPFS), same path on each."),
    ] = None,
    node_name: Annotated[
        str | None, typer.Option(help="This host's name in the job store (default: hostname).")
    ] = None,
    json: Json = False,
) -> None:
    """Write .env for this host (atomic, mode 0600, your own lines kept)."""
    out = Output(json)
    if model:
        catalogue.get(model)
    if preset and preset not in ("fast", "standard", "hq"):
        raise InvalidRequestError("preset", preset, "one of fast, standard, hq")
    report = _probe(models_dir, with_docker=False)
    if host.profile(report) == "npu":  # the override needs to know about the Ascend Docker Runtime
        report = _probe(models_dir, with_docker=True)
    try:
        old = output.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise EnvWriteError(f"cannot read {output}: {exc.strerror}; nothing was written") from exc
    existing = parse(old) if old else {}
    entries, notes = environment.entries(
        report,
        model=model,
        preset=preset,
        port=port,
        models_dir=models_dir,
        registry=registry,
        existing=existing,
    )
    extra, role_notes = roles.entries(
        role,
        host.profile(report),
        existing,
        database_url=database_url,
        shared_outputs=shared_outputs,
        node_name=node_name,
    )
    entries, notes = roles.merge(entries, extra), notes + role_notes
    text = render(entries, old)
    written = parse(text)
    compose_override.render(
        report, written.get("I2V_VISIBLE_DEVICES", ""), role
    )  # a bad id fails before any write
    changed = write_atomic(output, text)
    override_note = compose_override.write(output, report, written.get("I2V_VISIBLE_DEVICES", ""), role)
    if override_note:
        notes.append(override_note)
    for note in notes:
        out.info(note)
    values = {e.key: written[e.key] for e in entries}
    out.result(
        {"path": str(output), "changed": changed, "values": values},
        lambda console: console.print(
            f"{'wrote' if changed else 'unchanged'} {output}: "
            + ", ".join(
                f"{k}={v}" for k, v in values.items() if k in ("COMPOSE_PROFILES", "I2V_MODEL", "I2V_DTYPE")
            )
        ),
    )


@app.command()
@handle_errors
def doctor(
    model: ModelOpt = None,
    json: Json = False,
    models_dir: ModelsDir = None,
    network: Annotated[bool, typer.Option(help="Also time the mirrors.")] = True,
    timeout: float = 3.0,
) -> None:
    """Check driver, CANN pairing, engine and runtime, device nodes, disk, mirrors; exit 1 on errors."""
    out = Output(json)
    report = _probe(models_dir)
    chosen = model or existing_values(Path(".env")).get("I2V_MODEL") or host.recommend(report).spec.id
    findings = doctor_mod.run(report, chosen, network=network, timeout=timeout)
    errors = sum(f.level == "error" for f in findings)

    def human(console) -> None:
        marks = {"ok": "[green]ok[/green]   ", "warn": "[yellow]warn[/yellow] ", "error": "[red]error[/red]"}
        for f in findings:
            console.print(f"{marks[f.level]} {f.check}: {f.message}")
            if f.fix and f.level != "ok":
                console.print(f"       fix: {f.fix}")
        console.print(f"{errors} error(s), {sum(f.level == 'warn' for f in findings)} warning(s)")

    out.result({"model": chosen, "errors": errors, "findings": [f.to_dict() for f in findings]}, human)
    if errors:
        raise typer.Exit(1)


@app.command()
@handle_errors
def mirrors(
    json: Json = False,
    timeout: float = 3.0,
    write: Annotated[Path | None, typer.Option(help="Write the fastest into this .env.")] = None,
) -> None:
    """Time Tsinghua / Aliyun / PyPI, hf-mirror / Hugging Face and ModelScope; pick the fastest."""
    out = Output(json)
    timings = mirrors_mod.time_all(timeout=timeout)
    best = mirrors_mod.fastest(timings)
    if write is not None:
        old = write.read_text(encoding="utf-8") if write.exists() else None
        from provision.envfile import Entry

        chosen = [
            Entry(mirrors_mod.ENV_KEYS[k], t.value, f"fastest {k} endpoint ({t.name})")
            for k, t in best.items()
            if t is not None
        ]
        write_atomic(write, render(chosen, old))

    def human(console) -> None:
        for t in timings:
            mark = "*" if best.get(t.kind) is t else " "
            took = f"{t.seconds * 1000:7.0f} ms" if t.seconds is not None else f"   no answer ({t.error})"
            console.print(f"{mark} {t.kind:12} {t.name:16} {took}")

    out.result(
        {
            "timings": [t.to_dict() for t in timings],
            "fastest": {k: (t.value if t else None) for k, t in best.items()},
        },
        human,
    )


EnvFile = Annotated[Path, typer.Option("--env-file", help="The .env provision wrote.")]


def _offline(values: dict[str, str]) -> bool:
    import os

    flag = os.environ.get("I2V_OFFLINE", values.get("I2V_OFFLINE", ""))
    return flag.strip().lower() in ("1", "true", "yes", "on")


@app.command()
@handle_errors
def image(
    env_file: EnvFile = Path(".env"),
    pull: Annotated[
        image_mod.PullPolicy,
        typer.Option(
            help="auto: pull, else build here; only: pull, else stop with the build command; never: no pull"
        ),
    ] = image_mod.PullPolicy.AUTO,
    json: Json = False,
) -> None:
    """Make sure the image .env names is here: present, pulled, or (exit 10) to be built here."""
    out = Output(json)
    values = existing_values(env_file)
    if "I2V_IMAGE" not in values:
        raise EnvWriteError(f"{env_file} has no I2V_IMAGE; run provision env --output {env_file} first")
    ensured = image_mod.ensure(values["I2V_IMAGE"], pull, offline=_offline(values), env_file=str(env_file))
    out.info(ensured.message)
    out.result(
        {"image": ensured.image, "outcome": ensured.outcome.value, "message": ensured.message},
        lambda console: console.print(f"{ensured.image}: {ensured.outcome.value}"),
    )
    if ensured.outcome is image_mod.Outcome.BUILD:
        raise typer.Exit(BUILD_HERE)


@app.command()
@handle_errors
def bundle(
    model: ModelOpt = None,
    env_file: EnvFile = Path(".env"),
    out_path: Annotated[Path | None, typer.Option("--out", help="The tar to write.")] = None,
    models_dir: ModelsDir = None,
    json: Json = False,
) -> None:
    """Write one tar for an air-gapped host: the image (docker save), the model folder, compose.yaml, checksums."""
    from provision import bundle_create

    out = Output(json)
    values = existing_values(env_file)
    chosen = model or values.get("I2V_MODEL")
    if not chosen:
        raise InvalidRequestError(
            "model", None, "pass --model (make bundle MODEL=...) or set I2V_MODEL in .env"
        )
    catalogue.get(chosen)
    if "I2V_IMAGE" not in values:
        raise EnvWriteError(f"{env_file} has no I2V_IMAGE; run provision env --output {env_file} first")
    folder = models_dir or Path(values.get("I2V_MODELS_DIR", "models"))
    target = out_path or bundle_create.default_out(values["I2V_IMAGE"], chosen)
    made = bundle_create.create(
        image=values["I2V_IMAGE"],
        model=chosen,
        models_dir=folder,
        compose=Path(__file__).resolve().parents[1] / "compose.yaml",
        out=target,
    )
    out.result(
        {
            "path": str(made.path),
            "bytes": made.size_bytes,
            "files": made.files,
            "image": made.meta.image,
            "platform": made.meta.platform,
            "model": made.meta.model,
        },
        lambda console: console.print(
            f"wrote {made.path}: {made.size_bytes / 1e6:,.0f} MB, {made.files} "
            f"files ({made.meta.image}, {made.meta.platform}, {made.meta.model})"
        ),
    )


@app.command()
@handle_errors
def load(
    bundle_path: Annotated[Path, typer.Argument(help="The bundle tar (make bundle).")],
    env_file: EnvFile = Path(".env"),
    models_dir: ModelsDir = None,
    json: Json = False,
) -> None:
    """Check a bundle (size, platform, checksums), then load its image, place its model, set I2V_OFFLINE=1."""
    from provision import bundle_load

    out = Output(json)
    folder = (models_dir or Path(existing_values(env_file).get("I2V_MODELS_DIR", "models"))).resolve()
    checked, placed = bundle_load.load(bundle_path, env_file=env_file, models_dir=folder)
    out.result(
        {
            "image": checked.meta.image,
            "platform": checked.meta.platform,
            "model": checked.meta.model,
            "model_dir": str(placed),
            "files_checked": len(checked.sums),
        },
        lambda console: console.print(
            f"loaded {checked.meta.image}; {checked.meta.model} -> {placed}; "
            f"{env_file}: I2V_OFFLINE=1 ({len(checked.sums)} files checked)"
        ),
    )


def main() -> None:  # pragma: no cover
    sys.exit(app())
