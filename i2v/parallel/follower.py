"""Running one task on every card of a group: rank 0's side (`lead`), the others' loop (`follow`).

A task is a warm-up (`Warm`: load the pipeline) or a job (`Job`: request + image). Rank 0 sends it,
then every card runs it on its own engine, and every card reports how it ended (`Group.agree`): all
the same (finished, stopped at the same step, or the same deterministic error such as a refused
plan) and the group carries on; different, and the group is broken (a card that failed alone left the
others in a collective) and every process exits with `EXIT_GROUP_BROKEN` for the supervisor to
restart the group. Rank 0 alone writes results and talks to the job store.

`python -m i2v.parallel.follower` is a card other than rank 0 (the supervisor and `i2v generate
--cards N` start them with the group's `Rendezvous` in the environment). It ignores SIGINT/SIGTERM
(rank 0 decides when the group stops: after draining, it sends `Stop`) and is SIGKILLed by the kernel
if whoever started it dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from typing import Any

from i2v.parallel.group import (
    EXIT_GROUP_BROKEN,
    Group,
    GroupBrokenError,
    GroupStop,
    Idle,
    Job,
    Rendezvous,
    Stop,
    Warm,
)

log = logging.getLogger("i2v.parallel")
WEIGHTS_READY = "weights"  # rank 0 has checked (or built) the weights; the others may read them


def outcome(engine: Any, exc: BaseException | None) -> str | None:
    """How this card ended a task, comparable across cards."""
    if exc is None:
        return None
    if isinstance(exc, GroupStop):
        return f"stopped: {exc.reason}"
    if engine.stopped_by is not None:  # rank 0's own stop, already told to the others
        return f"stopped: {engine.stopped_by}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def run_task(engine: Any, task: Warm | Job, progress: Any = None) -> Any:
    from i2v.request import GenerationRequest

    request = GenerationRequest.from_dict(task.request)
    if isinstance(task, Warm):
        return engine.warm(request)
    return engine.generate(request, task.image, progress)


def lead(group: Group, engine: Any, task: Warm | Job, progress: Any = None) -> Any:
    """Rank 0: run `task` on every card; its result (rank 0's), or its error once every card agrees."""
    group.send(task)
    error: BaseException | None = None
    result = None
    try:
        result = run_task(engine, task, progress)
    except GroupBrokenError:
        raise
    except Exception as exc:  # noqa: BLE001 - compared with the other cards', then re-raised
        error = exc
    try:
        group.agree(outcome(engine, error))
    except GroupBrokenError as broken:
        broken.own_error = error  # type: ignore[attr-defined] - rank 0 may record it before exiting
        raise
    if error is not None:
        raise error
    return result


def follow(group: Group, engine: Any) -> int:
    """Ranks 1..N-1: run rank 0's tasks until it says stop (0) or the group breaks (raises)."""
    group.wait_leader(WEIGHTS_READY)
    while True:
        message = group.receive()
        if isinstance(message, Idle):
            continue
        if isinstance(message, Stop):
            return 0
        error: BaseException | None = None
        try:
            run_task(engine, message)
        except GroupBrokenError:
            raise
        except Exception as exc:  # noqa: BLE001 - the same error on every card is a failed job, not a broken group
            error = exc
        group.agree(outcome(engine, error))


def spawn_followers(rendezvous: Rendezvous, env: dict[str, str]) -> list[subprocess.Popen]:
    """Start ranks 1..size-1 of `rendezvous` as `python -m i2v.parallel.follower`."""
    from dataclasses import replace

    processes = []
    for rank in range(1, rendezvous.size):
        child_env = env | replace(rendezvous, rank=rank).env()
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "i2v.parallel.follower"], env=child_env, stdin=subprocess.DEVNULL
            )
        )
    return processes


def run_on_cards(settings: Any, layout: Any, jobs: list[tuple[Any, Any]], progress: Any = None) -> list[Any]:
    """`i2v generate --cards N`: this process is rank 0 of a group on this host, running each
    (request, image) in turn; the other cards live as long as the call. Returns rank 0's `Result`s
    (each one's `cards` says what every card held)."""
    from i2v import catalogue
    from i2v.devices import select_device
    from i2v.engine import Engine, ensure_weights
    from i2v.parallel.group import free_port, strip_env

    device = select_device(None if settings.device == "auto" else settings.device)
    rendezvous = Rendezvous(
        rank=0,
        size=layout.cards,
        addr="127.0.0.1",
        port=free_port(),
        layout=layout,
        collective_timeout_s=settings.collective_timeout_s,
    )
    followers = spawn_followers(rendezvous, strip_env(dict(os.environ)))
    group = Group(rendezvous, device)
    try:
        group.start()
        engine = Engine(settings, group=group)
        for model in dict.fromkeys(request.model for request, _ in jobs):
            ensure_weights(catalogue.get(model), settings)  # a tiny model is built once, for every card
        group.signal(WEIGHTS_READY)
        try:
            results = [
                lead(group, engine, Job(request.to_dict(), image), progress) for request, image in jobs
            ]
        except GroupBrokenError:
            raise
        except BaseException:
            with contextlib.suppress(GroupBrokenError):
                group.send(Stop())  # the cards agreed on the failure: they end with 0 too
            raise
        group.send(Stop())
        return results
    finally:
        group.close()
        for process in followers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main() -> int:
    from i2v.devices import select_device
    from i2v.engine import Engine
    from i2v.settings import load_settings
    from i2v.worker import die_with_parent

    die_with_parent(signal.SIGKILL)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    logging.basicConfig(
        level=os.environ.get("I2V_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    rendezvous = Rendezvous.from_env()
    if rendezvous is None or rendezvous.rank == 0:
        print("i2v.parallel.follower runs ranks 1..N-1 of a card group (I2V_GROUP_*)", file=sys.stderr)
        return 2
    settings = load_settings()
    device = select_device(None if settings.device == "auto" else settings.device)
    group = Group(rendezvous, device)
    try:
        group.start()
        return follow(group, Engine(settings, group=group))
    except GroupBrokenError as exc:
        log.error("rank %d: %s; exiting for the group to be restarted", rendezvous.rank, exc)
        return EXIT_GROUP_BROKEN
    finally:
        group.close()


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: the messages rank 0 pickles name the
    # classes of `i2v.parallel.*`.
    from i2v.parallel.follower import main as _main

    sys.exit(_main())
