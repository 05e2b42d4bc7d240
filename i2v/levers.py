"""Two of the plan's levers as functions over a denoiser, shared by the runtime (`i2v.apply`) and the
fake-tensor measurement (`i2v.memory`), so what is measured is what runs.

`chunk_feed_forward(denoiser, chunks)`: diffusers' feed-forward chunking (`set_chunk_feed_forward` on
every transformer block) with a chunk size chosen per call from the block's own input, so that each
feed-forward runs in at most ``chunks`` pieces. diffusers' `enable_forward_chunking(chunk_size, dim)`
takes one chunk size for all blocks, and the size must divide every block's token count: on a UNet
the only sizes that do are tiny (the gcd of 9216, 2304, 576, 144 tokens and 24 frames at 768x768x24
is 24), and chunk size 1 dispatches 1.78 M ops per forward instead of 8 thousand (ARCHITECTURE.md).

`cast_weights_fp8(denoiser, compute_dtype)`: diffusers' layerwise casting, weights stored in float8
(e4m3) and upcast one layer at a time for the matmuls. CUDA only: the NPU has no float8 storage in
torch_npu 2.8-2.10 (the planner never proposes it there).

Import-safe: torch is imported when a function is called.
"""

from __future__ import annotations

from typing import Any

# diffusers' blocks whose feed-forward `set_chunk_feed_forward` chunks, and where the chunked size is
# read from: the input tensor's dim 1 (BasicTransformerBlock: tokens of a spatial transformer,
# frames of a temporal one), or the `num_frames` argument (TemporalBasicTransformerBlock reshapes to
# (batch * tokens, frames, channels) and always chunks dim 1).
_TOKEN_BLOCKS = ("BasicTransformerBlock",)
# The runtime's chunk count (measured per forward on I2VGen-XL 768x768x24: i2v.memory.fit, the report of
# issue 11): most of chunk size 1's saving, a few hundred more ops instead of 1.77 million.
FORWARD_CHUNKS = 4
_FRAME_BLOCKS = ("TemporalBasicTransformerBlock",)


def chunk_size_for(size: int, chunks: int) -> int:
    """The smallest divisor of ``size`` that splits it into at most ``chunks`` pieces."""
    if chunks <= 1 or size <= 1:
        return max(size, 1)
    low = -(-size // chunks)
    for candidate in range(low, size + 1):
        if size % candidate == 0:
            return candidate
    return size


def chunk_feed_forward(denoiser: Any, chunks: int) -> list[Any]:
    """Chunk every transformer block's feed-forward into at most ``chunks`` pieces; returns the hook
    handles (empty: the denoiser has no chunkable blocks). `unchunk` undoes it."""
    handles = []
    for module in denoiser.modules():
        kind = type(module).__name__
        if not hasattr(module, "set_chunk_feed_forward") or kind not in _TOKEN_BLOCKS + _FRAME_BLOCKS:
            continue
        hook = _chunk_hook(chunks, kind in _FRAME_BLOCKS)
        handles.append((module, module.register_forward_pre_hook(hook, with_kwargs=True)))
    return handles


def unchunk(handles: list[Any]) -> None:
    for module, handle in handles:
        handle.remove()
        module.set_chunk_feed_forward(None, dim=0)


def _chunk_hook(chunks: int, frames_argument: bool) -> Any:
    def hook(module: Any, args: tuple, kwargs: dict) -> None:
        if frames_argument:
            size = int(args[1] if len(args) > 1 else kwargs["num_frames"])
        else:
            hidden = args[0] if args else kwargs["hidden_states"]
            size = int(hidden.shape[1])
        module.set_chunk_feed_forward(chunk_size_for(size, chunks), dim=1)

    return hook


def cast_weights_fp8(denoiser: Any, compute_dtype: Any) -> None:
    """Store the denoiser's weights in float8 e4m3, computing in ``compute_dtype`` (bf16/fp16)."""
    import torch

    denoiser.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype)


__all__ = ["FORWARD_CHUNKS", "cast_weights_fp8", "chunk_feed_forward", "chunk_size_for", "unchunk"]
