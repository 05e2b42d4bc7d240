"""LTX-Video's attention under context parallelism (imported by `LtxVideo.prepare_context_parallel` only).

diffusers 0.42.1's `LTXVideoAttnProcessor` expands the text mask to one copy per head,
`(batch, heads, 1, text)`, before the attention dispatch. Ulysses attention then computes on
`heads / cards` heads per card, and SDPA cannot broadcast the full-head mask against them ("output
with shape [2, 1, 8, 128] doesn't match the broadcast shape [2, 2, 8, 128]"). The mask is the same
for every head, so this processor passes it once, `(batch, 1, 1, text)`, which broadcasts over any
number of heads; the templated Ulysses attention all-gathers its text dimension like the keys'.
Everything else is the same computation as diffusers' processor.
"""

from __future__ import annotations

from typing import Any

from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_ltx import LTXVideoAttnProcessor, apply_rotary_emb


class SharedMaskLTXProcessor(LTXVideoAttnProcessor):
    """`LTXVideoAttnProcessor` with one attention mask for all heads."""

    def __call__(
        self,
        attn: Any,
        hidden_states: Any,
        encoder_hidden_states: Any = None,
        attention_mask: Any = None,
        image_rotary_emb: Any = None,
    ) -> Any:
        if attention_mask is not None:
            # The transformer hands (batch, 1, text) additive biases; one per sample, shared by the heads.
            attention_mask = attention_mask.reshape(hidden_states.shape[0], 1, 1, attention_mask.shape[-1])
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        query = attn.norm_q(attn.to_q(hidden_states))
        key = attn.norm_k(attn.to_k(context))
        value = attn.to_v(context)
        if image_rotary_emb is not None:
            query = apply_rotary_emb(query, image_rotary_emb)
            key = apply_rotary_emb(key, image_rotary_emb)
        query, key, value = (x.unflatten(2, (attn.heads, -1)) for x in (query, key, value))
        out = dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=0.0,
            is_causal=False,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )
        out = out.flatten(2, 3).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](out))


def share_masks(model: Any) -> int:
    """Give every attention module of an LTX-Video transformer the shared-mask processor (keeping the
    attention backend already set on it); returns how many were replaced."""
    replaced = 0
    for module in model.modules():
        processor = getattr(module, "processor", None)
        if type(processor) is LTXVideoAttnProcessor:
            shared = SharedMaskLTXProcessor()
            shared._attention_backend = processor._attention_backend
            module.set_processor(shared)
            replaced += 1
    return replaced
