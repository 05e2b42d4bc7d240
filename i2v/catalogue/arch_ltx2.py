"""LTX-2 (Lightricks, 19B audio+video) as plain data: architectures, the x2 latent upsampler, modes.

Import-safe and torch-free. FULL mirrors the diffusers-format hub release ``Lightricks/LTX-2``
(LTX-2.0, ``ltx-2-19b-dev``), whose sub-folders were written by diffusers'
``scripts/convert_ltx2_to_diffusers.py --version 2.0``: the configs below are that script's
``diffusers_config`` values, which are the ``config.json`` files on the hub. The text encoder is
``google/gemma-3-12b-it`` (``Gemma3ForConditionalGeneration``: the pipeline stacks all 49 hidden
states of its language model; the SigLIP tower is loaded but only used for prompt enhancement).

``UPSAMPLER`` holds the x2 spatial latent upsampler of the two-stage modes (hub sub-folder
``latent_upsampler``, not part of ``model_index.json``): run through ``LTX2LatentUpsamplePipeline``
with the main pipeline's VAE. The modes that use it are in ``i2v.families.ltx2``.

``params`` were measured on ``torch.device("meta")`` with diffusers 0.42.1 / transformers 5.23
(tests/test_architectures_ltx.py re-checks them). The NPU policy (``rope_double_precision``) is in
``i2v.families.ltx2``, not here: these are the checkpoint's own values.
"""

from __future__ import annotations

from i2v.catalogue.arch_types import Architecture, Component

# Scheduler as written by the conversion script's full-pipeline save.
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

_FULL_TRANSFORMER = {
    "in_channels": 128,
    "out_channels": 128,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 32,
    "attention_head_dim": 128,
    "cross_attention_dim": 4096,
    "vae_scale_factors": (8, 32, 32),
    "pos_embed_max_pos": 20,
    "base_height": 2048,
    "base_width": 2048,
    "gated_attn": False,
    "cross_attn_mod": False,
    "audio_in_channels": 128,
    "audio_out_channels": 128,
    "audio_patch_size": 1,
    "audio_patch_size_t": 1,
    "audio_num_attention_heads": 32,
    "audio_attention_head_dim": 64,
    "audio_cross_attention_dim": 2048,
    "audio_scale_factor": 4,
    "audio_pos_embed_max_pos": 20,
    "audio_sampling_rate": 16000,
    "audio_hop_length": 160,
    "audio_gated_attn": False,
    "audio_cross_attn_mod": False,
    "num_layers": 48,
    "activation_fn": "gelu-approximate",
    "qk_norm": "rms_norm_across_heads",
    "norm_elementwise_affine": False,
    "norm_eps": 1e-6,
    "caption_channels": 3840,
    "attention_bias": True,
    "attention_out_bias": True,
    "rope_theta": 10000.0,
    # float64 RoPE frequencies built on the execution device (transformer_ltx2.py); NPU: override to False.
    "rope_double_precision": True,
    "causal_offset": 1,
    "timestep_scale_multiplier": 1000,
    "cross_attn_timestep_scale_multiplier": 1000,
    "rope_type": "split",
    "use_prompt_embeddings": True,
    "perturbed_attn": False,
}

_FULL_CONNECTORS = {
    "caption_channels": 3840,
    "text_proj_in_factor": 49,  # 48 Gemma-3 layers + the embedding output
    "video_connector_num_attention_heads": 30,
    "video_connector_attention_head_dim": 128,
    "video_connector_num_layers": 2,
    "video_connector_num_learnable_registers": 128,
    "video_gated_attn": False,
    "audio_connector_num_attention_heads": 30,
    "audio_connector_attention_head_dim": 128,
    "audio_connector_num_layers": 2,
    "audio_connector_num_learnable_registers": 128,
    "audio_gated_attn": False,
    "connector_rope_base_seq_len": 4096,
    "rope_theta": 10000.0,
    "rope_double_precision": True,  # same float64 RoPE as the transformer (connectors.py)
    "causal_temporal_positioning": False,
    "rope_type": "split",
    "per_modality_projections": False,
    "proj_bias": False,
}

_FULL_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "block_out_channels": (256, 512, 1024, 2048),
    "down_block_types": ("LTX2VideoDownBlock3D",) * 4,
    "decoder_block_out_channels": (256, 512, 1024),
    "layers_per_block": (4, 6, 6, 2, 2),
    "decoder_layers_per_block": (5, 5, 5, 5),
    "spatio_temporal_scaling": (True, True, True, True),
    "decoder_spatio_temporal_scaling": (True, True, True),
    "decoder_inject_noise": (False, False, False, False),
    "downsample_type": ("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
    "upsample_type": ("spatiotemporal", "spatiotemporal", "spatiotemporal"),
    "upsample_residual": (True, True, True),
    "upsample_factor": (2, 2, 2),
    "timestep_conditioning": False,
    "patch_size": 4,
    "patch_size_t": 1,
    "resnet_norm_eps": 1e-6,
    "scaling_factor": 1.0,
    "encoder_causal": True,
    "decoder_causal": False,  # the class default is True; the checkpoint is not
    "encoder_spatial_padding_mode": "zeros",
    "decoder_spatial_padding_mode": "reflect",
    "spatial_compression_ratio": 32,
    "temporal_compression_ratio": 8,
}

_FULL_AUDIO_VAE = {
    "base_channels": 128,
    "output_channels": 2,
    "ch_mult": (1, 2, 4),
    "num_res_blocks": 2,
    "attn_resolutions": None,
    "in_channels": 2,
    "resolution": 256,
    "latent_channels": 8,
    "norm_type": "pixel",
    "causality_axis": "height",
    "dropout": 0.0,
    "mid_block_add_attention": False,
    "sample_rate": 16000,
    "mel_hop_length": 160,
    "is_causal": True,
    "mel_bins": 64,
    "double_z": True,
}

_FULL_VOCODER = {
    "in_channels": 128,  # audio_vae output_channels (2) x mel_bins (64)
    "hidden_channels": 1024,
    "out_channels": 2,
    "upsample_kernel_sizes": (16, 15, 8, 4, 4),
    "upsample_factors": (6, 5, 2, 2, 2),  # x240: 100 mel frames/s -> 24 kHz
    "resnet_kernel_sizes": (3, 7, 11),
    "resnet_dilations": ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    "act_fn": "leaky_relu",
    "leaky_relu_negative_slope": 0.1,
    "antialias": False,
    "final_act_fn": "tanh",
    "final_bias": True,
    "output_sampling_rate": 24000,
}

# google/gemma-3-12b-it config.json (as saved under Lightricks/LTX-2/text_encoder).
_FULL_GEMMA3 = {
    "text_config": {
        "model_type": "gemma3_text",
        "vocab_size": 262208,
        "hidden_size": 3840,
        "intermediate_size": 15360,
        "num_hidden_layers": 48,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 256,
        "hidden_activation": "gelu_pytorch_tanh",
        "max_position_embeddings": 131072,
        "query_pre_attn_scalar": 256,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1_000_000.0,
        "rope_local_base_freq": 10000.0,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
        "sliding_window": 1024,
        "sliding_window_pattern": 6,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": None,
        "final_logit_softcapping": None,
    },
    "vision_config": {
        "model_type": "siglip_vision_model",
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "image_size": 896,
        "patch_size": 14,
        "vision_use_head": False,
    },
    "mm_tokens_per_image": 256,
    "boi_token_index": 255999,
    "eoi_token_index": 256000,
    "image_token_index": 262144,
    "eos_token_id": (1, 106),
    "initializer_range": 0.02,
}

_FULL_UPSAMPLER = {
    "in_channels": 128,
    "mid_channels": 1024,
    "num_blocks_per_stage": 4,
    "dims": 3,
    "spatial_upsample": True,
    "temporal_upsample": False,
    "rational_spatial_scale": 2.0,
}

_CONNECTORS_CLS = "diffusers.pipelines.ltx2.LTX2TextConnectors"
_VOCODER_CLS = "diffusers.pipelines.ltx2.LTX2Vocoder"
_UPSAMPLER_CLS = "diffusers.pipelines.ltx2.LTX2LatentUpsamplerModel"

_FULL_VAE_COMPONENT = Component("vae", "diffusers.AutoencoderKLLTX2Video", "vae", _FULL_VAE, 1_222_479_601)

FULL: dict[str, Architecture] = {
    "ltx-2": Architecture(
        pipeline_cls="diffusers.LTX2ImageToVideoPipeline",
        components=(
            Component(
                "transformer",
                "diffusers.LTX2VideoTransformer3DModel",
                "denoiser",
                _FULL_TRANSFORMER,
                18_876_174_592,
            ),
            Component("connectors", _CONNECTORS_CLS, "connector", _FULL_CONNECTORS, 1_431_475_200),
            _FULL_VAE_COMPONENT,
            Component(
                "audio_vae", "diffusers.AutoencoderKLLTX2Audio", "audio_vae", _FULL_AUDIO_VAE, 53_248_146
            ),
            Component("vocoder", _VOCODER_CLS, "vocoder", _FULL_VOCODER, 55_592_802),
            # Tied input/output embeddings: 12.19B once (accelerate.init_empty_weights leaves them
            # untied under transformers 5 and reports 13.19B).
            Component(
                "text_encoder",
                "transformers.Gemma3ForConditionalGeneration",
                "text_encoder",
                _FULL_GEMMA3,
                12_187_325_040,
            ),
            Component("tokenizer", "transformers.GemmaTokenizerFast", "tokenizer", {"padding_side": "left"}),
            Component(
                "scheduler", "diffusers.FlowMatchEulerDiscreteScheduler", "scheduler", SCHEDULER_CONFIG
            ),
        ),
    ),
}

# The x2 spatial latent upsampler (Lightricks/LTX-2, sub-folder latent_upsampler,
# ltx-2-spatial-upscaler-x2-1.0). Its VAE is the main pipeline's, shared at run time.
UPSAMPLER: dict[str, Architecture] = {
    "ltx-2": Architecture(
        pipeline_cls="diffusers.LTX2LatentUpsamplePipeline",
        components=(
            _FULL_VAE_COMPONENT,
            Component("latent_upsampler", _UPSAMPLER_CLS, "upsampler", _FULL_UPSAMPLER, 497_867_904),
        ),
    ),
}

# Tiny: same classes, same strides (VAE 32x/8x with patch 4, transformer patch 1, audio VAE 4x, vocoder
# x240 to 24 kHz) and the same code paths (learnable registers, split RoPE in float64, CFG + STG +
# modality guidance); widths and depths cut so a 2-step 64x64x9 run takes well under a second.
TINY_GEMMA_VOCAB = 384
TINY_MAX_SEQUENCE_LENGTH = 16  # connectors' learnable registers (8) must divide the prompt length

_TINY_TEXT_HIDDEN = 32
_TINY_TEXT_LAYERS = 2

_TINY_GEMMA3 = {
    "text_config": {
        **_FULL_GEMMA3["text_config"],
        "vocab_size": TINY_GEMMA_VOCAB,
        "hidden_size": _TINY_TEXT_HIDDEN,
        "intermediate_size": 64,
        "num_hidden_layers": _TINY_TEXT_LAYERS,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "max_position_embeddings": 2048,
        "query_pre_attn_scalar": 16,
        "sliding_window": 8,
        "sliding_window_pattern": 2,
    },
    "vision_config": {
        **_FULL_GEMMA3["vision_config"],
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 28,
        "patch_size": 14,
    },
    "mm_tokens_per_image": 4,
    # The tiny tokenizer's last three ids (i2v.tiny.gemma.IMAGE_TOKENS).
    "boi_token_index": TINY_GEMMA_VOCAB - 3,
    "eoi_token_index": TINY_GEMMA_VOCAB - 2,
    "image_token_index": TINY_GEMMA_VOCAB - 1,
    "eos_token_id": 1,
    "initializer_range": 0.02,
}

_TINY_TRANSFORMER = {
    **_FULL_TRANSFORMER,
    "in_channels": 8,
    "out_channels": 8,
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "cross_attention_dim": 32,
    "audio_in_channels": 16,  # audio latent_channels (4) x latent mel bins (16 / 4)
    "audio_out_channels": 16,
    "audio_num_attention_heads": 2,
    "audio_attention_head_dim": 8,
    "audio_cross_attention_dim": 16,
    "num_layers": 2,
    "caption_channels": _TINY_TEXT_HIDDEN,
}

_TINY_CONNECTORS = {
    **_FULL_CONNECTORS,
    "caption_channels": _TINY_TEXT_HIDDEN,
    "text_proj_in_factor": _TINY_TEXT_LAYERS + 1,
    "video_connector_num_attention_heads": 2,
    "video_connector_attention_head_dim": 16,
    "video_connector_num_layers": 1,
    "video_connector_num_learnable_registers": 8,
    "audio_connector_num_attention_heads": 2,
    "audio_connector_attention_head_dim": 16,
    "audio_connector_num_layers": 1,
    "audio_connector_num_learnable_registers": 8,
}

_TINY_VAE = {
    **_FULL_VAE,
    "latent_channels": 8,
    "block_out_channels": (8, 16, 32, 32),
    "decoder_block_out_channels": (8, 16, 32),
    "layers_per_block": (1, 1, 1, 1, 1),
    "decoder_layers_per_block": (1, 1, 1, 1),
}

_TINY_AUDIO_VAE = {
    **_FULL_AUDIO_VAE,
    # latents_mean/std have base_channels entries and normalise packed [latent_channels x mel/4]
    # tokens, so base_channels must equal latent_channels * mel_bins / 4 (128 = 8 * 64 / 4 in full).
    "base_channels": 16,
    "num_res_blocks": 1,
    "latent_channels": 4,
    "mel_bins": 16,
}

_TINY_VOCODER = {
    **_FULL_VOCODER,
    "in_channels": 32,  # 2 x 16 mel bins
    "hidden_channels": 64,
    "resnet_kernel_sizes": (3,),
    "resnet_dilations": ((1, 3, 5),),
}

_TINY_UPSAMPLER = {
    **_FULL_UPSAMPLER,
    "in_channels": 8,
    "mid_channels": 32,
    "num_blocks_per_stage": 1,
}  # GroupNorm(32, mid)

_TINY_VAE_COMPONENT = Component("vae", "diffusers.AutoencoderKLLTX2Video", "vae", _TINY_VAE)

TINY: dict[str, Architecture] = {
    "tiny-ltx-2": Architecture(
        pipeline_cls="diffusers.LTX2ImageToVideoPipeline",
        components=(
            Component("transformer", "diffusers.LTX2VideoTransformer3DModel", "denoiser", _TINY_TRANSFORMER),
            Component("connectors", _CONNECTORS_CLS, "connector", _TINY_CONNECTORS),
            _TINY_VAE_COMPONENT,
            Component("audio_vae", "diffusers.AutoencoderKLLTX2Audio", "audio_vae", _TINY_AUDIO_VAE),
            Component("vocoder", _VOCODER_CLS, "vocoder", _TINY_VOCODER),
            Component(
                "text_encoder", "transformers.Gemma3ForConditionalGeneration", "text_encoder", _TINY_GEMMA3
            ),
            Component(
                "tokenizer",
                "transformers.GemmaTokenizerFast",
                "tokenizer",
                {"padding_side": "left", "vocab_size": TINY_GEMMA_VOCAB},
            ),
            Component(
                "scheduler", "diffusers.FlowMatchEulerDiscreteScheduler", "scheduler", SCHEDULER_CONFIG
            ),
        ),
    ),
}

UPSAMPLER["tiny-ltx-2"] = Architecture(
    pipeline_cls="diffusers.LTX2LatentUpsamplePipeline",
    components=(
        _TINY_VAE_COMPONENT,
        Component("latent_upsampler", _UPSAMPLER_CLS, "upsampler", _TINY_UPSAMPLER),
    ),
)

__all__ = [
    "FULL",
    "TINY",
    "UPSAMPLER",
    "SCHEDULER_CONFIG",
    "TINY_GEMMA_VOCAB",
    "TINY_MAX_SEQUENCE_LENGTH",
]
