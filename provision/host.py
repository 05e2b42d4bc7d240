"""From a hardware report to deployment facts: profile, device budgets, image, dtype, model.

Torch-free. The planner sees the host through `DeviceBudget`s built here; provisioning plans
against total memory (free memory moves from moment to moment and would make `.env` unstable);
the runtime re-plans against the live free memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from i2v import catalogue
from i2v.catalogue.spec import ModelSpec
from i2v.hardware import HardwareReport
from i2v.parallel import Layout
from i2v.planner import DeviceBudget, Plan, PlanRefusedError, plan
from i2v.request import resolve
from provision import cann

VERSION = "0.1.0"
DEFAULT_REGISTRY = "docker.io/i2vdeploy"

# CUDA image variants, newest first, with the minimum Linux driver of that toolkit (NVIDIA's CUDA
# toolkit release notes, table 3). Below the oldest, CUDA 12 minor-version compatibility still runs
# down to 525.60.13 without PTX JIT; below that nothing runs.
CUDA_VARIANTS: tuple[tuple[str, str], ...] = (
    ("12.8", "570.26"),
    ("12.6", "560.28.03"),
    ("12.4", "550.54.14"),
)
CUDA12_FLOOR = "525.60.13"


# Best first: the first model whose standard preset runs all-resident on one device is proposed.
RECOMMENDATION_ORDER = (
    "wan2.1-i2v-14b-720p",
    "wan2.1-i2v-14b-480p",
    "wan2.2-ti2v-5b",
    "ltx-video",
    "i2vgen-xl",
)


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.replace("-", ".").split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def profile(report: HardwareReport) -> str:
    return {"nvidia": "cuda", "ascend": "npu"}.get(report.vendor, "cpu")


def budgets(report: HardwareReport, *, use_free: bool = False) -> list[DeviceBudget]:
    kind = profile(report)
    if kind == "cpu" or not report.devices:
        return [
            DeviceBudget(
                kind="cpu",
                name=f"{report.arch} CPU",
                total_mib=report.ram_mib,
                free_mib=report.ram_available_mib if use_free else report.ram_mib,
                host_ram_mib=report.ram_mib,
            )
        ]
    return [
        DeviceBudget(
            kind=kind,
            name=d.name,
            total_mib=d.memory_total_mib,  # type: ignore[arg-type]
            free_mib=d.memory_free_mib if use_free else d.memory_total_mib,
            host_ram_mib=report.ram_mib,
            compute_capability=d.compute_capability,
            chip=d.chip,
        )
        for d in report.devices
    ]


def smallest_budget(report: HardwareReport, *, use_free: bool = False) -> DeviceBudget:
    """Workers run one per device with the same model: plan for the tightest device."""
    return min(budgets(report, use_free=use_free), key=lambda b: b.free_mib)


def cuda_variant(driver: str | None) -> str:
    if driver:
        for cuda, minimum in CUDA_VARIANTS:
            if version_tuple(driver) >= version_tuple(minimum):
                return cuda
    return CUDA_VARIANTS[-1][0]


def cann_chip(report: HardwareReport) -> str:
    names = " ".join((d.chip or d.name) for d in report.devices).upper()
    if "310P" in names:
        return "310p"
    if "910_93" in names or "A3" in names.split():
        return "a3"
    return "910b"


def cann_choice(report: HardwareReport) -> cann.CannChoice:
    """The CANN image for this host's NPU driver (provision/cann.py): the newest one the driver runs."""
    return cann.choose(report.driver_version)


def image_ref(report: HardwareReport, registry: str = DEFAULT_REGISTRY) -> str:
    kind = profile(report)
    if kind == "cuda":
        return f"{registry}/i2v-deploy:{VERSION}-cuda{cuda_variant(report.driver_version)}"
    if kind == "npu":
        return f"{registry}/i2v-deploy:{VERSION}-cann{cann_choice(report).release.tag}-{cann_chip(report)}"
    return f"{registry}/i2v-deploy:{VERSION}-cpu"


def docker_platform(report: HardwareReport) -> str:
    return "linux/arm64" if report.arch in ("aarch64", "arm64") else "linux/amd64"


@dataclass(frozen=True)
class Recommendation:
    spec: ModelSpec
    plan: Plan | None
    refusal: str | None


def plan_for(
    spec: ModelSpec,
    report: HardwareReport,
    preset: str = "standard",
    *,
    use_free: bool = False,
    layout: Layout | None = None,
    **fields: object,
) -> Plan:
    return plan(
        spec, resolve(spec, preset, **fields), smallest_budget(report, use_free=use_free), layout=layout
    )


def job_layout(spec: ModelSpec, report: HardwareReport, preset: str, cards: str, **fields: object) -> Layout:
    """How one job spreads over this host's cards under I2V_CARDS_PER_JOB=`cards` (i2v.parallel: auto
    splits a job while each card keeps enough latent tokens, over as many cards as the family can use)."""
    from i2v.devices import CudaDevice, NpuDevice
    from i2v.parallel import cards_for, layout_for

    kind = profile(report)
    device_cls = {"cuda": CudaDevice, "npu": NpuDevice}.get(kind)
    ring = device_cls is not None and device_cls.ring_attention_backend is not None
    request = resolve(spec, preset, **fields)
    available = max(len(visible_ids(report)), 1)
    n = cards_for(cards, spec, request, kind=kind, available=available, ring_available=ring)
    return layout_for(spec, n, ring_available=ring)


def recommend(report: HardwareReport) -> Recommendation:
    if profile(report) == "cpu":
        spec = catalogue.get(catalogue.DEFAULT_MODEL)
        return Recommendation(spec, plan_for(spec, report), None)
    fallback: Recommendation | None = None
    for model_id in RECOMMENDATION_ORDER:
        spec = catalogue.get(model_id)
        try:
            p = plan_for(spec, report)
        except PlanRefusedError as exc:
            fallback = fallback or Recommendation(spec, None, str(exc))
            continue
        if p.strategy == "resident":
            return Recommendation(spec, p, None)
        fallback = Recommendation(spec, p, None) if fallback is None or fallback.plan is None else fallback
    spec = catalogue.get("i2vgen-xl")
    try:
        return Recommendation(spec, plan_for(spec, report), None)
    except PlanRefusedError as exc:
        return fallback or Recommendation(spec, None, str(exc))


def npu_device_ids(report: HardwareReport) -> list[int]:
    """/dev/davinci<N> numbers: one per chip (two per NPU on 300I Duo / A3), not per NPU id."""
    ids = []
    for d in report.devices:
        n = d.device_id if d.device_id is not None else d.index
        if n not in ids:
            ids.append(n)
    return ids


def visible_ids(report: HardwareReport) -> list[int]:
    """Host device ids, each once (NPU ids repeat when an NPU has two chips)."""
    ids: list[int] = []
    for d in report.devices:
        if d.index not in ids:
            ids.append(d.index)
    return ids
