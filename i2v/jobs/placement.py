"""Which card runs a job: the worker that claimed it, another live worker whose card fits, or none.

The layout: one worker process per card (the supervisor sets the card's visible-devices variable,
`CUDA_VISIBLE_DEVICES` / `ASCEND_RT_VISIBLE_DEVICES`, to that one card), or one worker per group of
N cards with `I2V_CARDS_PER_JOB=N`. Each worker measures its own card and keeps that figure in its
row, renewed by its heartbeat while it is idle (free memory plus its own warm weights), so every
worker sees what every other card could hold.

The seed's out-of-memory case (another process holds most of NPU 0, NPU 1 is idle; the guide's fix
is `ASCEND_RT_VISIBLE_DEVICES=1` by hand) is decided here before anything loads: the worker that
claimed a job plans it against its own card; when that is refused and a live worker serving the
same model has a card the plan fits, the job goes back to the queue for that worker (attempt
unchanged) and this worker leaves it alone for a while; only when no live card fits does the job
fail, with the planner's reason and what was checked. A job that fits here only by offloading
weights goes to an idle worker whose card holds it resident (the guide measured full loading on
the idle card 2.5x faster than layer streaming on the busy one); a busy one is not waited for.
Torch-free: the same rule runs in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from i2v.catalogue.spec import ModelSpec
from i2v.planner import STRATEGIES, DeviceBudget, Plan, PlanRefusedError, plan_for
from i2v.request import GenerationRequest

Verdict = Literal["run", "pass", "refuse"]


@dataclass(frozen=True)
class Peer:
    """Another live worker: its id and the budget its row reports."""

    worker_id: str
    budget: DeviceBudget
    idle: bool = True  # running no job now


@dataclass(frozen=True)
class Placement:
    verdict: Verdict
    reason: str  # why the job was passed on or refused ("" when it runs here)
    plan: Plan | None = None  # this card's plan when the verdict is "run"
    peer: str | None = None  # the worker whose card fits, when passed on


def peers_serving(rows: Iterable[Mapping[str, Any]], model: str, exclude: str) -> list[Peer]:
    """The live workers (rows of `JobStore.live_workers`) other than `exclude` that serve `model` and
    reported a budget; a row whose budget does not parse is skipped."""
    peers = []
    for row in rows:
        if row.get("id") == exclude or row.get("model") != model or row.get("state") != "ready":
            continue
        if (budget := DeviceBudget.from_json(row.get("budget"))) is not None:
            peers.append(Peer(str(row["id"]), budget, idle=row.get("job_id") is None))
    return peers


def place(
    spec: ModelSpec,
    request: GenerationRequest,
    own: DeviceBudget,
    peers: Callable[[], Sequence[Peer]],
    settings: Any,
    layout: Any = None,
) -> Placement:
    """Run here if this card holds the job resident; if it fits here only with offload, pass it to an
    idle peer that holds it resident, else run here; if it does not fit here, pass it to the first
    peer whose card fits; else refuse. `peers` is asked only when the job is not resident here (a
    read of the store that a job which fits saves)."""
    here = ""  # why this card does not fit
    try:
        mine = plan_for(spec, request, own, settings, layout=layout)
    except PlanRefusedError as refused:
        mine, here = None, str(refused)
    if mine is not None and mine.strategy == STRATEGIES[0]:
        return Placement("run", "", plan=mine)
    others = peers()
    for peer in others:
        if mine is not None and not peer.idle:
            continue
        try:
            theirs = plan_for(spec, request, peer.budget, settings, layout=layout)
        except PlanRefusedError:
            continue
        where = f"worker {peer.worker_id} ({peer.budget.name}, {peer.budget.free_mib} MiB free)"
        if mine is None:
            return Placement("pass", f"{here}; {where} fits it", peer=peer.worker_id)
        if STRATEGIES.index(theirs.strategy) < STRATEGIES.index(mine.strategy):
            reason = f"it needs {mine.strategy} here and runs {theirs.strategy} on idle {where}"
            return Placement("pass", reason, peer=peer.worker_id)
    if mine is not None:
        return Placement("run", "", plan=mine)
    checked = f"{len(others)} other live worker{'s' if len(others) != 1 else ''} of {spec.id}"
    return Placement("refuse", f"{here}; no other card fits it either ({checked} checked)")
