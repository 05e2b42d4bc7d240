"""The process group of one job's cards: rendezvous, the control channel, collective timeouts.

One job runs on `size` processes (one per card), rank 0 driving. Whoever starts them (the service's
supervisor, `i2v generate --cards N`) hands each the same `Rendezvous` through the environment
(I2V_GROUP_*). Rank 0 hosts the rendezvous store; every rank joins `torch.distributed` over the
device's backend (NCCL on CUDA, HCCL on the NPU, gloo on the CPU) with `collective_timeout_s`, so a
card that hangs or dies turns every other card's next collective into an error within that time,
never a hang. After such an error the group is broken (gloo and NCCL both close the connections):
each process exits with `EXIT_GROUP_BROKEN` and the supervisor restarts the whole group.

Rank 0 talks to the others on a gloo "control" group (plain Python objects on the CPU):

    rank 0                                   ranks 1..N-1
    send(Warm | Job | Idle | Stop)   ->       receive()
    step_verdict(None | reason)      ->       step_verdict() raises GroupStop on a reason
    agree(outcome)                  <->       agree(outcome): every card ended the task the same way

Waiting for slow loads uses the rendezvous store with its own long timeout, not a collective.
Every card of a group sees all the group's cards and computes on the one at its rank (NCCL's
inter-process transport needs the peers visible).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from i2v.parallel.layout import Layout

log = logging.getLogger("i2v.parallel")
EXIT_GROUP_BROKEN = 75  # a card of the group failed: restart the group (the supervisor reads it)
ENV_PREFIX = "I2V_GROUP_"


class GroupBrokenError(RuntimeError):
    """A collective failed or timed out, or the cards ended a job differently: this group is done."""


class GroupStop(Exception):
    """Rank 0 stopped the running job at this step (cancelled, draining, lease lost)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Idle:
    """Rank 0 is alive and has no job (sent every poll, so the others' waits never time out)."""


@dataclass(frozen=True)
class Stop:
    """The group is shutting down: exit 0."""


@dataclass(frozen=True)
class Warm:
    request: dict[str, Any]  # load the pipeline this request runs on (a worker's start)


@dataclass(frozen=True)
class Job:
    request: dict[str, Any]  # GenerationRequest.to_dict()
    image: Any  # a PIL image, or None for modes without one


@dataclass(frozen=True)
class Rendezvous:
    rank: int
    size: int
    addr: str
    port: int
    layout: Layout
    collective_timeout_s: float = 120.0
    startup_timeout_s: float = 1800.0  # loading a 14B model from disk on every card takes minutes

    def env(self) -> dict[str, str]:
        return {
            f"{ENV_PREFIX}RANK": str(self.rank),
            f"{ENV_PREFIX}SIZE": str(self.size),
            f"{ENV_PREFIX}ADDR": self.addr,
            f"{ENV_PREFIX}PORT": str(self.port),
            f"{ENV_PREFIX}LAYOUT": json.dumps(self.layout.to_dict(), separators=(",", ":")),
            f"{ENV_PREFIX}TIMEOUT_S": str(self.collective_timeout_s),
            f"{ENV_PREFIX}STARTUP_TIMEOUT_S": str(self.startup_timeout_s),
        }

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Rendezvous | None:
        """The rendezvous this process was started with, or None outside a group (one card)."""
        env = os.environ if env is None else env
        if f"{ENV_PREFIX}SIZE" not in env:
            return None
        return cls(
            rank=int(env[f"{ENV_PREFIX}RANK"]),
            size=int(env[f"{ENV_PREFIX}SIZE"]),
            addr=env[f"{ENV_PREFIX}ADDR"],
            port=int(env[f"{ENV_PREFIX}PORT"]),
            layout=Layout.from_dict(json.loads(env[f"{ENV_PREFIX}LAYOUT"])),
            collective_timeout_s=float(env.get(f"{ENV_PREFIX}TIMEOUT_S", 120.0)),
            startup_timeout_s=float(env.get(f"{ENV_PREFIX}STARTUP_TIMEOUT_S", 1800.0)),
        )


def strip_env(env: dict[str, str]) -> dict[str, str]:
    """`env` without any group variables (a child that must not join its parent's group)."""
    return {k: v for k, v in env.items() if not k.startswith(ENV_PREFIX)}


class Group:
    """This process's membership of one card group. `start()` joins; the rest needs it joined."""

    def __init__(self, rendezvous: Rendezvous, device: Any):
        if rendezvous.layout.cards != rendezvous.size:
            raise ValueError(f"layout {rendezvous.layout.describe()} does not match {rendezvous.size} ranks")
        self.rdv = rendezvous
        self.rank, self.size, self.layout = rendezvous.rank, rendezvous.size, rendezvous.layout
        # The card this rank computes on: its rank among the group's visible cards.
        self.device = type(device)(index=self.rank if device.kind != "cpu" else 0)
        self.store: Any = None
        self.control: Any = None
        self._mesh: Any = None

    @property
    def is_leader(self) -> bool:
        return self.rank == 0

    def start(self) -> Group:
        import torch.distributed as dist

        if self.device.kind == "cuda":
            import torch

            torch.cuda.set_device(self.device.index)
        elif self.device.kind == "npu":
            self.device.torch_device()  # imports torch_npu, which registers HCCL
            import torch

            torch.npu.set_device(self.device.index)
        self.store = dist.TCPStore(
            self.rdv.addr,
            self.rdv.port,
            self.size,
            is_master=self.is_leader,
            timeout=timedelta(seconds=self.rdv.startup_timeout_s),
        )
        timeout = timedelta(seconds=self.rdv.collective_timeout_s)
        dist.init_process_group(
            self.device.dist_backend, store=self.store, rank=self.rank, world_size=self.size, timeout=timeout
        )
        # Control messages are Python objects: gloo on the CPU whatever the cards talk over.
        self.control = (
            dist.group.WORLD
            if self.device.dist_backend == "gloo"
            else dist.new_group(backend="gloo", timeout=timeout)
        )
        log.info(
            "rank %d/%d joined (%s, %s)",
            self.rank,
            self.size,
            self.device.dist_backend,
            self.layout.describe(),
        )
        return self

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    # --- the layout's sub-groups -------------------------------------------------------------------

    @property
    def mesh(self) -> Any:
        """(cfg, ring, ulysses) over the group's cards; rank = cfg * ring * ulysses-major order."""
        if self._mesh is None:
            from torch.distributed.device_mesh import init_device_mesh

            shape = (self.layout.cfg, self.layout.ring, self.layout.ulysses)
            self._mesh = init_device_mesh(self.device.kind, shape, mesh_dim_names=("cfg", "ring", "ulysses"))
        return self._mesh

    @property
    def cfg_position(self) -> int:
        return self.mesh["cfg"].get_local_rank() if self.layout.cfg > 1 else 0

    # --- waiting for everyone, without a collective timeout ----------------------------------------

    def signal(self, key: str) -> None:
        self.store.set(f"{key}/{self.rank}", "1")

    def wait_all(self, key: str, timeout_s: float | None = None) -> None:
        """Block until every rank has `signal`led `key` (loading: minutes), else GroupBrokenError."""
        keys = [f"{key}/{r}" for r in range(self.size)]
        try:
            self.store.wait(keys, timedelta(seconds=timeout_s or self.rdv.startup_timeout_s))
        except Exception as exc:  # noqa: BLE001 - DistStoreError or a closed store: the group is gone
            raise GroupBrokenError(f"waiting for every card to reach {key!r}: {exc}") from exc

    def wait_leader(self, key: str) -> None:
        try:
            self.store.wait([f"{key}/0"], timedelta(seconds=self.rdv.startup_timeout_s))
        except Exception as exc:  # noqa: BLE001
            raise GroupBrokenError(f"waiting for rank 0 to reach {key!r}: {exc}") from exc

    # --- the control channel ----------------------------------------------------------------------

    def _broadcast(self, obj: Any) -> Any:
        import torch.distributed as dist

        box = [obj]
        try:
            dist.broadcast_object_list(box, src=0, group=self.control)
        except Exception as exc:  # noqa: BLE001 - gloo raises RuntimeError on timeouts and closed peers
            raise GroupBrokenError(f"control broadcast failed: {exc}") from exc
        return box[0]

    def send(self, message: Warm | Job | Idle | Stop) -> None:
        assert self.is_leader
        self._broadcast(message)

    def receive(self) -> Warm | Job | Idle | Stop:
        assert not self.is_leader
        return self._broadcast(None)

    def step_verdict(self, reason: str | None = None) -> None:
        """Every rank calls this once per step: rank 0 says whether the job goes on; a stop raises
        `GroupStop` on the others (rank 0 raises its own exception)."""
        verdict = self._broadcast(reason if self.is_leader else None)
        if verdict is not None and not self.is_leader:
            raise GroupStop(verdict)

    def gather(self, mine: Any) -> list[Any]:
        """Every rank's `mine`, in rank order (each card's memory budget; how each ended a job)."""
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.size
        try:
            dist.all_gather_object(gathered, mine, group=self.control)
        except Exception as exc:  # noqa: BLE001
            raise GroupBrokenError(f"gathering from every card failed: {exc}") from exc
        return gathered

    def agree(self, outcome: str | None) -> None:
        """Every rank ended the task the same way (None: it ran to the end; else the error's type and
        text), or the group is broken: a card that failed alone left the others mid-collective."""
        outcomes = self.gather(outcome)
        if len(set(outcomes)) > 1:
            raise GroupBrokenError(
                "the cards ended the job differently: "
                + "; ".join(f"rank {r}: {o or 'finished'}" for r, o in enumerate(outcomes))
            )


def free_port(addr: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


__all__ = [
    "ENV_PREFIX",
    "EXIT_GROUP_BROKEN",
    "Group",
    "GroupBrokenError",
    "GroupStop",
    "Idle",
    "Job",
    "Rendezvous",
    "Stop",
    "Warm",
    "free_port",
    "strip_env",
]
