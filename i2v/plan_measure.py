"""`i2v plan --measure`: a plan's predicted peaks per phase next to a fake-tensor measurement of the same
request on the full-size pipeline (`i2v.memory.measure`), run on this machine's CPU.

The comparison is like for like: the prediction all resident and without device factors (what fake
tensors can see) against the measurement, phase by phase; the plan's own peaks on the device (its
strategy, device factors, overhead) are printed beside them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from i2v.catalogue.spec import ModelSpec
from i2v.planner import Plan, phase_peaks, weights_mib
from i2v.request import GenerationRequest


@dataclass(frozen=True)
class PhaseRow:
    phase: str
    predicted_mib: int  # all resident, no device factor, no overhead
    measured_mib: int
    plan_peak_mib: int  # the plan's own prediction on this device


@dataclass(frozen=True)
class MeasureReport:
    weights_predicted_mib: int
    weights_measured_mib: int
    rows: tuple[PhaseRow, ...]
    attention_kernels: tuple[str, ...]
    ops_per_forward: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def print(self, console: Any, plan: Plan) -> None:
        from rich.table import Table

        console.print(plan.summary())
        table = Table(
            "phase",
            "predicted GiB (all resident)",
            "measured GiB (fake tensors)",
            f"plan on {plan.device} GiB",
            title=f"weights: predicted {self.weights_predicted_mib / 1024:.2f} GiB, "
            f"measured {self.weights_measured_mib / 1024:.2f} GiB",
        )
        for row in self.rows:
            table.add_row(
                row.phase,
                f"{row.predicted_mib / 1024:.2f}",
                f"{row.measured_mib / 1024:.2f}",
                f"{row.plan_peak_mib / 1024:.2f}",
            )
        console.print(table)
        console.print(
            f"measured in {self.seconds:.0f} s; {self.ops_per_forward:,.0f} ops per denoiser forward; "
            f"attention kernels: {', '.join(self.attention_kernels) or '-'}"
        )


def measure_plan(spec: ModelSpec, request: GenerationRequest, plan: Plan) -> MeasureReport:
    from i2v.levers import FORWARD_CHUNKS
    from i2v.memory.measure import STEPS, FakePipeline, Setting

    fake = FakePipeline(spec, plan.dtype, fp8=plan.fp8_weights)
    setting = Setting(
        decode_chunk=plan.decode_chunk or None,
        vae_tiling=plan.vae_tiling,
        forward_chunks=FORWARD_CHUNKS if plan.forward_chunking else 0,
    )
    measured = fake.measure(
        request.height, request.width, request.frames, setting, request.with_(steps=STEPS)
    )
    levers = dict(
        decode_chunk=plan.decode_chunk,
        vae_tiling=plan.vae_tiling,
        forward_chunking=plan.forward_chunking,
        fp8=plan.fp8_weights,
    )
    fake_level = phase_peaks(spec, request, plan.dtype, "resident", device_factors=False, **levers)
    observed: dict[str, float] = {}
    for name, value in measured.phases.items():
        observed[name] = max(observed.get(name, 0.0), value)
    on_device = {p.name: p.peak_mib for p in plan.phases}
    weights = sum(weights_mib(spec, plan.dtype, plan.fp8_weights).values())
    rows = tuple(
        PhaseRow(
            p.name,
            int(weights + p.activations_mib),
            int(measured.weights_mib + observed.get(p.name, 0.0)),
            on_device.get(p.name, 0),
        )
        for p in fake_level
    )
    return MeasureReport(
        int(weights),
        int(measured.weights_mib),
        rows,
        measured.attention_kernels,
        measured.ops_per_forward,
        measured.seconds,
    )


__all__ = ["MeasureReport", "PhaseRow", "measure_plan"]
