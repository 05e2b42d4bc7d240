"""Wan 2.1 I2V, Wan 2.2 TI2V-5B and Wan 2.2 I2V-A14B through diffusers' `WanImageToVideoPipeline`.

A14B has two experts (`transformer` for high noise, `transformer_2` for low noise, switched at the
pipeline's `boundary_ratio`); every lever applies to both. The VAE decodes frame by frame with a
feature cache (no `decode_chunk_size`) and tiles; CFG runs as two batch-1 forwards a step (guidance 1:
one). The denoisers take float8 layerwise casting. The fast presets of Wan 2.1 I2V and Wan 2.2 A14B run
LightX2V's 4-step distillation LoRAs (catalogue assets, in Wan's original key names, which diffusers'
Wan LoRA loader converts; A14B: one LoRA per expert, ``transformer_2`` through
``load_into_transformer_2``).

Several cards: the two CFG forwards run on two cards (the prompts swapped on the second,
`FamilyAdapter.cfg_pass_kwargs`), the sequence is split over the rest with diffusers' own
`WanTransformer3DModel._cp_plan` (the text and image tokens stay whole on every card: Wan 2.1's 257
image tokens would not divide).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from i2v.families.base import FamilyAdapter, Levers, RunContext

if TYPE_CHECKING:
    from i2v.catalogue.spec import ModelSpec
    from i2v.request import GenerationRequest


class Wan(FamilyAdapter):
    family: ClassVar[str] = "wan"
    levers: ClassVar[Levers] = Levers(
        lora=True,
        vae_tiling=True,
        cache_hooks=True,
        compile="regional",
        fp8_weights=True,
        cfg="passes",
        context_parallel=True,
        cfg_parallel=True,
    )
    denoiser_names: ClassVar[tuple[str, ...]] = ("transformer", "transformer_2")

    def call_kwargs(
        self, spec: ModelSpec, request: GenerationRequest, image: Any, ctx: RunContext
    ) -> dict[str, Any]:
        return super().call_kwargs(spec, request, image, ctx) | self.text_kwargs(request)
