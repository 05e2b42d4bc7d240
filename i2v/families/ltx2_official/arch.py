"""LTX-2.3 22B as ltx-core 1.0.0 builds it: the checkpoint config and per-component sizes. Torch-free.

The config is the ``"config"`` metadata of ``ltx-2.3-22b-dev.safetensors`` (the same architecture as
``ltx-2.3-22b-distilled-1.1``), which ltx-core's configurators read. The checkpoint is not
downloadable here (no model hub is reachable), so it was taken from public sources and
cross-checked:

- transformer, ``vae``, ``audio_vae``, ``vocoder``: tenstorrent/tt-forge-models
  ``ltx2_3/pytorch/loader.py`` (commit 6169952), "extracted from the LTX-2.3 22B checkpoint's
  safetensors header" (``_TRANSFORMER_CONFIG``, ``_VAE_CONFIG``, ``_AUDIO_VAE_CONFIG``,
  ``_VOCODER_CONFIG``).
- cross-check: huggingface/diffusers ``scripts/convert_ltx2_to_diffusers.py`` (commit 58eb52c0,
  ``--version 2.3``) has the same transformer (48 layers, 32 x 128 video heads, 32 x 64 audio heads,
  cross-attention 4096 / 2048, gated attention, cross-attention AdaLN, split RoPE in float64), the
  same vocoder (BigVGAN-style 1536 channels, rates 5-2-2-2-2-2, BWE 6-5-2-2-2 to 48 kHz) and audio VAE.
- ``upsampler`` (the separate ``ltx-2.3-spatial-upscaler-x2-1.1.safetensors``): the same diffusers
  script's ``get_ltx2_spatial_latent_upsampler_config("2.3")`` (in_channels 128, mid_channels 1024,
  4 blocks per stage, dims 3, spatial x2, no rational resampler), in ltx-core's key names.
- Gemma 3 12B: ltx-core 1.0.0 hard-codes it (``text_encoders/gemma/config.py``).

`PARAMS` were measured on ``torch.device("meta")`` with the package's own configurators
(ltx-core 1.0.0, transformers 5.24); tests/test_ltx23_arch.py re-measures them. Sizes are bf16
(2 bytes a parameter), as the pipelines build every model (``dtype=torch.bfloat16``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

Part = Literal[
    "transformer",
    "video_encoder",
    "video_decoder",
    "audio_encoder",
    "audio_decoder",
    "vocoder",
    "embeddings_processor",
    "upsampler",
    "text_encoder",
]

TRANSFORMER: dict[str, Any] = {
    "_class_name": "AVTransformer3DModel",
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": 128,
    "attention_type": "default",
    "caption_channels": 3840,
    "cross_attention_dim": 4096,
    "double_self_attention": False,
    "dropout": 0.0,
    "in_channels": 128,
    "norm_elementwise_affine": False,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
    "num_attention_heads": 32,
    "num_embeds_ada_norm": 1000,
    "num_layers": 48,
    "num_vector_embeds": None,
    "only_cross_attention": False,
    "cross_attention_norm": True,
    "out_channels": 128,
    "upcast_attention": False,
    "use_linear_projection": False,
    "qk_norm": "rms_norm",
    "standardization_norm": "rms_norm",
    "positional_embedding_type": "rope",
    "positional_embedding_theta": 10000.0,
    "positional_embedding_max_pos": [20, 2048, 2048],
    "timestep_scale_multiplier": 1000,
    "av_ca_timestep_scale_multiplier": 1000.0,
    "causal_temporal_positioning": True,
    "audio_num_attention_heads": 32,
    "audio_attention_head_dim": 64,
    "use_audio_video_cross_attention": True,
    "share_ff": False,
    "audio_out_channels": 128,
    "audio_cross_attention_dim": 2048,
    "audio_positional_embedding_max_pos": [20],
    "av_cross_ada_norm": True,
    "use_embeddings_connector": True,
    "connector_attention_head_dim": 128,
    "connector_num_attention_heads": 32,
    "connector_num_layers": 8,
    "connector_positional_embedding_max_pos": [4096],
    "connector_num_learnable_registers": 128,
    "connector_norm_output": True,
    "use_middle_indices_grid": True,
    "apply_gated_attention": True,
    "connector_apply_gated_attention": True,
    "caption_projection_first_linear": False,
    "caption_projection_second_linear": False,
    "caption_proj_input_norm": False,
    "connector_learnable_registers_std": 1,
    "caption_proj_before_connector": True,
    "audio_connector_attention_head_dim": 64,
    "audio_connector_num_attention_heads": 32,
    "cross_attention_adaln": True,
    "text_encoder_norm_type": "per_token_rms",
    "rope_type": "split",
    "frequencies_precision": "float64",
}
VAE: dict[str, Any] = {
    "_class_name": "CausalVideoAutoencoder",
    "dims": 3,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "encoder_blocks": [
        ["res_x", {"num_layers": 4}],
        ["compress_space_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 6}],
        ["compress_time_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 4}],
        ["compress_all_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 2}],
        ["compress_all_res", {"multiplier": 1}],
        ["res_x", {"num_layers": 2}],
    ],
    "decoder_blocks": [
        ["res_x", {"num_layers": 4}],
        ["compress_space", {"multiplier": 2}],
        ["res_x", {"num_layers": 6}],
        ["compress_time", {"multiplier": 2}],
        ["res_x", {"num_layers": 4}],
        ["compress_all", {"multiplier": 1}],
        ["res_x", {"num_layers": 2}],
        ["compress_all", {"multiplier": 2}],
        ["res_x", {"num_layers": 2}],
    ],
    "scaling_factor": 1.0,
    "norm_layer": "pixel_norm",
    "patch_size": 4,
    "latent_log_var": "uniform",
    "use_quant_conv": False,
    "causal_decoder": False,
    "timestep_conditioning": False,
    "normalize_latent_channels": False,
    "encoder_base_channels": 128,
    "decoder_base_channels": 128,
    "spatial_padding_mode": "zeros",
}
AUDIO_VAE: dict[str, Any] = {
    "model": {
        "params": {
            "ddconfig": {
                "double_z": True,
                "mel_bins": 64,
                "z_channels": 8,
                "resolution": 256,
                "downsample_time": False,
                "in_channels": 2,
                "out_ch": 2,
                "ch": 128,
                "ch_mult": [1, 2, 4],
                "num_res_blocks": 2,
                "attn_resolutions": [],
                "dropout": 0.0,
                "mid_block_add_attention": False,
                "norm_type": "pixel",
                "causality_axis": "height",
            },
            "sampling_rate": 16000,
        }
    },
    "preprocessing": {
        "stft": {"filter_length": 1024, "hop_length": 160, "win_length": 1024, "causal": True},
        "mel": {"n_mel_channels": 64, "mel_fmin": 0, "mel_fmax": 8000},
    },
}
_AMP = {
    "resblock": "AMP1",
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5]] * 3,
    "stereo": True,
    "use_tanh_at_final": False,
    "activation": "snakebeta",
    "use_bias_at_final": False,
}
VOCODER: dict[str, Any] = {
    "vocoder": {
        **_AMP,
        "upsample_initial_channel": 1536,
        "upsample_rates": [5, 2, 2, 2, 2, 2],
        "upsample_kernel_sizes": [11, 4, 4, 4, 4, 4],
    },
    "bwe": {
        **_AMP,
        "upsample_initial_channel": 512,
        "upsample_rates": [6, 5, 2, 2, 2],
        "upsample_kernel_sizes": [12, 11, 4, 4, 4],
        "apply_final_activation": False,
        "input_sampling_rate": 16000,
        "output_sampling_rate": 48000,
        "hop_length": 80,
        "n_fft": 512,
        "win_size": 512,
        "num_mels": 64,
    },
}
CHECKPOINT_CONFIG: dict[str, Any] = {
    "transformer": TRANSFORMER,
    "vae": VAE,
    "audio_vae": AUDIO_VAE,
    "vocoder": VOCODER,
}
MODEL_VERSION = "2.3.0"  # the "model_version" metadata detect_params reads (prefix "2.3")
UPSAMPLER_CONFIG: dict[str, Any] = {
    "in_channels": 128,
    "mid_channels": 1024,
    "num_blocks_per_stage": 4,
    "dims": 3,
    "spatial_upsample": True,
    "temporal_upsample": False,
    "spatial_scale": 2.0,
    "rational_resampler": False,
}

# Measured on the meta device (see the module docstring). The "22B" is the transformer plus the text
# path (embeddings_processor: 1.16B feature extractor + 2.02B video/audio connectors). Independent
# figures agree: tt-forge-models quotes video VAE encoder 318.9M / decoder 407.2M, audio VAE 21.3M /
# 31.9M, vocoder 128.5M. text_encoder: Gemma3ForConditionalGeneration with lm_head tied to the
# embeddings (the checkpoint key map aliases one to the other).
PARAMS: Mapping[Part, int] = MappingProxyType(
    {
        "transformer": 18_988_838_144,
        "video_encoder": 318_936_897,
        "video_decoder": 407_169_072,
        "audio_encoder": 21_333_008,
        "audio_decoder": 31_915_138,
        "vocoder": 128_537_448,
        "embeddings_processor": 3_172_227_584,
        "upsampler": 497_867_904,
        "text_encoder": 12_187_325_040,
    }
)
# What each file holds (parts built from it).
CHECKPOINT_PARTS: tuple[Part, ...] = (
    "transformer",
    "video_encoder",
    "video_decoder",
    "audio_encoder",
    "audio_decoder",
    "vocoder",
    "embeddings_processor",
)
BYTES_PER_PARAM = 2  # bf16


def bf16_bytes(part: Part) -> int:
    return PARAMS[part] * BYTES_PER_PARAM


def checkpoint_bytes() -> int:
    """Tensor bytes of one single-file checkpoint (dev or distilled), from the parameter counts
    (per-channel statistics and the vocoder's STFT bases are small buffers, left out)."""
    return sum(bf16_bytes(p) for p in CHECKPOINT_PARTS)
