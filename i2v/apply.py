"""`apply(pipe, plan, device, adapter)`: put a `Plan` into effect with diffusers' own mechanisms.

One function, the knobs are data (the Plan); which denoisers a lever touches, and the family's device
policy and attention hook, come from the family adapter (`i2v.families`). The planner only proposes
levers the adapter declares, and each is still guarded by what the module really has.

Order: the family's device policy and the plan's attention backend on the modules first, then FP8
weight storage (layerwise casting must see the modules before offload hooks wrap them), placement
and offload hooks (CUDA streams for group offload where the device has them), VAE and forward
options, cache hooks, compile.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from i2v.levers import FORWARD_CHUNKS, cast_weights_fp8, chunk_feed_forward
from i2v.planner import Plan

if TYPE_CHECKING:
    from i2v.families.base import FamilyAdapter

log = logging.getLogger("i2v.apply")


def apply_memory_strategy(pipe: Any, plan: Plan, device: Any) -> None:
    target = device.torch_device()
    if device.kind == "cpu" or plan.strategy == "resident":
        pipe.to(target)
    elif plan.strategy == "model-offload":
        pipe.enable_model_cpu_offload(device=target)
    elif plan.strategy == "group-offload":
        import torch

        # diffusers' `use_stream` is CUDA-only: prefetching the next block on a side stream.
        pipe.enable_group_offload(
            onload_device=target,
            offload_device=torch.device("cpu"),
            offload_type="block_level",
            num_blocks_per_group=1,
            use_stream=bool(device.supports_streams),
        )
    elif plan.strategy == "sequential-offload":
        pipe.enable_sequential_cpu_offload(device=target)
    else:  # pragma: no cover - the planner only emits the four above
        raise ValueError(f"unknown strategy {plan.strategy!r}")


def apply_vae(pipe: Any, plan: Plan) -> None:
    vae = getattr(pipe, "vae", None)
    if plan.vae_tiling and vae is not None and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()


def apply_forward_chunking(pipe: Any, plan: Plan, denoisers: list[Any]) -> None:
    if not plan.forward_chunking:
        return
    for module in denoisers:
        chunk_feed_forward(module, FORWARD_CHUNKS)


def apply_fp8(pipe: Any, plan: Plan, denoisers: list[Any]) -> None:
    """Float8 storage for the denoisers' weights (the planner proposes it on CUDA only)."""
    if not plan.fp8_weights:
        return
    from i2v.devices.base import to_torch_dtype

    for module in denoisers:
        cast_weights_fp8(module, to_torch_dtype(plan.dtype))


def cache_config(spec: str) -> Any:
    """ "first-block-cache:0.05" -> diffusers' FirstBlockCacheConfig(threshold=0.05)."""
    from diffusers.hooks import FirstBlockCacheConfig

    name, _, value = spec.partition(":")
    if name == "first-block-cache":
        return FirstBlockCacheConfig(threshold=float(value or 0.05))
    raise ValueError(f"cache {spec!r} is not one of first-block-cache:<threshold>")


def apply_cache(pipe: Any, plan: Plan, denoisers: list[Any]) -> None:
    if not plan.cache:
        return
    for module in denoisers:
        if hasattr(module, "enable_cache"):
            module.enable_cache(cache_config(plan.cache))


def apply_compile(pipe: Any, plan: Plan, denoiser_names: tuple[str, ...]) -> None:
    if plan.compile == "none":
        return
    import torch

    for name in denoiser_names:
        module = getattr(pipe, name, None)
        if module is None:
            continue
        if plan.compile == "regional" and hasattr(module, "compile_repeated_blocks"):
            module.compile_repeated_blocks(fullgraph=True)
        else:
            setattr(pipe, name, torch.compile(module, mode="max-autotune-no-cudagraphs"))


def apply(pipe: Any, plan: Plan, device: Any, adapter: FamilyAdapter) -> Any:
    """Apply the plan in the order of the module docstring; returns the pipeline."""
    adapter.configure_for_device(pipe, device)
    adapter.apply_attention(pipe, device, plan.attention)
    denoisers = adapter.denoisers(pipe)
    apply_fp8(pipe, plan, denoisers)
    apply_memory_strategy(pipe, plan, device)
    apply_vae(pipe, plan)
    apply_forward_chunking(pipe, plan, denoisers)
    apply_cache(pipe, plan, denoisers)
    apply_compile(pipe, plan, adapter.denoiser_names)
    log.info("plan applied: %s", plan.summary())
    return pipe
