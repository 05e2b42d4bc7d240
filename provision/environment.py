"""The `.env` that `provision env` writes: which keys, their values for this host, and why."""

from __future__ import annotations

from pathlib import Path

from i2v import catalogue
from i2v.hardware import HardwareReport
from i2v.planner import PlanRefusedError
from i2v.settings import Settings
from provision import host
from provision.envfile import Entry
from provision.mirrors import DEFAULTS as MIRROR_DEFAULTS

_DESCRIPTIONS = {name: field.description or "" for name, field in Settings.model_fields.items()}


def _setting(key: str, value: str, choice: bool = True) -> Entry:
    return Entry(f"I2V_{key.upper()}", value, _DESCRIPTIONS[key], choice=choice)


def entries(
    report: HardwareReport,
    *,
    model: str | None,
    preset: str | None,
    port: int | None,
    models_dir: Path | None,
    registry: str,
    existing: dict[str, str],
) -> tuple[list[Entry], list[str]]:
    """The managed entries and notes for the user. Explicit arguments beat values in the file."""
    notes: list[str] = []
    profile = host.profile(report)
    chosen_model = model or existing.get("I2V_MODEL")
    if chosen_model:
        spec = catalogue.get(chosen_model)
    else:
        rec = host.recommend(report)
        spec = rec.spec
        notes.append(f"model {spec.id} chosen for this host" + (f" ({rec.refusal})" if rec.refusal else ""))
    chosen_preset = preset or existing.get("I2V_PRESET") or "standard"
    budget = host.smallest_budget(report)
    dtype = budget.auto_dtype(spec.preferred_dtype)
    try:
        p = host.plan_for(spec, report, chosen_preset)
        plan_note = f"planned for {p.device}: {p.strategy}, peak {p.predicted_peak_mib / 1024:.1f} GiB"
    except PlanRefusedError as exc:
        plan_note = f"no plan fits at the {chosen_preset} preset: {exc}"
        notes.append(plan_note)
    ids = ",".join(str(i) for i in host.visible_ids(report))
    device_kind = {"cuda": "cuda", "npu": "npu"}.get(profile, "cpu")
    models = str((models_dir or Path(existing.get("I2V_MODELS_DIR", "./models"))).expanduser())

    out = [
        Entry("COMPOSE_PROFILES", profile, "compose profile for this host: cuda | npu | cpu"),
        Entry(
            "I2V_IMAGE",
            host.image_ref(report, registry),
            "image for this platform (CUDA variant from the driver; CANN variant from the chip)",
        ),
        Entry("DOCKER_DEFAULT_PLATFORM", host.docker_platform(report), "image architecture for this host"),
        _setting("device", device_kind, choice=False),
        _setting("visible_devices", ids, choice=True),
        _setting("model", spec.id, choice=model is None),
        _setting("preset", chosen_preset, choice=preset is None),
        _setting("dtype", dtype, choice=True),
        Entry("I2V_STRATEGY", "auto", f"{_DESCRIPTIONS['strategy']} ({plan_note})", choice=True),
        _setting("workers_per_device", "1"),
        _setting("port", str(port) if port else "8000", choice=port is None),
        Entry(
            "I2V_MODELS_DIR",
            models,
            "host folder for model weights (mounted at /models in the containers)",
            choice=models_dir is None,
        ),
    ]
    if profile == "npu":
        out += [
            Entry(
                "I2V_NPU_DEVICES",
                ",".join(f"/dev/davinci{n}" for n in host.npu_device_ids(report)),
                "NPU device nodes passed to the containers (compose.override.yaml lists them)",
            ),
            Entry(
                "I2V_NPU_GID",
                str(report.device_node_gid if report.device_node_gid is not None else ""),
                "gid owning /dev/davinci* (HwHiAiUser): the container user joins it",
            ),
            Entry("ASCEND_VISIBLE_DEVICES", ids, "host NPU ids for the Ascend Docker Runtime, when present"),
        ]
    out += [
        Entry("PIP_INDEX_URL", MIRROR_DEFAULTS["pip"], "Python package index for image builds", choice=True),
        Entry("HF_ENDPOINT", MIRROR_DEFAULTS["huggingface"], "Hugging Face endpoint (a mirror)", choice=True),
        Entry("MODELSCOPE_DOMAIN", MIRROR_DEFAULTS["modelscope"], "ModelScope domain", choice=True),
    ]
    return out, notes
