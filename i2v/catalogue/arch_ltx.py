"""LTX-Video 2B (Lightricks) as plain data: the full-size architecture and a tiny one.

Import-safe and torch-free. FULL mirrors the diffusers-format release on the hub, ``Lightricks/LTX-Video``
(main branch: model_index.json names ``LTXPipeline``; the weights are LTX-Video **v0.9.0** 2B,
``ltx-video-2b-v0.9.safetensors`` converted by diffusers' ``scripts/convert_ltx_to_diffusers.py
--version 0.9.0``). Image-to-video runs the same components through ``LTXImageToVideoPipeline``
(``LTXImageToVideoPipeline.from_pretrained("Lightricks/LTX-Video")`` in diffusers' docs).
``LTXConditionPipeline`` belongs to v0.9.5+, whose VAE differs (timestep-conditioned decoder,
``LTXVideo095DownBlock3D``), so it is not the architecture recorded here.

Configs are the hub's ``config.json`` values (keys left out take the class defaults, which is what
the hub files do too); ``params`` were measured by building each config on ``torch.device("meta")``
with diffusers 0.42.1 / transformers 5.23 (tests/test_architectures_ltx.py re-checks them).
"""

from __future__ import annotations

from i2v.catalogue.arch_types import Architecture, Component

# FlowMatchEulerDiscreteScheduler as saved in Lightricks/LTX-Video/scheduler/scheduler_config.json.
SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.95,
    "max_shift": 2.05,
    "base_image_seq_len": 1024,
    "max_image_seq_len": 4096,
    "shift_terminal": 0.1,
    "invert_sigmas": False,
}

# LTX-Video's tokenizer keeps 128 tokens (TOKENIZER_MAX_LENGTH in the conversion script).
TOKENIZER_MAX_LENGTH = 128

_FULL_TRANSFORMER = {
    "in_channels": 128,
    "out_channels": 128,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 32,
    "attention_head_dim": 64,
    "cross_attention_dim": 2048,
    "num_layers": 28,
    "activation_fn": "gelu-approximate",
    "qk_norm": "rms_norm_across_heads",
    "norm_elementwise_affine": False,
    "norm_eps": 1e-6,
    "caption_channels": 4096,
    "attention_bias": True,
    "attention_out_bias": True,
}

# v0.9.0 VAE: only the encoder side is spelled out in the hub file; the decoder takes the class
# defaults, which are the mirror image (128, 256, 512, 512) / (4, 3, 3, 3, 4), no timestep conditioning.
_FULL_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": (4, 3, 3, 3, 4),
    "spatio_temporal_scaling": (True, True, True, False),
    "patch_size": 4,
    "patch_size_t": 1,
    "resnet_norm_eps": 1e-6,
    "scaling_factor": 1.0,
    "encoder_causal": True,
    "decoder_causal": False,
}

# google/t5-v1_1-xxl encoder (Lightricks/LTX-Video/text_encoder/config.json).
_FULL_T5 = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_decoder_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "dropout_rate": 0.1,
    "layer_norm_epsilon": 1e-6,
    "feed_forward_proj": "gated-gelu",
    "dense_act_fn": "gelu_new",
    "is_gated_act": True,
    "tie_word_embeddings": False,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}

FULL: dict[str, Architecture] = {
    "ltx-video": Architecture(
        pipeline_cls="diffusers.LTXImageToVideoPipeline",
        components=(
            Component(
                "transformer",
                "diffusers.LTXVideoTransformer3DModel",
                "denoiser",
                _FULL_TRANSFORMER,
                1_923_385_472,
            ),
            Component("vae", "diffusers.AutoencoderKLLTXVideo", "vae", _FULL_VAE, 419_193_649),
            Component("text_encoder", "transformers.T5EncoderModel", "text_encoder", _FULL_T5, 4_762_310_656),
            # sentencepiece T5 v1.1 vocabulary: 32,000 pieces + 100 sentinels = 32,100 ids.
            Component(
                "tokenizer",
                "transformers.T5TokenizerFast",
                "tokenizer",
                {"vocab_size": 32100, "model_max_length": TOKENIZER_MAX_LENGTH},
            ),
            Component(
                "scheduler", "diffusers.FlowMatchEulerDiscreteScheduler", "scheduler", SCHEDULER_CONFIG
            ),
        ),
    ),
}

# Tiny: the same classes and the same strides (VAE 32x spatial, 8x temporal, patch 4; transformer
# patch 1), so 8k+1 frames and multiples of 32 hold as for the real model; channels and depth cut.
TINY_T5_VOCAB = 320

_TINY_TRANSFORMER = {
    **_FULL_TRANSFORMER,
    "in_channels": 8,
    "out_channels": 8,
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "cross_attention_dim": 32,
    "num_layers": 2,
    "caption_channels": 32,
}

_TINY_VAE = {
    **_FULL_VAE,
    "latent_channels": 8,
    "block_out_channels": (8, 16, 32, 32),
    "layers_per_block": (1, 1, 1, 1, 1),
    "decoder_block_out_channels": (8, 16, 32, 32),
    "decoder_layers_per_block": (1, 1, 1, 1, 1),
    "decoder_spatio_temporal_scaling": (True, True, True, False),
    "decoder_inject_noise": (False, False, False, False, False),
    "upsample_residual": (False, False, False, False),
    "upsample_factor": (1, 1, 1, 1),
    "timestep_conditioning": False,
}

_TINY_T5 = {
    **_FULL_T5,
    "vocab_size": TINY_T5_VOCAB,
    "d_model": 32,
    "d_kv": 16,
    "d_ff": 64,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 2,
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 32,
    "dropout_rate": 0.0,
}

TINY: dict[str, Architecture] = {
    "tiny-ltx-video": Architecture(
        pipeline_cls="diffusers.LTXImageToVideoPipeline",
        components=(
            Component("transformer", "diffusers.LTXVideoTransformer3DModel", "denoiser", _TINY_TRANSFORMER),
            Component("vae", "diffusers.AutoencoderKLLTXVideo", "vae", _TINY_VAE),
            Component("text_encoder", "transformers.T5EncoderModel", "text_encoder", _TINY_T5),
            Component(
                "tokenizer",
                "transformers.T5TokenizerFast",
                "tokenizer",
                {"vocab_size": TINY_T5_VOCAB, "model_max_length": TOKENIZER_MAX_LENGTH},
            ),
            Component(
                "scheduler", "diffusers.FlowMatchEulerDiscreteScheduler", "scheduler", SCHEDULER_CONFIG
            ),
        ),
    ),
}

__all__ = ["FULL", "TINY", "SCHEDULER_CONFIG", "TOKENIZER_MAX_LENGTH"]
