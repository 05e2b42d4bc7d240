"""What fits the device the workers run on, decided in the API process without torch.

The budget comes from the workers: each measures its device (free memory before loading) when it
starts and writes it to its row; the API takes the roomiest live worker's. Before any worker has
reported, a torch-free probe stands in (`i2v.hardware`: NVML / nvidia-smi / npu-smi, /proc/meminfo).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from i2v import catalogue
from i2v.catalogue.spec import PRESET_NAMES, ModelSpec
from i2v.planner import DeviceBudget, PlanRefusedError, plan_for
from i2v.request import InvalidRequestError, resolve

FPS_RANGE = (1, 60)


def budget_from_workers(rows: list[dict[str, Any]]) -> DeviceBudget | None:
    budgets = [b for row in rows if (b := DeviceBudget.from_json(row.get("budget"))) is not None]
    return max(budgets, key=lambda b: b.free_mib) if budgets else None


def probed_budget(device: str) -> DeviceBudget:
    from i2v.hardware import probe

    report = probe(with_docker=False)
    kind = device if device != "auto" else {"nvidia": "cuda", "ascend": "npu"}.get(report.vendor, "cpu")
    if kind != "cpu" and report.devices:
        d = max(report.devices, key=lambda a: a.memory_free_mib)
        return DeviceBudget(
            kind=kind,
            name=d.name,
            total_mib=d.memory_total_mib,
            free_mib=d.memory_free_mib,  # type: ignore[arg-type]
            host_ram_mib=report.ram_mib,
            compute_capability=d.compute_capability,
            chip=d.chip,
        )
    return DeviceBudget(
        kind="cpu",
        name=f"{report.arch} CPU",
        total_mib=report.ram_mib,
        free_mib=report.ram_available_mib,
        host_ram_mib=report.ram_mib,
    )


def weights_present(spec: ModelSpec, models_dir: Path) -> bool:
    return spec.adapter.weights_present(Path(models_dir).expanduser() / spec.id)


def _constraints(spec: ModelSpec) -> dict[str, Any]:
    c = spec.constraints
    return {
        "size_multiple": c.size_multiple,
        "min_size": c.min_size,
        "max_size": c.max_size,
        "frames_step": c.frames_step,
        "frames_offset": c.frames_offset,
        "min_frames": c.min_frames,
        "max_frames": c.max_frames,
        "frames_rule": c.frames_rule(),
        "min_steps": 1,
        "max_steps": c.max_steps,
        "min_guidance": c.min_guidance,
        "max_guidance": c.max_guidance,
        "min_fps": FPS_RANGE[0],
        "max_fps": FPS_RANGE[1],
        # `seconds` at the default fps: the longest clip (POST /v1/videos refuses more)
        "max_seconds": round(c.nearest_frames(c.max_frames) / spec.defaults.fps, 3),
    }


def describe_modes(spec: ModelSpec) -> list[dict[str, Any]]:
    """The model's modes as its adapter declares them: what each needs and takes (the page shows
    exactly those inputs), whether the image is required, whether a LoRA is."""
    adapter = spec.adapter
    return [
        {
            "name": mode.name,
            "summary": mode.summary,
            "default": mode.name == adapter.default_mode,
            "supported": mode.supported,
            "reason": mode.reason or None,
            "image": mode.image,
            "needs": sorted(mode.needs),
            "takes": sorted(mode.takes | mode.needs),
            "needs_lora": mode.needs_lora,
            "stages": mode.stages,
        }
        for mode in adapter.modes.values()
    ]


def describe_models(budget: DeviceBudget, settings: Any) -> list[dict[str, Any]]:
    models = []
    for spec in catalogue.all_specs():
        present = weights_present(spec, settings.models_dir)
        available = present or spec.tiny
        presets = []
        for name in PRESET_NAMES:
            entry: dict[str, Any] = {"name": name, "label": spec.preset(name).label}
            try:
                request = resolve(spec, name)
                entry["values"] = {
                    k: v
                    for k, v in request.to_dict().items()
                    if k in ("height", "width", "frames", "steps", "guidance", "fps")
                }
                p = plan_for(spec, request, budget, settings)
                entry.update(
                    fits=True, reason=None, plan=p.summary(), predicted_peak_mib=p.predicted_peak_mib
                )
            except PlanRefusedError as exc:
                entry.update(fits=False, reason=str(exc), plan=None)
            except (InvalidRequestError, ValueError) as exc:
                entry.update(fits=False, reason=str(exc), plan=None)
            presets.append(entry)
        fits = any(p["fits"] for p in presets)
        reasons, short = [], []
        if not available:
            reasons.append(f"weights are not downloaded: run `i2v fetch {spec.id}`")
            short.append("weights not downloaded")
        if not fits:
            reasons.append(next(p["reason"] for p in presets if p["reason"]))
            short.append(f"does not fit this {budget.kind}")
        models.append(
            {
                "id": spec.id,
                "family": spec.family,
                "title": spec.title,
                "tiny": spec.tiny,
                "weights_present": present,
                "built_on_first_use": spec.tiny and not present,
                "fits_device": fits,
                "usable": available and fits,
                "reason": "; ".join(reasons) or None,
                "reason_short": ", ".join(short) or None,
                "defaults": asdict(spec.defaults),
                "constraints": _constraints(spec),
                "takes_loras": spec.adapter.levers.lora,
                "default_mode": spec.adapter.default_mode,
                "modes": describe_modes(spec),
                "presets": presets,
            }
        )
    return models


class BudgetCache:
    """The current budget, re-read at most every `ttl_s` (the workers' rows, else the probe)."""

    def __init__(self, store: Any, device: str, ttl_s: float = 5.0):
        self.store, self.device, self.ttl_s = store, device, ttl_s
        self._value: tuple[float, DeviceBudget, str] | None = None

    def get(self) -> tuple[DeviceBudget, str]:
        now = time.monotonic()
        if self._value is None or now - self._value[0] > self.ttl_s:
            budget = budget_from_workers(self.store.live_workers())
            source = "worker"
            if budget is None:
                budget, source = probed_budget(self.device), "probe"
            self._value = (now, budget, source)
        return self._value[1], self._value[2]
