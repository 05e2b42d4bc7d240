"""A worker: one process per device that claims jobs from the store and runs them on a warm pipeline.

`i2v serve` starts one per device with the device's visible-devices variable set (so the process
sees exactly one accelerator) and restarts it if it dies; `i2v worker` also runs standalone against
a shared database. This is the only service process that imports torch (through the engine).

Lifecycle: register (state "starting", the device budget measured before loading) -> load the
served model ("ready", or "failed" with the reason) -> claim, run, finish, repeat. A heartbeat
thread renews the worker row and the running job's lease every third of the lease. SIGTERM or
SIGINT: stop claiming; a running job may finish within `drain_grace_s`, else it is handed back to
the queue at its next step (attempt unchanged) and the process exits 0.

A worker started with a card group's rendezvous (I2V_GROUP_*, by the supervisor) is rank 0 of that
group: it alone talks to the store and writes results, and it runs every warm-up and job on all the
group's cards (`i2v.parallel.follower.lead`), sending `Idle` while it waits so the other cards' waits
never time out. When the group breaks (a card died, hung past the collective timeout, or ended a job
differently), the job is failed with rank 0's own error if it had one, otherwise left for the
supervisor to requeue, and the process exits with `EXIT_GROUP_BROKEN` so the group is restarted.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from i2v.errors import INTERNAL_ERROR, job_code
from i2v.jobs import JobStore, LeaseLostError, ServiceSettings
from i2v.jobs.paths import (
    PREVIEWS,
    preview_path,
    remove_uploads,
    upload_path_ok,
    upload_paths,
    video_path,
)
from i2v.parallel.group import Idle, Job, Stop, Warm

log = logging.getLogger("i2v.worker")
PROGRESS_EVERY_S = 0.25


class JobCancelled(Exception):
    """DELETE arrived while the job ran; raised from the step callback."""


class Drained(Exception):
    """The grace period ran out while draining; raised from the step callback."""


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` when the supervisor dies (Linux), so no worker outlives it."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG


def rss_mib() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


class Worker:
    def __init__(
        self,
        settings: ServiceSettings,
        worker_id: str | None = None,
        slot: str | None = None,
        store: JobStore | None = None,
        engine: Any = None,
    ):
        self.settings = settings
        self.slot = slot or settings.device
        self.id = worker_id or f"{settings.host_name()}-{self.slot}-{uuid.uuid4().hex[:8]}"
        self.store = store or JobStore.from_settings(settings)
        self.outputs = settings.outputs_path()
        self.stopping = threading.Event()
        self.deadline = float("inf")
        self.job_id: str | None = None
        self.parent = os.getppid()
        self.engine: Any = engine  # built by the warm-up from the settings unless given (tests)
        self.group: Any = None  # i2v.parallel.group.Group when this worker is rank 0 of a card group
        self.passed: dict[str, float] = {}  # job id -> when this worker passed it to a card that fits

    # --- process lifecycle -------------------------------------------------------------------------

    def stop(self, *_: Any) -> None:
        if not self.stopping.is_set():
            self.deadline = time.monotonic() + self.settings.drain_grace_s
            self.stopping.set()

    def run(self) -> int:
        from i2v.parallel.group import EXIT_GROUP_BROKEN, GroupBrokenError

        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.register()
        beat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        beat.start()
        code = 0
        try:
            self._join_group()
            self.warm_up()
            self._loop()
            if self.group is not None:
                self.group.send(Stop())
        except GroupBrokenError as exc:
            log.error("worker %s: its card group broke (%s); exiting for a restart", self.id, exc)
            code = EXIT_GROUP_BROKEN
        finally:
            self.stopping.set()
            beat.join(timeout=5)
            with contextlib.suppress(Exception):
                self.store.set_worker(self.id, state="gone", job_id=None, seen_at=time.time())
            self.store.dispose()
            if self.group is not None:
                self.group.close()
        return code

    def register(self) -> None:
        self.store.create_schema()
        self.store.register_worker(
            self.id,
            host=self.settings.host_name(),
            pid=os.getpid(),
            slot=self.slot,
            state="starting",
            model=None,
            error=None,
            job_id=None,
        )

    def _join_group(self) -> None:
        from i2v.devices import select_device
        from i2v.parallel.group import Group, Rendezvous

        rendezvous = Rendezvous.from_env()
        if rendezvous is None:
            return
        device = select_device(None if self.settings.device == "auto" else self.settings.device)
        self.group = Group(rendezvous, device).start()

    def warm_up(self) -> None:
        from i2v import catalogue
        from i2v.engine import Engine, ensure_weights
        from i2v.parallel.follower import WEIGHTS_READY, lead
        from i2v.parallel.group import GroupBrokenError
        from i2v.request import resolve

        if self.engine is None:
            self.engine = Engine(self.settings, group=self.group)
        spec = catalogue.get(self.settings.model)
        try:
            budget = self.engine.budget(spec)
            self.store.set_worker(self.id, budget=budget.to_json())
            request = resolve(spec, self.settings.preset)
            if self.group is None:
                self.engine.warm(request)
            else:
                try:
                    ensure_weights(spec, self.settings)  # once, before any other card reads them
                finally:
                    self.group.signal(WEIGHTS_READY)
                lead(self.group, self.engine, Warm(request.to_dict()))
        except GroupBrokenError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported on /health/ready; the worker keeps serving
            log.error("worker %s could not load %s: %s", self.id, spec.id, exc)
            self.store.set_worker(self.id, state="failed", error=f"{type(exc).__name__}: {exc}")
            return
        self.store.set_worker(self.id, state="ready", model=spec.id, error=None)
        log.info("worker %s ready with %s on %s", self.id, spec.id, self.slot)

    def _loop(self) -> None:
        last_reap = 0.0
        while not self.stopping.is_set():
            if os.getppid() != self.parent:  # the supervisor died without taking us along
                log.warning("worker %s: parent %d is gone; stopping", self.id, self.parent)
                break
            try:
                if time.monotonic() - last_reap > self.settings.lease_s / 2:
                    remove_uploads(self.outputs, self.store.requeue_lost())
                    last_reap = time.monotonic()
                job = self.claim()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not throw away a warm pipeline
                log.warning("worker %s: the job store failed (%s); retrying", self.id, exc)
                self._idle()
                self.stopping.wait(1.0)
                continue
            if job is None:
                self._idle()
                self.stopping.wait(self.settings.poll_interval_s)
                continue
            self.job_id = job["id"]
            try:
                self.run_job(job)
            finally:
                self.job_id = None

    def claim(self) -> dict[str, Any] | None:
        """The next queued job for this worker: jobs it passed on to a card that fits are left to the
        others for one lease; after that it looks again (the other card may have gone or filled up)."""
        now = time.monotonic()
        self.passed = {j: t for j, t in self.passed.items() if now - t < self.settings.lease_s}
        return self.store.claim(self.id, skip=self.passed)

    def _idle(self) -> None:
        """Tell the group's other cards that rank 0 is alive and has nothing for them."""
        if self.group is not None:
            self.group.send(Idle())

    def _heartbeat(self) -> None:
        every = self.settings.lease_s / 3
        while not self.stopping.wait(every):
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - a busy database must not kill the worker
                log.warning("heartbeat failed: %s", exc)

    def beat(self) -> None:
        """Renew the row and the running job's lease; while idle, also what this card could hold now
        (another process may have taken or freed memory on it), which the other workers place by."""
        fields: dict[str, Any] = {"rss_mib": rss_mib()}
        if self.job_id is None and self.engine is not None:
            from i2v import catalogue

            fields["budget"] = self.engine.budget(catalogue.get(self.settings.model)).to_json()
        self.store.heartbeat(self.id, self.job_id, **fields)

    # --- one job -----------------------------------------------------------------------------------

    def run_job(self, job: dict[str, Any]) -> None:
        from i2v.images import load_image
        from i2v.parallel.follower import lead
        from i2v.parallel.group import GroupBrokenError
        from i2v.request import GenerationRequest

        job_id = job["id"]
        out = video_path(self.outputs, job_id)
        try:
            request = GenerationRequest.from_dict(json.loads(job["params"]))
            self._check_paths(job, request)
            if self._passed_on(job_id, request):
                return
            image = None
            if job["image_path"]:  # "" when the mode runs without an image (ic-lora)
                image = load_image(
                    job["image_path"],
                    max_bytes=self.settings.max_upload_bytes,
                    max_pixels=self.settings.max_image_pixels,
                )
            if self.group is None:
                result = self.engine.generate(request, image, self._reporter(job_id))
            else:
                result = lead(self.group, self.engine, Job(request.to_dict(), image), self._reporter(job_id))
            steps = result.steps  # every stage's steps (a two-stage mode runs more than `request.steps`)
            self._report(job_id, stage="encoding", step=steps, total_steps=steps, eta_s=0.0)
            extras = json.loads(job["extras"]) if job.get("extras") else {}
            info = self._write(result, out, request.fps, extras.get("extends"))
            info["weights_read_bytes"] = result.weights_read_bytes
        except GroupBrokenError as broken:
            own = getattr(broken, "own_error", None)
            if own is not None and job_code(own) != INTERNAL_ERROR:
                # Rank 0's own known failure (out of memory, a refused plan): the job fails with it. Anything
                # else (a collective that timed out or lost its peer) is the group's, and the supervisor
                # requeues the job (attempt + 1, up to max_attempts) when this process exits.
                self._end(job, "failed", error_code=job_code(own), error_message=str(own)[:2000])
            with contextlib.suppress(OSError):
                out.unlink()
            raise
        except JobCancelled:
            self._end(job, "cancelled")
        except Drained:
            log.info("worker %s: grace period over, job %s goes back to the queue", self.id, job_id)
            self.store.release(job_id, self.id)
        except LeaseLostError:
            log.warning(
                "worker %s lost job %s (lease expired or cancelled); result discarded", self.id, job_id
            )
        except Exception as exc:  # noqa: BLE001 - the job fails, the worker carries on
            code = job_code(exc)
            if code == INTERNAL_ERROR:
                log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            self._end(job, "failed", error_code=code, error_message=str(exc)[:2000])
        else:
            peak = result.peak_mib if result.peak_mib is not None else _peak_rss_mib()
            self._end(
                job,
                "succeeded",
                output_path=str(out),
                result=json.dumps(info),
                plan=json.dumps(result.plan.to_dict()),
                load_s=result.load_s,
                run_s=result.run_s,
                seconds_per_step=result.seconds_per_step,
                peak_mib=peak,
                stage="done",
                eta_s=0.0,
            )
            return
        for path in (out, *(preview_path(self.outputs, job_id, v) for v in PREVIEWS)):
            with contextlib.suppress(OSError):
                path.unlink()

    def _passed_on(self, job_id: str, request: Any) -> bool:
        """Place the job before anything loads (i2v.jobs.placement): True when it went back to the
        queue for another worker whose card fits; raises the planner's refusal when no card does."""
        from i2v import catalogue
        from i2v.jobs.placement import peers_serving, place
        from i2v.planner import PlanRefusedError

        spec = catalogue.get(request.model)
        layout = self.group.layout if self.group is not None else None
        placement = place(
            spec,
            request,
            self.engine.budget(spec),
            lambda: peers_serving(self.store.live_workers(), spec.id, exclude=self.id),
            self.settings,
            layout=layout,
        )
        if placement.verdict == "refuse":
            raise PlanRefusedError(placement.reason, [])
        if placement.verdict == "run":
            return False
        log.info("worker %s passes job %s on: %s", self.id, job_id, placement.reason)
        self.passed[job_id] = time.monotonic()
        self.store.release(job_id, self.id)
        return True

    def _check_paths(self, job: dict[str, Any], request: Any) -> None:
        """Every file the stored job names is one the API made: uploads, and LoRAs of the LoRA folder."""
        media = [getattr(request, name) for name in ("last_image", "audio", "video", "reference_video")]
        media += [k.path for k in request.keyframes]
        extends = json.loads(job["extras"]).get("extends") if job.get("extras") else None
        media += [job["image_path"] or None, extends["path"] if extends else None]
        for path in media:
            if path is not None and not upload_path_ok(self.outputs, path):
                raise ValueError(f"a stored input path is outside the uploads folder: {path}")
        loras = self.settings.loras_path()
        for ref in request.loras:
            if Path(ref.path).resolve().parent != loras:
                raise ValueError(f"a stored LoRA is outside the LoRA folder: {ref.path}")
        from i2v.catalogue.assets import ASSETS

        models = Path(self.settings.models_dir).expanduser().resolve()
        for ref in request.preset_loras:  # a preset's distillation LoRA: a catalogue asset's own file
            path = Path(ref.path).resolve()
            asset = ASSETS.get(path.parent.name)
            if path.parent.parent != models or asset is None or path.name not in asset.files:
                raise ValueError(f"a stored preset LoRA is not a catalogue asset's file: {ref.path}")

    def _write(self, result: Any, out: Path, fps: float, extends: dict[str, Any] | None) -> dict[str, Any]:
        from i2v.previews import previews_from_mp4, write_previews

        out.parent.mkdir(parents=True, exist_ok=True)
        output = result.output
        fps = output.fps or fps  # a retake keeps its source's frame rate
        previews = {v: preview_path(self.outputs, out.stem, v) for v in PREVIEWS}
        if extends:
            from i2v.stitch import read_source, stitch

            clip = read_source(extends["path"])
            info = stitch(
                extends["path"], clip, output.frames, out, fps, output.audio, output.audio_sample_rate
            )
            previews_from_mp4(out, previews)
            joined = {"source_frames": clip.frames, "segment_frames": len(output.frames)}
        else:
            from i2v.video import write_mp4

            info = write_mp4(
                output.frames, out, fps=fps, audio=output.audio, audio_sample_rate=output.audio_sample_rate
            )
            write_previews(output.frames, previews)
            joined = {}
        return {
            "frames": info.frames,
            "width": info.width,
            "height": info.height,
            "fps": fps,
            "duration_s": round(info.duration_s, 3),
            "bytes": info.bytes,
            "has_audio": info.has_audio,
            **joined,
        }

    def _end(self, job: dict[str, Any], state: str, **fields: Any) -> None:
        if not self.store.finish(job["id"], self.id, state, **fields):
            log.warning("worker %s: job %s was no longer ours when it ended", self.id, job["id"])
            return
        for path in upload_paths(self.outputs, job["id"]):  # not needed once the job is over
            with contextlib.suppress(OSError):
                os.remove(path)

    def _reporter(self, job_id: str):
        last = [0.0, ""]

        def report(p: Any) -> None:
            now = time.monotonic()
            final = p.step >= p.total
            if p.stage == last[1] and not final and now - last[0] < PROGRESS_EVERY_S:
                self._check_drain()
                return
            last[0], last[1] = now, p.stage
            self._report(
                job_id,
                stage=p.stage,
                step=p.step,
                total_steps=p.total,
                seconds_per_step=p.seconds_per_step,
                eta_s=p.eta_s,
            )

        return report

    def _report(self, job_id: str, **fields: Any) -> None:
        if self.store.progress(job_id, self.id, **fields):
            raise JobCancelled(job_id)
        self._check_drain()

    def _check_drain(self) -> None:
        if self.stopping.is_set() and time.monotonic() > self.deadline:
            raise Drained()


def _peak_rss_mib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main(worker_id: str | None = None, slot: str | None = None) -> int:
    from i2v.jobs import load_service_settings

    die_with_parent()
    logging.basicConfig(
        level=os.environ.get("I2V_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("diffusers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    return Worker(load_service_settings(), worker_id=worker_id, slot=slot).run()
