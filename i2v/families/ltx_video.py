"""LTX-Video 2B (Lightricks) through diffusers' `LTXImageToVideoPipeline`.

A transformer with repeated blocks (regional compile, attention backends, FirstBlockCache for the
fast preview), a tiling VAE that decodes the whole video at once (no `decode_chunk_size`), LoRAs
through `load_lora_weights`.

Several cards: CFG is one forward on the [uncond, cond] batch, so CFG parallel splits that batch; the
rest of the cards split the sequence (diffusers' plan, with two fixes for 0.42.1: the image-to-video
pipeline's per-token timestep is split with the tokens, and the text mask is shared by all heads,
`i2v.families.ltx_video_cp`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from i2v.families.base import FamilyAdapter, Levers, RunContext

if TYPE_CHECKING:
    from i2v.catalogue.spec import ModelSpec
    from i2v.request import GenerationRequest


class LtxVideo(FamilyAdapter):
    family: ClassVar[str] = "ltx-video"
    levers: ClassVar[Levers] = Levers(
        lora=True,
        vae_tiling=True,
        cache_hooks=True,
        compile="regional",
        fp8_weights=True,
        context_parallel=True,
        cfg_parallel=True,
    )

    def call_kwargs(
        self, spec: ModelSpec, request: GenerationRequest, image: Any, ctx: RunContext
    ) -> dict[str, Any]:
        return (
            super().call_kwargs(spec, request, image, ctx)
            | self.text_kwargs(request)
            | dict(frame_rate=request.fps)
        )

    def context_parallel_plan(self, model: Any) -> dict[str, Any]:
        from diffusers.models._modeling_parallel import ContextParallelInput

        plan = dict(model._cp_plan)
        # LTXImageToVideoPipeline passes a timestep per token, (batch, tokens): the conditioning frame's is
        # 0. The class's plan leaves it whole, so each block's modulation would not match its token shard.
        plan[""] = {
            **plan[""],
            "timestep": ContextParallelInput(split_dim=1, expected_dims=2, split_output=False),
        }
        return plan

    def prepare_context_parallel(self, model: Any) -> None:
        from i2v.families.ltx_video_cp import share_masks

        share_masks(model)
