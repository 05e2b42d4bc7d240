"""LTX-2.3 22B sizes (arch.PARAMS) re-measured with ltx-core 1.0.0's own configurators on the meta device."""

from __future__ import annotations

import pytest

from i2v.families.ltx2_official import arch

torch = pytest.importorskip("torch")


def _build(part: str):
    from ltx_core.model.audio_vae import (
        AudioDecoderConfigurator,
        AudioEncoderConfigurator,
        VocoderConfigurator,
    )
    from ltx_core.model.transformer import LTXModelConfigurator
    from ltx_core.model.upsampler import LatentUpsamplerConfigurator
    from ltx_core.model.video_vae import VideoDecoderConfigurator, VideoEncoderConfigurator
    from ltx_core.text_encoders.gemma import EmbeddingsProcessorConfigurator, GemmaTextEncoderConfigurator

    from i2v.families.ltx2_official import compat

    compat.install()  # the Gemma configurator needs transformers-5 key maps to build at all
    cfg = arch.CHECKPOINT_CONFIG
    builders = {
        "transformer": lambda: LTXModelConfigurator.from_config(cfg),
        "video_encoder": lambda: VideoEncoderConfigurator.from_config(cfg),
        "video_decoder": lambda: VideoDecoderConfigurator.from_config(cfg),
        "audio_encoder": lambda: AudioEncoderConfigurator.from_config(cfg),
        "audio_decoder": lambda: AudioDecoderConfigurator.from_config(cfg),
        "vocoder": lambda: VocoderConfigurator.from_config(cfg),
        "embeddings_processor": lambda: EmbeddingsProcessorConfigurator.from_config(cfg),
        "upsampler": lambda: LatentUpsamplerConfigurator.from_config(arch.UPSAMPLER_CONFIG),
        "text_encoder": lambda: GemmaTextEncoderConfigurator.from_config({}),
    }
    with torch.device("meta"):
        return builders[part]()


@pytest.mark.parametrize("part", list(arch.PARAMS))
def test_params_match_the_package_on_meta(part):
    model = _build(part)
    assert sum(p.numel() for p in model.parameters()) == arch.PARAMS[part]


def test_config_selects_the_22b_code_paths():
    from ltx_core.model.audio_vae import VocoderWithBWE
    from ltx_core.text_encoders.gemma.feature_extractor import FeatureExtractorV2

    assert isinstance(_build("vocoder"), VocoderWithBWE)  # "bwe" in the vocoder config
    assert isinstance(_build("embeddings_processor").feature_extractor, FeatureExtractorV2)
    assert not hasattr(_build("transformer"), "caption_projection")  # projection before the connector


def test_checkpoint_size_is_the_published_44_to_46_gb():
    assert 44e9 <= arch.checkpoint_bytes() <= 47e9
