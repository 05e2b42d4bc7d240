"""Wan 2.1 / 2.2 image-to-video models as data: full-size configs and tiny twins. Torch-free.

Sources: diffusers' scripts/convert_wan_to_diffusers.py, which wrote the ``Wan-AI/*-Diffusers``
repos: transformer configs per model type, the Wan 2.2 VAE config (``vae22_diffusers_config``),
the Wan 2.1 VAE (``AutoencoderKLWan()`` class defaults), google/umt5-xxl as text encoder, the
OpenCLIP ViT-H/14 vision tower for Wan 2.1 I2V, and UniPC with ``flow_shift`` 3.0 (5.0 for TI2V).
The shift an operator should sample with (5.0 at 720p, Wan 2.2's ``sample_shift`` 5.0) is a
preset, not architecture; the scheduler config is what the repos ship.

`PIPELINE_CONFIG` holds the pipelines' own registered options (not components), keyed by model id
and tiny id: Wan 2.2 A14B switches from ``transformer`` (high noise) to ``transformer_2`` (low noise)
below ``boundary_ratio * 1000``; TI2V-5B denoises the first frame's latents in place
(``expand_timesteps``). The TI2V-5B repo's model_index names ``WanPipeline``; image-to-video runs
``WanImageToVideoPipeline`` on the same components (image encoder none), as diffusers documents.
"""

from __future__ import annotations

from typing import Any

from i2v.catalogue.arch_i2vgen import CLIP_IMAGE_PROCESSOR, CLIP_VIT_H14_VISION
from i2v.catalogue.arch_types import Architecture, Component

# google/umt5-xxl encoder (text_encoder/config.json of the Wan repos).
UMT5_XXL = {
    "vocab_size": 256384,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_decoder_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "dropout_rate": 0.1,
    "layer_norm_epsilon": 1e-06,
    "initializer_factor": 1.0,
    "feed_forward_proj": "gated-gelu",
    "is_encoder_decoder": True,
    "scalable_attention": True,
    "tie_word_embeddings": False,
    "use_cache": True,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
    "classifier_dropout": 0.0,
}

# Builder kwargs for i2v.tiny.tokenizers.t5_tokenizer. The hub tokenizer is google/umt5-xxl's
# sentencepiece model (T5TokenizerFast, an alias of T5Tokenizer in transformers 5); the local one
# spans the encoder's whole embedding table, so every id it emits is valid for the encoder.
UMT5_TOKENIZER = {"vocab_size": 256384, "model_max_length": 512}

WAN21_VAE = {
    "base_dim": 96,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    "dropout": 0.0,
    "latents_mean": [
        -0.7571,
        -0.7089,
        -0.9113,
        0.1075,
        -0.1745,
        0.9653,
        -0.1517,
        1.5508,
        0.4134,
        -0.0715,
        0.5517,
        -0.3632,
        -0.1922,
        -0.9497,
        0.2503,
        -0.2921,
    ],
    "latents_std": [
        2.8184,
        1.4541,
        2.3275,
        2.6558,
        1.2196,
        1.7708,
        2.6052,
        2.0743,
        3.2687,
        2.1526,
        2.8652,
        1.5579,
        1.6382,
        1.1253,
        2.8251,
        1.916,
    ],
}

# 16x spatial compression: a 2x2 pixel patchify (12 = 3 x 2 x 2 channels) in front of an 8x VAE.
WAN22_VAE = {
    "base_dim": 160,
    "decoder_base_dim": 256,
    "z_dim": 48,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    "dropout": 0.0,
    "is_residual": True,
    "in_channels": 12,
    "out_channels": 12,
    "patch_size": 2,
    "scale_factor_temporal": 4,
    "scale_factor_spatial": 16,
    # The hub file also has "clip_output": false, which diffusers 0.42 no longer accepts (it warns).
    "latents_mean": [
        -0.2289,
        -0.0052,
        -0.1323,
        -0.2339,
        -0.2799,
        0.0174,
        0.1838,
        0.1557,
        -0.1382,
        0.0542,
        0.2813,
        0.0891,
        0.1570,
        -0.0098,
        0.0375,
        -0.1825,
        -0.2246,
        -0.1207,
        -0.0698,
        0.5109,
        0.2665,
        -0.2108,
        -0.2158,
        0.2502,
        -0.2055,
        -0.0322,
        0.1109,
        0.1567,
        -0.0729,
        0.0899,
        -0.2799,
        -0.1230,
        -0.0313,
        -0.1649,
        0.0117,
        0.0723,
        -0.2839,
        -0.2083,
        -0.0520,
        0.3748,
        0.0152,
        0.1957,
        0.1433,
        -0.2944,
        0.3573,
        -0.0548,
        -0.1681,
        -0.0667,
    ],
    "latents_std": [
        0.4765,
        1.0364,
        0.4514,
        1.1677,
        0.5313,
        0.4990,
        0.4818,
        0.5013,
        0.8158,
        1.0344,
        0.5894,
        1.0901,
        0.6885,
        0.6165,
        0.8454,
        0.4978,
        0.5759,
        0.3523,
        0.7135,
        0.6804,
        0.5833,
        1.4146,
        0.8986,
        0.5659,
        0.7069,
        0.5338,
        0.4889,
        0.4917,
        0.4069,
        0.4999,
        0.6866,
        0.4093,
        0.5709,
        0.6065,
        0.6415,
        0.4944,
        0.5726,
        1.2042,
        0.5458,
        1.6887,
        0.3971,
        1.0600,
        0.3943,
        0.5537,
        0.5444,
        0.4089,
        0.7468,
        0.7744,
    ],
}

# 14B DiT shared by Wan 2.1 I2V and both Wan 2.2 A14B experts: 40 layers, 40 heads x 128 = 5120.
# in_channels 36 = 16 noisy latents + 4 frame mask + 16 image-condition latents.
_WAN_14B = {
    "patch_size": [1, 2, 2],
    "num_attention_heads": 40,
    "attention_head_dim": 128,
    "in_channels": 36,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 13824,
    "num_layers": 40,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-06,
    "image_dim": None,
    "added_kv_proj_dim": None,
    "rope_max_seq_len": 1024,
    "pos_embed_seq_len": None,
}
# Wan 2.1 I2V adds CLIP image tokens (ViT-H penultimate layer, 1280 wide) with their own K/V.
WAN21_I2V_14B = {**_WAN_14B, "image_dim": 1280, "added_kv_proj_dim": 5120}
WAN22_I2V_A14B = dict(_WAN_14B)
# TI2V-5B: 30 layers, 24 heads x 128 = 3072; 48 latent channels in and out (image goes in-place).
WAN22_TI2V_5B = {
    **_WAN_14B,
    "num_attention_heads": 24,
    "in_channels": 48,
    "out_channels": 48,
    "ffn_dim": 14336,
    "num_layers": 30,
}

UNIPC_FLOW = {
    "num_train_timesteps": 1000,
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "trained_betas": None,
    "solver_order": 2,
    "prediction_type": "flow_prediction",
    "thresholding": False,
    "dynamic_thresholding_ratio": 0.995,
    "sample_max_value": 1.0,
    "predict_x0": True,
    "solver_type": "bh2",
    "lower_order_final": True,
    "disable_corrector": [],
    "solver_p": None,
    "use_karras_sigmas": False,
    "use_exponential_sigmas": False,
    "use_beta_sigmas": False,
    "use_flow_sigmas": True,
    "flow_shift": 3.0,
    "timestep_spacing": "linspace",
    "steps_offset": 0,
    "final_sigmas_type": "zero",
    "rescale_betas_zero_snr": False,
    "use_dynamic_shifting": False,
    "time_shift_type": "exponential",
}


def _wan21_i2v() -> Architecture:
    return Architecture(
        pipeline_cls="diffusers.WanImageToVideoPipeline",
        components=(
            Component("tokenizer", "transformers.T5Tokenizer", "tokenizer", UMT5_TOKENIZER),
            Component(
                "text_encoder",
                "transformers.UMT5EncoderModel",
                "text_encoder",
                UMT5_XXL,
                params=5_680_910_336,
            ),
            Component("vae", "diffusers.AutoencoderKLWan", "vae", WAN21_VAE, params=126_892_531),
            Component("scheduler", "diffusers.UniPCMultistepScheduler", "scheduler", UNIPC_FLOW),
            Component(
                "image_processor", "transformers.CLIPImageProcessor", "processor", CLIP_IMAGE_PROCESSOR
            ),
            Component(
                "image_encoder",
                "transformers.CLIPVisionModelWithProjection",
                "image_encoder",
                CLIP_VIT_H14_VISION,
                params=632_076_800,
            ),
            Component(
                "transformer",
                "diffusers.WanTransformer3DModel",
                "denoiser",
                WAN21_I2V_14B,
                params=16_394_878_784,
            ),
        ),
    )


FULL: dict[str, Architecture] = {
    # 480P and 720P are the same network trained at different sizes.
    "wan2.1-i2v-14b-480p": _wan21_i2v(),
    "wan2.1-i2v-14b-720p": _wan21_i2v(),
    "wan2.2-ti2v-5b": Architecture(
        pipeline_cls="diffusers.WanImageToVideoPipeline",
        components=(
            Component("tokenizer", "transformers.T5Tokenizer", "tokenizer", UMT5_TOKENIZER),
            Component(
                "text_encoder",
                "transformers.UMT5EncoderModel",
                "text_encoder",
                UMT5_XXL,
                params=5_680_910_336,
            ),
            Component("vae", "diffusers.AutoencoderKLWan", "vae", WAN22_VAE, params=704_688_668),
            Component(
                "scheduler",
                "diffusers.UniPCMultistepScheduler",
                "scheduler",
                {**UNIPC_FLOW, "flow_shift": 5.0},
            ),
            Component(
                "transformer",
                "diffusers.WanTransformer3DModel",
                "denoiser",
                WAN22_TI2V_5B,
                params=4_999_787_712,
            ),
        ),
    ),
    "wan2.2-i2v-a14b": Architecture(
        pipeline_cls="diffusers.WanImageToVideoPipeline",
        components=(
            Component("tokenizer", "transformers.T5Tokenizer", "tokenizer", UMT5_TOKENIZER),
            Component(
                "text_encoder",
                "transformers.UMT5EncoderModel",
                "text_encoder",
                UMT5_XXL,
                params=5_680_910_336,
            ),
            Component("vae", "diffusers.AutoencoderKLWan", "vae", WAN21_VAE, params=126_892_531),
            Component("scheduler", "diffusers.UniPCMultistepScheduler", "scheduler", UNIPC_FLOW),
            Component(
                "transformer",
                "diffusers.WanTransformer3DModel",
                "denoiser",
                WAN22_I2V_A14B,
                params=14_288_901_184,
            ),
            Component(
                "transformer_2",
                "diffusers.WanTransformer3DModel",
                "denoiser",
                WAN22_I2V_A14B,
                params=14_288_901_184,
            ),
        ),
    ),
}

# --- tiny twins: same classes and wiring, widths of 8-32, two layers -------------------------

_TINY_T5_VOCAB = 1000
_TINY_TOKENIZER = {"vocab_size": _TINY_T5_VOCAB, "model_max_length": 512}
_TINY_UMT5 = {
    **UMT5_XXL,
    "vocab_size": _TINY_T5_VOCAB,
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 16,
}
_TINY_DIT = {
    **_WAN_14B,
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "text_dim": 32,
    "freq_dim": 32,
    "ffn_dim": 64,
    "num_layers": 2,
    "rope_max_seq_len": 32,
}
_TINY_VAE21 = {**WAN21_VAE, "base_dim": 8, "dim_mult": [1, 2, 2, 2], "num_res_blocks": 1}
_TINY_VAE22 = {
    **WAN22_VAE,
    "base_dim": 8,
    "decoder_base_dim": 8,
    "dim_mult": [1, 2, 2, 2],
    "num_res_blocks": 1,
    "latents_mean": [0.0] * 48,
    "latents_std": [1.0] * 48,
}


def _tiny_text() -> tuple[Component, Component]:
    return (
        Component("tokenizer", "transformers.T5Tokenizer", "tokenizer", _TINY_TOKENIZER),
        Component("text_encoder", "transformers.UMT5EncoderModel", "text_encoder", _TINY_UMT5),
    )


TINY: dict[str, Architecture] = {
    "tiny-wan2.1-i2v": Architecture(
        pipeline_cls="diffusers.WanImageToVideoPipeline",
        components=(
            *_tiny_text(),
            Component("vae", "diffusers.AutoencoderKLWan", "vae", _TINY_VAE21),
            Component("scheduler", "diffusers.UniPCMultistepScheduler", "scheduler", UNIPC_FLOW),
            Component(
                "image_processor",
                "transformers.CLIPImageProcessor",
                "processor",
                {
                    **CLIP_IMAGE_PROCESSOR,
                    "crop_size": {"height": 32, "width": 32},
                    "size": {"shortest_edge": 32},
                },
            ),
            Component(
                "image_encoder",
                "transformers.CLIPVisionModelWithProjection",
                "image_encoder",
                {
                    **CLIP_VIT_H14_VISION,
                    "hidden_size": 32,
                    "intermediate_size": 64,
                    "num_hidden_layers": 3,
                    "num_attention_heads": 4,
                    "image_size": 32,
                    "patch_size": 8,
                    "projection_dim": 32,
                },
            ),
            Component(
                "transformer",
                "diffusers.WanTransformer3DModel",
                "denoiser",
                {**_TINY_DIT, "image_dim": 32, "added_kv_proj_dim": 32},
            ),
        ),
    ),
    "tiny-wan2.2-ti2v": Architecture(
        pipeline_cls="diffusers.WanImageToVideoPipeline",
        components=(
            *_tiny_text(),
            Component("vae", "diffusers.AutoencoderKLWan", "vae", _TINY_VAE22),
            Component(
                "scheduler",
                "diffusers.UniPCMultistepScheduler",
                "scheduler",
                {**UNIPC_FLOW, "flow_shift": 5.0},
            ),
            Component(
                "transformer",
                "diffusers.WanTransformer3DModel",
                "denoiser",
                {**_TINY_DIT, "in_channels": 48, "out_channels": 48},
            ),
        ),
    ),
    "tiny-wan2.2-i2v-a14b": Architecture(
        pipeline_cls="diffusers.WanImageToVideoPipeline",
        components=(
            *_tiny_text(),
            Component("vae", "diffusers.AutoencoderKLWan", "vae", _TINY_VAE21),
            Component("scheduler", "diffusers.UniPCMultistepScheduler", "scheduler", UNIPC_FLOW),
            Component("transformer", "diffusers.WanTransformer3DModel", "denoiser", _TINY_DIT),
            Component("transformer_2", "diffusers.WanTransformer3DModel", "denoiser", _TINY_DIT),
        ),
    ),
}

PIPELINE_CONFIG: dict[str, dict[str, Any]] = {
    "wan2.2-ti2v-5b": {"expand_timesteps": True},
    "wan2.2-i2v-a14b": {"boundary_ratio": 0.9},
    "tiny-wan2.2-ti2v": {"expand_timesteps": True},
    "tiny-wan2.2-i2v-a14b": {"boundary_ratio": 0.9},
}
