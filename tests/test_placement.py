"""A job runs on a card that fits it: the seed's out-of-memory case (NPU 0 held by another process,
NPU 1 idle), decided before anything loads, never by crashing.

The rule (i2v.jobs.placement) on the full-size LTX-2.3 at the seed's size, torch-free; then two real
workers on one job store (SQLite and PostgreSQL), each on its own card of the fake torch_npu (the
only fake: there is no NPU here; the maths runs on the CPU), with the tiny Wan 2.1 pipeline: the
worker on the full card fails its warm-up, passes the job on, and the idle card's worker runs it;
once the idle card fills up too (its heartbeat says so), the job fails naming what was checked.
"""

from __future__ import annotations

import json
import uuid

import pytest

from i2v import catalogue
from i2v.jobs.placement import Peer, peers_serving, place
from i2v.planner import DeviceBudget
from i2v.request import resolve
from i2v.settings import Settings

MIB = 1024 * 1024
HOST_RAM_MIB = 1536 * 1024  # an Atlas 800I A2's host memory (1.5 TiB): room for LTX-2.3's model offload


def ascend(free_mib: int) -> DeviceBudget:
    return DeviceBudget("npu", "Ascend910B3", 65536, free_mib, HOST_RAM_MIB, chip="910B3")


IDLE = ascend(62144)  # 64 GiB card, the runtime's ~3.3 GiB in use
BUSY = ascend(62144 - 40960)  # another process holds 40 GiB of it (the seed: "NPU 0 被占用")


@pytest.fixture(scope="module")
def seed_request():
    spec = catalogue.get("ltx-2.3")
    return spec, resolve(spec, "standard", prompt="p", height=1024, width=1536, frames=41)


def test_the_busy_card_passes_the_seeds_job_to_the_idle_one(seed_request):
    spec, request = seed_request
    here = place(spec, request, BUSY, lambda: [Peer("host-npu1", IDLE)], Settings())
    assert here.verdict == "pass" and here.peer == "host-npu1"
    assert "does not fit Ascend910B3" in here.reason and "worker host-npu1" in here.reason
    there = place(spec, request, IDLE, lambda: [Peer("host-npu0", BUSY)], Settings())
    assert there.verdict == "run" and there.plan is not None


def test_no_card_that_fits_refuses_naming_what_was_checked(seed_request):
    spec, request = seed_request
    refused = place(spec, request, BUSY, lambda: [Peer("host-npu1", BUSY)], Settings())
    assert refused.verdict == "refuse" and refused.peer is None
    assert "no other card fits it either (1 other live worker of ltx-2.3 checked)" in refused.reason


@pytest.fixture(scope="module")
def wan_480p():
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    return spec, resolve(spec, "standard", prompt="p")


def test_a_job_that_needs_offload_here_goes_to_an_idle_card_that_holds_it_resident(wan_480p):
    """The guide's advice: full loading on the idle card beats streaming layers on the busy one."""
    spec, request = wan_480p
    here = place(spec, request, BUSY, lambda: [Peer("host-npu1", IDLE)], Settings())
    assert here.verdict == "pass" and here.peer == "host-npu1"
    assert here.reason.startswith("it needs group-offload here and runs resident on idle worker host-npu1")
    busy_peer = place(spec, request, BUSY, lambda: [Peer("host-npu1", IDLE, idle=False)], Settings())
    assert busy_peer.verdict == "run" and busy_peer.plan.strategy == "group-offload"  # not waited for
    no_better = place(spec, request, BUSY, lambda: [Peer("host-npu1", BUSY)], Settings())
    assert no_better.verdict == "run" and no_better.plan.strategy == "group-offload"


def test_a_job_resident_here_runs_here_without_reading_the_peers(wan_480p):
    spec, request = wan_480p

    def unread():
        raise AssertionError("the other workers' rows were read for a job that is resident here")

    placed = place(spec, request, IDLE, unread, Settings())
    assert placed.verdict == "run" and placed.plan.strategy == "resident"


def test_peers_are_the_other_ready_workers_of_the_same_model():
    budget = json.dumps(vars(IDLE))
    rows = [
        {"id": "me", "model": "ltx-2.3", "state": "ready", "budget": budget},
        {"id": "other-model", "model": "tiny-svd", "state": "ready", "budget": budget},
        {"id": "failed", "model": None, "state": "failed", "budget": budget},
        {"id": "no-budget", "model": "ltx-2.3", "state": "ready", "budget": None},
        {"id": "garbled", "model": "ltx-2.3", "state": "ready", "budget": '{"free": 1}'},
        {"id": "host-npu1", "model": "ltx-2.3", "state": "ready", "budget": budget, "job_id": None},
        {"id": "host-npu2", "model": "ltx-2.3", "state": "ready", "budget": budget, "job_id": "j1"},
    ]
    assert peers_serving(rows, "ltx-2.3", exclude="me") == [
        Peer("host-npu1", IDLE, idle=True),
        Peer("host-npu2", IDLE, idle=False),
    ]


# --- two workers, two cards, one store ---------------------------------------------------------------

MODEL = "tiny-wan2.1-i2v"


@pytest.fixture
def cards(tmp_path, database_url, tmp_path_factory):
    """Two workers (cards 0 and 1 of the fake 910B3) on one store; card 0 is nearly full."""
    import fake_torch_npu as fake_module

    from i2v.engine import Engine, ensure_weights
    from i2v.families import resolve_class
    from i2v.jobs import JobStore, ServiceSettings
    from i2v.worker import Worker

    models = tmp_path_factory.getbasetemp() / "models"
    settings = ServiceSettings(
        _env_file=None,
        model=MODEL,
        preset="fast",
        models_dir=str(models),
        outputs_dir=str(tmp_path / "outputs"),
        loras_dir=str(tmp_path / "loras"),
        database_url=database_url,
        node_name="atlas",
    )
    spec = catalogue.get(MODEL)
    ensure_weights(spec, settings)  # built before "torch_npu" exists (see test_npu_policy_e2e)
    resolve_class(spec.pipeline_cls)
    store = JobStore.from_settings(settings)
    with fake_module.installed() as fake:
        used = fake.npu._used_by_others
        used[0] = fake_module.FREE_BYTES - 64 * MIB  # another process leaves 64 MiB of card 0
        workers = []
        for index in (0, 1):
            engine = Engine(settings, device=fake_module.NpuPolicyOnCpu(index))
            worker = Worker(
                settings, worker_id=f"atlas-npu{index}", slot=f"npu{index}", store=store, engine=engine
            )
            worker.register()
            workers.append(worker)
        yield settings, store, workers, used
    store.dispose()


def submit(settings, store) -> str:
    from i2v.cli import demo_image
    from i2v.jobs import NewJob
    from i2v.jobs.paths import upload_path

    spec = catalogue.get(MODEL)
    request = resolve(spec, "fast", prompt="a red ball", steps=2)
    job_id = uuid.uuid4().hex
    outputs = settings.outputs_path()
    (outputs / "uploads").mkdir(parents=True, exist_ok=True)
    path = upload_path(outputs, job_id, ".png")
    demo_image(request.width, request.height).save(path, format="PNG")
    store.submit(NewJob(job_id, MODEL, request.to_dict(), str(path), request_hash=job_id), queue_size=10)
    return job_id


def test_a_job_claimed_on_a_full_card_runs_on_the_card_that_fits(cards):
    settings, store, (npu0, npu1), used = cards
    npu0.warm_up()
    npu1.warm_up()
    states = {w["id"]: w for w in store.live_workers()}
    assert states["atlas-npu0"]["state"] == "failed" and "does not fit" in states["atlas-npu0"]["error"]
    assert states["atlas-npu1"]["state"] == "ready"

    job_id = submit(settings, store)
    claimed = npu0.claim()
    assert claimed is not None and claimed["id"] == job_id  # the full card's worker got there first
    npu0.run_job(claimed)
    row = store.get(job_id)
    assert (row["state"], row["attempt"], row["worker_id"]) == ("queued", 1, None)
    assert npu0.claim() is None  # passed on: left for the card that fits
    ran = npu1.claim()
    assert ran is not None and ran["id"] == job_id
    npu1.run_job(ran)
    row = store.get(job_id)
    assert (row["state"], row["worker_id"], row["attempt"]) == ("succeeded", "atlas-npu1", 1)
    assert (settings.outputs_path() / "videos" / f"{job_id}.mp4").stat().st_size > 0

    # Card 1 fills up too; its idle heartbeat reports it, and then no card fits the next job.
    reported = json.loads(store.live_workers()[1]["budget"])["free_mib"]
    used[1] = used[0]
    npu1.beat()
    assert json.loads(store.live_workers()[1]["budget"])["free_mib"] < reported - 60000
    second = submit(settings, store)
    npu0.run_job(npu0.claim())
    row = store.get(second)
    assert row["state"] == "failed" and row["error_code"] == "does_not_fit"
    assert (
        "no other card fits it either (1 other live worker of tiny-wan2.1-i2v checked)"
        in row["error_message"]
    )
