"""LTX-Video 2B (Lightricks) through diffusers' `LTXImageToVideoPipeline`.

A transformer with repeated blocks (regional compile, attention backends, FirstBlockCache for the
fast preview), a tiling VAE that decodes the whole video at once (no `decode_chunk_size`), LoRAs
through `load_lora_weights`.
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
        lora=True, vae_tiling=True, cache_hooks=True, compile="regional", fp8_weights=True
    )

    def call_kwargs(
        self, spec: ModelSpec, request: GenerationRequest, image: Any, ctx: RunContext
    ) -> dict[str, Any]:
        return super().call_kwargs(spec, request, image, ctx) | dict(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            guidance_scale=request.guidance,
            frame_rate=request.fps,
        )
