"""I2VGen-XL (Alibaba) through diffusers' `I2VGenXLPipeline` (kept under pipelines/deprecated; works).

Its UNet takes forward chunking and whole-model torch.compile; its attention processors ignore
diffusers' attention backends (on the NPU it gets `enable_npu_flash_attention()`), and it has no
`blocks` list, so no cache hooks. The VAE (AutoencoderKL) tiles; `decode_chunk_size` is a call
argument. Its `__call__` has no `callback_on_step_end`: progress counts `scheduler.step` calls. No FP8
weights: the 1.4 B-parameter UNet is small next to its activations, which forward chunking cuts.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from i2v.families.base import FamilyAdapter, Levers, RunContext

if TYPE_CHECKING:
    from i2v.catalogue.spec import ModelSpec
    from i2v.request import GenerationRequest


class I2VGenXL(FamilyAdapter):
    family: ClassVar[str] = "i2vgen-xl"
    levers: ClassVar[Levers] = Levers(
        decode_chunk=True, vae_tiling=True, forward_chunking=True, compile="whole", attention="npu-flash"
    )
    denoiser_names: ClassVar[tuple[str, ...]] = ("unet",)

    def prepare(self, pipe: Any) -> Any:
        # transformers 5 dropped CLIPTextModel.text_model; I2VGen-XL's encode_prompt still reads
        # `text_encoder.text_model.final_layer_norm` (clip_skip defaults to 1). An alias in the
        # instance __dict__: no submodule, no state-dict keys, nothing saved.
        encoder = getattr(pipe, "text_encoder", None)
        if encoder is not None and not hasattr(encoder, "text_model"):
            object.__setattr__(encoder, "text_model", encoder)
        return super().prepare(pipe)

    def call_kwargs(
        self, spec: ModelSpec, request: GenerationRequest, image: Any, ctx: RunContext
    ) -> dict[str, Any]:
        return (
            super().call_kwargs(spec, request, image, ctx)
            | self.text_kwargs(request)
            | dict(target_fps=request.fps)
        )

    @contextmanager
    def progress(self, pipe: Any, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        if ctx.tracker is None:
            yield
            return
        restore = ctx.tracker.wrap_scheduler(pipe.scheduler)
        try:
            yield
        finally:
            restore()
