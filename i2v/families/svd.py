"""Stable Video Diffusion XT through diffusers' `StableVideoDiffusionPipeline`.

Image-only conditioning (no prompt). Its VAE (AutoencoderKLTemporalDecoder) has no tiling, only
`decode_chunk_size`; the UNet takes forward chunking and whole-model compile, no attention
backends (NPU flash attention instead), no cache hooks, no LoRA loader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from i2v.families.base import FamilyAdapter, Levers, RunContext

if TYPE_CHECKING:
    from i2v.catalogue.spec import ModelSpec
    from i2v.request import GenerationRequest


class StableVideoDiffusion(FamilyAdapter):
    family: ClassVar[str] = "svd"
    levers: ClassVar[Levers] = Levers(
        decode_chunk=True, vae_tiling=False, forward_chunking=True, compile="whole", attention="npu-flash"
    )
    denoiser_names: ClassVar[tuple[str, ...]] = ("unet",)

    def call_kwargs(
        self, spec: ModelSpec, request: GenerationRequest, image: Any, ctx: RunContext
    ) -> dict[str, Any]:
        # SVD conditions on fps-1 (diffusers' docstring: "fps ... after generation, minus one"); its
        # guidance is a per-frame linear ramp from min to max.
        return super().call_kwargs(spec, request, image, ctx) | dict(
            max_guidance_scale=max(request.guidance, 1.0), min_guidance_scale=1.0, fps=max(request.fps - 1, 1)
        )
