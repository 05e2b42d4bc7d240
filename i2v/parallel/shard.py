"""Split one job's denoiser work over a card group: diffusers' context parallelism, CFG parallel.

`parallelize(pipe, adapter, group)` is called once per loaded pipeline, after the plan is applied.

Context parallel (diffusers 0.42.1 `ModelMixin.enable_parallelism` with a `ContextParallelConfig`):
the family adapter may hand its own plan (`context_parallel_plan`) and fix the attention processors
first (`prepare_context_parallel`); the config gets the group's (ring, ulysses) sub-mesh. On the CPU,
diffusers' `_resolve_parallel_config` computes `rank % torch.accelerator.device_count()`, which is
0 there (ZeroDivisionError), so for CPU groups this model's resolver is replaced by one that does the
same with the CPU device; everything after it (hooks, the templated Ulysses attention) is diffusers'.

CFG parallel: `CfgParallel` wraps each denoiser's forward (outside diffusers' hooks, so it sees whole
inputs and outputs) and exchanges results over the group's cfg dimension:

- "separate" (Wan: two batch-1 forwards a step, conditional first): the card at cfg position 1 runs
  the pipeline with the prompts swapped (`FamilyAdapter.cfg_pass_kwargs`), so on every card the
  first forward of a step computes "its" pass; the results are all-gathered and each card gets both
  back in the pipeline's order: the conditional for the first call, the unconditional for the second,
  which then does no work.
- "batched" (LTX-Video: one forward on the [uncond, cond] batch): each card of the pair takes its
  half of every batch-sized input and the halves are all-gathered back into the batch.
"""

from __future__ import annotations

import logging
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from i2v.families.base import FamilyAdapter
    from i2v.parallel.group import Group

log = logging.getLogger("i2v.parallel")


def parallelize(pipe: Any, adapter: FamilyAdapter, group: Group) -> tuple[list[CfgParallel], ShardProbe]:
    """Context parallel on every denoiser, then CFG parallel around each; returns the CFG wrappers
    and a probe of what one card's denoiser really holds."""
    layout = group.layout
    denoisers = adapter.denoisers(pipe)
    if layout.context > 1:
        for model in denoisers:
            enable_context_parallel(model, adapter, group)
    wrappers = []
    if layout.cfg > 1:
        cfg_group = group.mesh["cfg"].get_group()
        for model in denoisers:
            wrappers.append(CfgParallel(model, cfg_group, group.cfg_position, adapter.cfg_split))
    log.info("rank %d: %s on %d denoiser(s)", group.rank, layout.describe(), len(denoisers))
    return wrappers, ShardProbe(denoisers)


class ShardProbe:
    """The largest hidden-state shard one card's denoisers computed on: the input of `proj_out`, where
    diffusers' context-parallel plans gather the sequence back (Wan, LTX-Video, LTX-2)."""

    def __init__(self, denoisers: list[Any]):
        self.tokens = 0
        self.bytes = 0
        for model in denoisers:
            head = getattr(model, "proj_out", None)
            if head is not None:
                head.register_forward_pre_hook(self._seen)

    def _seen(self, _module: Any, args: tuple) -> None:
        hidden = args[0]
        if hidden.nbytes > self.bytes:
            self.bytes, self.tokens = int(hidden.nbytes), int(hidden.shape[0] * hidden.shape[1])

    def reset(self) -> None:
        self.tokens = self.bytes = 0


def enable_context_parallel(model: Any, adapter: FamilyAdapter, group: Group) -> None:
    from diffusers import ContextParallelConfig

    layout = group.layout
    adapter.prepare_context_parallel(model)
    if layout.ring > 1:
        backend = group.device.ring_attention_backend
        if backend is None:  # choose_layout only proposes ring where the device has a backend for it
            raise RuntimeError(
                f"ring attention needs an attention backend with log-sum-exp on {group.device.kind}"
            )
        model.set_attention_backend(backend)
    config = ContextParallelConfig(
        ring_degree=layout.ring,
        ulysses_degree=layout.ulysses,
        ulysses_anything=layout.ulysses_anything,
        mesh=group.mesh["ring", "ulysses"],
    )
    if group.device.kind == "cpu":
        model._resolve_parallel_config = types.MethodType(_resolve_on_cpu, model)
    model.enable_parallelism(config=config, cp_plan=adapter.context_parallel_plan(model))


def _resolve_on_cpu(model: Any, config: Any) -> Any:
    """diffusers' `_resolve_parallel_config` for a CPU process group (see the module docstring)."""
    import torch
    import torch.distributed as dist
    from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig

    if isinstance(config, ContextParallelConfig):
        config = ParallelConfig(context_parallel_config=config)
    config.setup(
        dist.get_rank(), dist.get_world_size(), torch.device("cpu"), mesh=config.context_parallel_config.mesh
    )
    model._parallel_config = config
    return config


def _first_tensor(out: Any) -> tuple[Any, Any]:
    """The denoiser's prediction in `out` (a tensor, a `(tensor, ...)` tuple, or an output object
    with `.sample`) and a function that puts another tensor in its place."""
    import torch

    if isinstance(out, torch.Tensor):
        return out, lambda t: t
    if isinstance(out, tuple):
        return out[0], lambda t: (t, *out[1:])
    if hasattr(out, "sample"):
        return out.sample, lambda t: type(out)(sample=t)
    raise TypeError(f"CFG parallel: cannot find the prediction in a {type(out).__name__}")


class CfgParallel:
    """The two CFG passes of a step on the two cards of a CFG pair (see the module docstring)."""

    def __init__(self, module: Any, group: Any, position: int, split: str):
        if split not in ("separate", "batched"):
            raise ValueError(f"CFG parallel needs cfg_split 'separate' or 'batched', not {split!r}")
        self.group, self.position, self.split = group, position, split
        self.active = True  # "separate": the request runs guided passes (set before every run)
        self.calls = 0
        self._gathered: list[Any] | None = None
        self._rebuild: Any = None
        self._inner = module.forward  # diffusers' hooks (context parallel) stay inside
        module.forward = self.forward

    def begin(self, guided: bool) -> None:
        self.active, self.calls, self._gathered = guided, 0, None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.split == "batched":
            return self._batched(*args, **kwargs)
        if not self.active:
            return self._inner(*args, **kwargs)
        first = self.calls % 2 == 0
        self.calls += 1
        if first:
            out = self._inner(*args, **kwargs)
            mine, self._rebuild = _first_tensor(out)
            self._gathered = self._all_gather(mine)
            return self._rebuild(self._gathered[0])
        gathered, self._gathered = self._gathered, None
        if gathered is None:
            raise RuntimeError("CFG parallel: a second pass came without a first")
        return self._rebuild(gathered[1])

    def _batched(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        hidden = kwargs.get("hidden_states", args[0] if args else None)
        batch = hidden.shape[0]
        if batch % 2:  # no guidance this run: one sample, nothing to split
            return self._inner(*args, **kwargs)
        half = batch // 2
        lo = self.position * half

        def mine(x: Any) -> Any:
            return x[lo : lo + half] if isinstance(x, torch.Tensor) and x.ndim and x.shape[0] == batch else x

        out = self._inner(*[mine(a) for a in args], **{k: mine(v) for k, v in kwargs.items()})
        part, rebuild = _first_tensor(out)
        return rebuild(torch.cat(self._all_gather(part), dim=0))

    def _all_gather(self, tensor: Any) -> list[Any]:
        import torch
        import torch.distributed as dist

        tensor = tensor.contiguous()
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(self.group))]
        dist.all_gather(parts, tensor, group=self.group)
        return parts


def weights_bytes(pipe: Any) -> int:
    """Bytes of every parameter and buffer the pipeline's modules hold (each card holds all of them)."""
    seen: set[int] = set()
    total = 0
    for component in getattr(pipe, "components", {}).values():
        if not hasattr(component, "parameters"):
            continue
        for tensor in (*component.parameters(), *component.buffers()):
            if id(tensor) not in seen:
                seen.add(id(tensor))
                total += tensor.nbytes
    return total


__all__ = ["CfgParallel", "ShardProbe", "enable_context_parallel", "parallelize", "weights_bytes"]
