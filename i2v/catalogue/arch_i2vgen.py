"""I2VGen-XL (ali-vilab/i2vgen-xl) as data: full-size configs and a tiny twin. Torch-free.

Sources: diffusers' scripts/convert_i2vgen_to_diffusers.py builds the hub repo from
``I2VGenXLUNet(sample_size=32)`` (the class defaults), the SD 2.1 VAE, the text and vision towers of
laion/CLIP-ViT-H-14-laion2B-s32B-b79K and a DDIM scheduler with the options below. The OpenCLIP
ViT-H/14 towers and their image processor are shared with SVD and Wan 2.1, so they live here.
``params`` are measured on the meta device (tests/test_architectures_unet_wan.py re-checks them).
"""

from __future__ import annotations

from i2v.catalogue.arch_types import Architecture, Component

# OpenCLIP ViT-H/14 (laion2B-s32B-b79K) vision tower, as transformers' CLIPVisionConfig.
CLIP_VIT_H14_VISION = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 16,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 14,
    "projection_dim": 1024,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-05,
    "attention_dropout": 0.0,
    "dropout": 0.0,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
}

# Its text tower, as transformers' CLIPTextConfig (hub text_encoder/config.json of i2vgen-xl).
CLIP_VIT_H14_TEXT = {
    "vocab_size": 49408,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "max_position_embeddings": 77,
    "projection_dim": 1024,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-05,
    "attention_dropout": 0.0,
    "dropout": 0.0,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "bos_token_id": 0,
    "eos_token_id": 2,  # legacy value: pooling takes argmax(input_ids), i.e. <|endoftext|> (49407)
    "pad_token_id": 1,
}

# OpenAI CLIP preprocessing at 224 px (preprocessor_config.json of the laion ViT-H/14 repo).
CLIP_IMAGE_PROCESSOR = {
    "crop_size": {"height": 224, "width": 224},
    "size": {"shortest_edge": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
}

# SD 2.1 VAE (8x spatial, 4 latent channels).
SD_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 768,
    "scaling_factor": 0.18215,
    "force_upcast": True,
}

I2VGEN_UNET = {
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": [
        "CrossAttnDownBlock3D",
        "CrossAttnDownBlock3D",
        "CrossAttnDownBlock3D",
        "DownBlock3D",
    ],
    "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "cross_attention_dim": 1024,
    "attention_head_dim": 64,
    "num_attention_heads": None,
}

# https://github.com/ali-vilab/i2vgen-xl/blob/main/configs/i2vgen_xl_train.yaml, via the conversion script.
I2VGEN_DDIM = {
    "num_train_timesteps": 1000,
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "beta_schedule": "squaredcos_cap_v2",
    "trained_betas": None,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "set_alpha_to_one": True,
    "steps_offset": 1,
    "prediction_type": "v_prediction",
    "thresholding": False,
    "dynamic_thresholding_ratio": 0.995,
    "sample_max_value": 1.0,
    "timestep_spacing": "leading",
    "rescale_betas_zero_snr": True,
}

FULL: dict[str, Architecture] = {
    "i2vgen-xl": Architecture(
        pipeline_cls="diffusers.I2VGenXLPipeline",
        components=(
            Component(
                "tokenizer",
                "transformers.CLIPTokenizer",
                "tokenizer",
                {"vocab_size": 49408, "model_max_length": 77},
            ),
            Component(
                "text_encoder",
                "transformers.CLIPTextModel",
                "text_encoder",
                CLIP_VIT_H14_TEXT,
                params=352_984_064,
            ),
            Component(
                "feature_extractor", "transformers.CLIPImageProcessor", "processor", CLIP_IMAGE_PROCESSOR
            ),
            Component(
                "image_encoder",
                "transformers.CLIPVisionModelWithProjection",
                "image_encoder",
                CLIP_VIT_H14_VISION,
                params=632_076_800,
            ),
            Component("vae", "diffusers.AutoencoderKL", "vae", SD_VAE, params=83_653_863),
            Component("scheduler", "diffusers.DDIMScheduler", "scheduler", I2VGEN_DDIM),
            Component("unet", "diffusers.I2VGenXLUNet", "denoiser", I2VGEN_UNET, params=1_420_469_224),
        ),
    ),
}

TINY: dict[str, Architecture] = {
    "tiny-i2vgen-xl": Architecture(
        pipeline_cls="diffusers.I2VGenXLPipeline",
        components=(
            Component(
                "tokenizer",
                "transformers.CLIPTokenizer",
                "tokenizer",
                {"vocab_size": 1000, "model_max_length": 77},
            ),
            Component(
                "text_encoder",
                "transformers.CLIPTextModel",
                "text_encoder",
                {
                    **CLIP_VIT_H14_TEXT,
                    "vocab_size": 1000,
                    "hidden_size": 32,
                    "intermediate_size": 64,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 4,
                    "projection_dim": 32,
                    "bos_token_id": 998,
                    "eos_token_id": 999,
                    "pad_token_id": 999,  # clip_tokenizer(1000)
                },
            ),
            Component(
                "feature_extractor",
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
                    "num_hidden_layers": 2,
                    "num_attention_heads": 4,
                    "image_size": 32,
                    "patch_size": 8,
                    "projection_dim": 32,
                },
            ),
            Component(
                "vae",
                "diffusers.AutoencoderKL",
                "vae",
                {
                    **SD_VAE,
                    "block_out_channels": [8, 8, 16, 16],
                    "layers_per_block": 1,
                    "norm_num_groups": 4,
                    "sample_size": 64,
                },
            ),
            Component("scheduler", "diffusers.DDIMScheduler", "scheduler", I2VGEN_DDIM),
            Component(
                "unet",
                "diffusers.I2VGenXLUNet",
                "denoiser",
                {
                    **I2VGEN_UNET,
                    "sample_size": 8,
                    "down_block_types": ["CrossAttnDownBlock3D", "DownBlock3D"],
                    "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D"],
                    "block_out_channels": [16, 32],
                    "layers_per_block": 1,
                    "norm_num_groups": 4,
                    "cross_attention_dim": 32,
                    "attention_head_dim": 8,
                },
            ),
        ),
    ),
}
