"""LTX-2.3 22B (Lightricks' own ltx-pipelines backend) as catalogue components. Import-safe, torch-free.

The sizes are ltx-core 1.0.0's own, measured on the meta device (`i2v.families.ltx2_official.arch`,
where the 22B config and its sources are; tests/test_ltx23_arch.py re-measures them). One component
per model the pipelines build: the single-file checkpoint holds transformer, video VAE encoder and
decoder, audio VAE encoder and decoder, vocoder and the text projection (``embeddings_processor``);
the x2 upsampler and Gemma 3 12B are files of their own. ``cls`` names ltx-core's configurator for
each (documentation: these are never built from the catalogue - ``i2v.tiny.ltx23`` builds the tiny
set, the package's own loaders the real one).
"""

from __future__ import annotations

from i2v.catalogue.arch_types import Architecture, Component, ComponentKind
from i2v.families.ltx2_official.arch import PARAMS, Part

_CONFIGURATORS: dict[Part, tuple[str, ComponentKind]] = {
    "transformer": ("ltx_core.model.transformer.LTXModelConfigurator", "denoiser"),
    "video_encoder": ("ltx_core.model.video_vae.VideoEncoderConfigurator", "vae"),
    "video_decoder": ("ltx_core.model.video_vae.VideoDecoderConfigurator", "vae"),
    "audio_encoder": ("ltx_core.model.audio_vae.AudioEncoderConfigurator", "audio_vae"),
    "audio_decoder": ("ltx_core.model.audio_vae.AudioDecoderConfigurator", "audio_vae"),
    "vocoder": ("ltx_core.model.audio_vae.VocoderConfigurator", "vocoder"),
    "embeddings_processor": ("ltx_core.text_encoders.gemma.EmbeddingsProcessorConfigurator", "connector"),
    "upsampler": ("ltx_core.model.upsampler.LatentUpsamplerConfigurator", "upsampler"),
    "text_encoder": ("ltx_core.text_encoders.gemma.GemmaTextEncoderConfigurator", "text_encoder"),
}
PIPELINE_CLS = "ltx_pipelines.ti2vid_two_stages.TI2VidTwoStagesPipeline"  # the default mode's


def _architecture(full: bool) -> Architecture:
    return Architecture(
        pipeline_cls=PIPELINE_CLS,
        components=tuple(
            Component(part, cls, kind, params=PARAMS[part] if full else 0)
            for part, (cls, kind) in _CONFIGURATORS.items()
        ),
    )


FULL: dict[str, Architecture] = {"ltx-2.3": _architecture(full=True)}
# The tiny set's sizes do not matter to the planner (it runs on the CPU); i2v.tiny.ltx23 builds it.
TINY: dict[str, Architecture] = {"tiny-ltx-2.3": _architecture(full=False)}

__all__ = ["FULL", "PIPELINE_CLS", "TINY"]
