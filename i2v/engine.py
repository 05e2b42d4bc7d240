"""The engine: load a pipeline once per (model, dtype, plan), keep it warm, run requests on it.

Before each run the live device is asked for its free memory and the planner decides how the
request runs; a request that cannot fit is refused with the planner's suggestions instead of
being started. Out-of-memory during a run (CUDA's `OutOfMemoryError`, torch_npu's
"NPU out of memory") fails that run only: memory is freed outside the except block (the
traceback would otherwise keep the tensors alive) and the engine stays usable.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from i2v import catalogue
from i2v.catalogue.spec import ModelSpec
from i2v.families import ModeFiles, Output, RunContext, adapter_for
from i2v.planner import DeviceBudget, Plan, PlanRefusedError, plan_for
from i2v.progress import Progress, ProgressFn, StepTracker
from i2v.request import GenerationRequest, validate
from i2v.settings import Settings, load_settings

log = logging.getLogger("i2v.engine")
MIB = 1024 * 1024


class WeightsMissingError(FileNotFoundError):
    def __init__(self, spec: ModelSpec, folder: Path):
        self.model = spec.id
        super().__init__(
            f"weights for {spec.id} are not in {folder} (no {spec.adapter.weights_layout}); "
            f"run: i2v fetch {spec.id} --dir {folder.parent}"
        )


class DeviceOutOfMemoryError(RuntimeError):
    """A run ran out of device memory; the engine freed it and is usable again."""

    def __init__(self, plan: Plan, detail: str):
        self.plan = plan
        super().__init__(
            f"out of device memory while running {plan.model} ({plan.strategy}, predicted "
            f"{plan.predicted_peak_mib} MiB): {detail.splitlines()[0][:300]}; memory was freed, "
            "retry with fewer frames, a smaller size or --preset fast"
        )


@dataclass
class Result:
    output: Output
    plan: Plan
    load_s: float
    run_s: float
    seconds_per_step: float | None
    peak_mib: int | None
    steps: int  # denoising steps run, every stage counted
    # Weights loaded for this request: 0 s on a warm pipeline (None bytes: the backend does not count them).
    weights_read_bytes: int | None = None
    # One entry per card of a group (rank order): what each holds; None on one card.
    cards: list[dict[str, Any]] | None = None


def model_dir(spec: ModelSpec, settings: Settings) -> Path:
    return Path(settings.models_dir).expanduser() / spec.id


def ensure_weights(spec: ModelSpec, settings: Settings) -> Path:
    """The model folder, checked against its manifest before any loader runs; never downloads.

    Tiny models are built on first use (locally, no network); real ones must have been fetched
    (`i2v fetch`). A truncated or altered file raises `WeightsCorruptError` naming it; a fetch that
    did not finish raises `WeightsIncompleteError`. Offline mode also sets HF_HUB_OFFLINE=1.
    """
    from i2v.weights import build_tiny_with_manifest, check_for_load, offline_env

    if settings.offline:
        offline_env()
    folder = model_dir(spec, settings)
    models_dir = Path(settings.models_dir).expanduser()
    if spec.adapter.weights_present(folder):
        parts = spec.adapter.fetch_parts(spec)
        for part in parts:  # fetched per repo (LTX-2.3's single files, its Gemma root): each manifest
            if (models_dir / part.id).is_dir():
                check_for_load(part, models_dir / part.id, models_dir)
        if not parts:
            check_for_load(spec, folder, models_dir)
        return folder
    if spec.tiny:
        log.info("building %s in %s (first use)", spec.id, folder)
        build_tiny_with_manifest(spec, folder)
        return folder
    raise WeightsMissingError(spec, folder)


def device_name(device: Any) -> str:
    if device.kind == "cuda":
        import torch

        return torch.cuda.get_device_name(device.torch_device())
    if device.kind == "npu":
        import torch

        return (
            str(torch.npu.get_device_name(device.index))
            if hasattr(torch.npu, "get_device_name")
            else "Ascend NPU"
        )
    return f"{os.uname().machine} CPU"


def host_ram_mib() -> int:
    from i2v.devices import parse_meminfo

    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            _available, total = parse_meminfo(handle.read())
        return total // MIB
    except OSError:
        return 0


class Engine:
    """One per worker process. Holds at most one warm pipeline (the seeds' model singleton).

    With a card `group` (i2v.parallel) every card's process has its own engine: each loads the whole
    pipeline, the denoisers are split over the group (`parallelize`), every step ends with rank 0's
    verdict (go on, or stop on every card at once), and the plan counts one card's share. Without a
    group nothing of that runs.
    """

    def __init__(self, settings: Settings | None = None, device: Any = None, group: Any = None):
        from i2v.devices import select_device

        self.settings = settings or load_settings()
        self.group = group
        self.device = device or (
            group.device
            if group is not None
            else select_device(None if self.settings.device == "auto" else self.settings.device)
        )
        self._key: tuple | None = None
        self._pipe: Any = None
        self._plan: Plan | None = None
        self._cfg: list[Any] = []  # CFG-parallel wrappers of the warm pipeline's denoisers
        self._probe: Any = None  # what one card's denoisers compute on (i2v.parallel.shard.ShardProbe)
        self._loads = 0
        self.stopped_by: str | None = None  # the exception rank 0's progress raised to stop every card
        self.load_s = 0.0

    # --- planning ----------------------------------------------------------------------------------

    def budget(self, spec: ModelSpec) -> DeviceBudget:
        free, total = self.device.mem_get_info()
        free_mib = free // MIB
        if self._plan is not None and self._plan.model == spec.id:
            free_mib += self._plan.weights_mib  # our own warm weights are not "used" for this model
        cc = None
        if self.device.kind == "cuda":
            import torch

            cc = "{}.{}".format(*torch.cuda.get_device_capability(self.device.torch_device()))
        return DeviceBudget(
            kind=self.device.kind,
            name=device_name(self.device),
            total_mib=total // MIB,
            free_mib=int(free_mib),
            host_ram_mib=host_ram_mib() or total // MIB,
            compute_capability=cc,
            attention_backends=self.device.attention_backends(),
        )

    def plan(self, request: GenerationRequest) -> Plan:
        """How `request` would run here (this card's live memory; one card's share in a group)."""
        spec = catalogue.get(request.model)
        layout = self.group.layout if self.group is not None else None
        return plan_for(spec, request, self.budget(spec), self.settings, layout=layout)

    def _run_plan(self, spec: ModelSpec, request: GenerationRequest) -> Plan:
        """The plan a run uses. In a group every card plans against the tightest card's memory, so all
        of them load and run the same way (every card calls this at the same point: it gathers)."""
        if self.group is None:
            return plan_for(spec, request, self.budget(spec), self.settings)
        tightest = min(self.group.gather(self.budget(spec)), key=lambda b: b.free_mib)
        return plan_for(spec, request, tightest, self.settings, layout=self.group.layout)

    def warm(self, request: GenerationRequest) -> Plan:
        """Load the pipeline `request` runs on (a worker's start), returning its plan."""
        spec = catalogue.get(request.model)
        p = self._run_plan(spec, request)
        self.pipeline(spec, p)
        return p

    # --- loading -----------------------------------------------------------------------------------

    def pipeline(
        self, spec: ModelSpec, p: Plan, files: ModeFiles | None = None, folder: Path | None = None
    ) -> Any:
        """The warm pipeline for (spec, plan, the mode's load variant). ``files``: what the family's
        `mode_files` found (an LTX-2 mode's distilled denoiser is loaded in place of the dev one);
        ``folder``: the model folder `ensure_weights` already checked (checked here when not given)."""
        variant = files.load_variant if files is not None else None
        key = (
            spec.id,
            p.dtype,
            p.strategy,
            p.fp8_weights,
            p.vae_tiling,
            p.forward_chunking,
            p.cache,
            p.compile,
            variant,
        )
        if key == self._key:
            self.load_s = 0.0  # warm: nothing loaded for this request
            return self._pipe
        folder = folder or ensure_weights(spec, self.settings)
        self.unload()
        from i2v.devices.base import to_torch_dtype

        adapter = adapter_for(spec)
        started = time.perf_counter()
        pipe = adapter.prepare(adapter.load(spec, folder, to_torch_dtype(p.dtype), files))
        pipe = adapter.apply_plan(pipe, p, self.device)
        if self.group is not None:
            from i2v.parallel.shard import parallelize

            # Loading takes minutes and not the same on every card: meet before the first collective.
            self._loads += 1
            self.group.signal(f"loaded{self._loads}")
            self.group.wait_all(f"loaded{self._loads}")
            self._cfg, self._probe = parallelize(pipe, adapter, self.group)
        self.load_s = time.perf_counter() - started
        log.info("loaded %s in %.1f s", spec.id, self.load_s)
        self._key, self._pipe, self._plan = key, pipe, p
        return pipe

    def unload(self) -> None:
        if self._pipe is None:
            return
        self._key = self._pipe = self._plan = None
        self._cfg, self._probe = [], None
        gc.collect()
        self.device.empty_cache()

    # --- running -----------------------------------------------------------------------------------

    def generate(self, request: GenerationRequest, image: Any, progress: ProgressFn | None = None) -> Result:
        spec = catalogue.get(request.model)
        adapter = adapter_for(spec)
        validate(spec, request)  # a stored request is checked again: modes, inputs and files may have gone
        # Missing or damaged weights: say so (and how to fetch) first. A warm pipeline of this model
        # was checked when it loaded; `pipeline` checks again if it has to reload.
        warm = self._plan is not None and self._plan.model == spec.id
        folder = None if warm else ensure_weights(spec, self.settings)
        # A mode's own files (upsampler, distilled weights): checked before anything loads.
        files = adapter.mode_files(spec, request, folder or model_dir(spec, self.settings))
        p = self._run_plan(spec, request)  # does not fit: refuse before anything starts
        steps = adapter.total_steps(spec, request)
        self.stopped_by = None
        if self.group is not None:
            progress = self._agreeing(progress)
        if progress:
            progress(Progress("loading", 0, steps, None, None))
        pipe = self.pipeline(spec, p, files=files, folder=folder)
        adapter.apply_attention(pipe, self.device, p.attention)  # per run: not part of the warm key
        import torch

        tracker = StepTracker(steps, progress, self._memory_mib, self.settings.log_every_steps)
        generator = torch.Generator(device="cpu").manual_seed(request.seed)
        # I2VGen-XL samples its image latents from the global generator, not `generator`.
        torch.manual_seed(request.seed)
        cfg_position = 0
        if self.group is not None:
            cfg_position = self.group.cfg_position
            for wrapper in self._cfg:
                wrapper.begin(adapter.uses_cfg(request))
            self._probe.reset()
        ctx = RunContext(
            self.device,
            generator,
            tracker,
            decode_chunk=p.decode_chunk,
            files=files,
            cfg_position=cfg_position,
        )
        self.device.reset_peak_memory_stats()
        started = time.perf_counter()
        oom: str | None = None
        output = None
        try:
            with torch.inference_mode():
                output = adapter.run(pipe, spec, request, image, ctx)
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is out-of-memory
            if not self.device.is_oom(exc):
                raise
            oom = str(exc)
        if oom is not None:
            # Outside the except block: the traceback no longer pins the activations.
            del output, ctx
            gc.collect()
            self.device.empty_cache()
            raise DeviceOutOfMemoryError(p, oom)
        self.device.synchronize()
        run_s = time.perf_counter() - started
        peak = self._peak_mib()
        per_step = (time.perf_counter() - tracker.started) / max(tracker.step, 1) if tracker.step else None
        if output.notes:
            p = replace(p, notes=p.notes + tuple(output.notes))
        cards = self._card_report(pipe, per_step) if self.group is not None else None
        return Result(
            output=output,
            plan=p,
            load_s=self.load_s + output.load_s,
            run_s=run_s,
            seconds_per_step=per_step,
            peak_mib=peak,
            steps=steps,
            weights_read_bytes=output.weights_read_bytes,
            cards=cards,
        )

    def _card_report(self, pipe: Any, per_step: float | None) -> list[dict[str, Any]]:
        """What every card of the group held in this run (a gather: every card calls it)."""
        from i2v.parallel.shard import weights_bytes

        mine = {
            "rank": self.group.rank,
            "device": str(self.device.torch_device()),
            "weights_bytes": weights_bytes(pipe),
            "shard_tokens": self._probe.tokens,
            "shard_bytes": self._probe.bytes,
            "peak_bytes": int(self.device.max_memory_allocated()),  # on the CPU: the process's peak RSS
            "seconds_per_step": per_step,
        }
        return self.group.gather(mine)

    def _agreeing(self, progress: ProgressFn | None) -> ProgressFn:
        """`progress` (rank 0's: it may raise to cancel or drain) followed by rank 0's verdict, so every
        card leaves the pipeline at the same step (`GroupStop` on the others) instead of waiting in a
        collective for a card that left."""
        group = self.group

        def step(p: Progress) -> None:
            stop: BaseException | None = None
            if progress is not None:
                try:
                    progress(p)
                except Exception as exc:  # noqa: BLE001 - re-raised after the others are told
                    stop = exc
            group.step_verdict(None if stop is None else type(stop).__name__)
            if stop is not None:
                self.stopped_by = type(stop).__name__
                raise stop

        return step

    def _memory_mib(self) -> int | None:
        try:
            free, total = self.device.mem_get_info()
            return int((total - free) // MIB)
        except Exception:  # noqa: BLE001 - logging only
            return None

    def _peak_mib(self) -> int | None:
        if self.device.kind == "cpu":
            return None
        return int(self.device.max_memory_allocated() // MIB)


__all__ = [
    "DeviceOutOfMemoryError",
    "Engine",
    "PlanRefusedError",
    "Result",
    "WeightsMissingError",
    "ensure_weights",
    "model_dir",
]
