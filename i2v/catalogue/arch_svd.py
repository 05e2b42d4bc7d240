"""Stable Video Diffusion XT (stabilityai/stable-video-diffusion-img2vid-xt) as data. Torch-free.

Configs as in the hub repo's component config.json files: the spatio-temporal UNet (25 frames,
8 input channels = noisy latents + image latents), the temporal-decoder VAE, the OpenCLIP
ViT-H/14 image encoder (shared with I2VGen-XL) and an EDM-style Euler scheduler. SVD has no text
encoder. ``params`` are measured on the meta device (tests/test_architectures_unet_wan.py).

The tiny twin keeps the real layout: its VAE and UNet use GroupNorm(32) internally (hard-coded in
diffusers), so their channels stay multiples of 32; its image encoder takes 224 px input because
the pipeline resizes to 224x224 itself before the processor.
"""

from __future__ import annotations

from i2v.catalogue.arch_i2vgen import CLIP_IMAGE_PROCESSOR, CLIP_VIT_H14_VISION
from i2v.catalogue.arch_types import Architecture, Component

SVD_XT_UNET = {
    "sample_size": 96,
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": [
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "DownBlockSpatioTemporal",
    ],
    "up_block_types": [
        "UpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
    ],
    "block_out_channels": [320, 640, 1280, 1280],
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 768,  # 3 added time ids (fps, motion bucket, noise aug) x 256
    "layers_per_block": 2,
    "cross_attention_dim": 1024,
    "transformer_layers_per_block": 1,
    "num_attention_heads": [5, 10, 20, 20],
    "num_frames": 25,
}

SVD_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "sample_size": 768,
    "scaling_factor": 0.18215,
    "force_upcast": True,
}

# The hub file (written by diffusers 0.24) also carries clip_sample, set_alpha_to_one and
# skip_prk_steps, which EulerDiscreteScheduler ignores; they are left out here.
SVD_EULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "trained_betas": None,
    "prediction_type": "v_prediction",
    "interpolation_type": "linear",
    "use_karras_sigmas": True,
    "sigma_min": 0.002,
    "sigma_max": 700.0,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "steps_offset": 1,
}

FULL: dict[str, Architecture] = {
    "svd-xt": Architecture(
        pipeline_cls="diffusers.StableVideoDiffusionPipeline",
        components=(
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
            Component("vae", "diffusers.AutoencoderKLTemporalDecoder", "vae", SVD_VAE, params=97_742_847),
            Component("scheduler", "diffusers.EulerDiscreteScheduler", "scheduler", SVD_EULER),
            Component(
                "unet",
                "diffusers.UNetSpatioTemporalConditionModel",
                "denoiser",
                SVD_XT_UNET,
                params=1_524_623_082,
            ),
        ),
    ),
}

TINY: dict[str, Architecture] = {
    "tiny-svd": Architecture(
        pipeline_cls="diffusers.StableVideoDiffusionPipeline",
        components=(
            Component(
                "feature_extractor", "transformers.CLIPImageProcessor", "processor", CLIP_IMAGE_PROCESSOR
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
                    "patch_size": 32,
                    "projection_dim": 32,
                },
            ),
            Component(
                "vae",
                "diffusers.AutoencoderKLTemporalDecoder",
                "vae",
                {
                    **SVD_VAE,
                    "block_out_channels": [32, 32, 32, 32],
                    "layers_per_block": 1,
                    "sample_size": 64,
                },
            ),
            Component("scheduler", "diffusers.EulerDiscreteScheduler", "scheduler", SVD_EULER),
            Component(
                "unet",
                "diffusers.UNetSpatioTemporalConditionModel",
                "denoiser",
                {
                    **SVD_XT_UNET,
                    "sample_size": 8,
                    "down_block_types": ["CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
                    "up_block_types": ["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"],
                    "block_out_channels": [32, 64],
                    "addition_time_embed_dim": 8,
                    "projection_class_embeddings_input_dim": 24,
                    "layers_per_block": 1,
                    "cross_attention_dim": 32,
                    "num_attention_heads": [2, 4],
                    "num_frames": 5,
                },
            ),
        ),
    ),
}
