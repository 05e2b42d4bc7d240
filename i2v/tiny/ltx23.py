"""``tiny-ltx-2.3``: a random-weight LTX-2.3 model set in the real file layout, for CPU tests.

``build(dest)`` writes, under ``dest`` (the layout of ``families/ltx2_official/weights.py``)::

    LTX-2.3/ltx-2.3-22b-dev.safetensors                 transformer, video VAE, audio VAE, vocoder
    LTX-2.3/ltx-2.3-22b-distilled-1.1.safetensors       and text projection, one file each, with the
                                                        "config" and "model_version" metadata
    LTX-2.3/ltx-2.3-22b-distilled-lora-384-1.1.safetensors   rank-4 LoRA on the attention/FF linears
    LTX-2.3/ltx-2.3-spatial-upscaler-x2-1.1.safetensors      the x2 latent upsampler and its config
    gemma-3-12b-it-qat-q4_0-unquantized/                a 2-layer Gemma 3 (legacy key layout), its
                                                        config.json, a local tokenizer, an image
                                                        processor config, an empty tokenizer.model
    tiny.json                                           what this is, and the config fingerprint

Configs are the real 22B config (`arch.CHECKPOINT_CONFIG`) with the widths and depths shrunk, and
what 1.0.0 fixes kept: 128 video latent channels (``VIDEO_LATENT_CHANNELS``), audio latents of
8 channels x 16 mel bins (64 mel bins, ``a2vid_two_stage``), audio VAE ``ch`` 128
(``PerChannelStatistics(latent_channels=ch)``), 32x spatial / 8x temporal compression, bf16 weights
(LoRA fusion refuses other dtypes, ``fuse_loras.py:91``). Everything is loaded by the package's
own builders. ``dest`` is written into a temporary sibling and renamed into place; an existing
set with the same fingerprint is kept. Building takes a few seconds.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from i2v.families.ltx2_official import arch
from i2v.families.ltx2_official.weights import GEMMA_FOLDER, LTX_FOLDER, WEIGHT_FILES
from i2v.tiny.gemma import IMAGE_TOKENS, gemma_tokenizer

TINY_ID = "tiny-ltx-2.3"
BUILDER_VERSION = 1
GEMMA_VOCAB = 384

_TRANSFORMER = {
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "cross_attention_dim": 32,
    "num_layers": 2,
    "audio_num_attention_heads": 2,
    "audio_attention_head_dim": 8,
    "audio_cross_attention_dim": 16,
    "connector_num_attention_heads": 2,
    "connector_attention_head_dim": 16,
    "connector_num_layers": 1,
    "audio_connector_num_attention_heads": 2,
    "audio_connector_attention_head_dim": 8,
}
_VAE = {
    "encoder_blocks": [
        ["compress_space_res", {"multiplier": 1}],
        ["compress_time_res", {"multiplier": 1}],
        ["compress_all_res", {"multiplier": 1}],
        ["compress_all_res", {"multiplier": 1}],
    ],
    "decoder_blocks": [
        ["compress_space", {"multiplier": 2}],
        ["compress_time", {"multiplier": 2}],
        ["compress_all", {"multiplier": 1}],
        ["compress_all", {"multiplier": 2}],
    ],
    "decoder_base_channels": 8,
}
_AUDIO_DDCONFIG = {"ch_mult": [1, 1, 1], "num_res_blocks": 0}
_VOCODER = {
    "upsample_initial_channel": 64,
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3, 5]],
}
_BWE = {"upsample_initial_channel": 32, "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]]}
UPSAMPLER_CONFIG = {**arch.UPSAMPLER_CONFIG, "mid_channels": 32, "num_blocks_per_stage": 1}
GEMMA_CONFIG: dict[str, Any] = {
    "architectures": ["Gemma3ForConditionalGeneration"],
    "model_type": "gemma3",
    "torch_dtype": "bfloat16",
    "boi_token_index": GEMMA_VOCAB - 3,
    "eoi_token_index": GEMMA_VOCAB - 2,
    "image_token_index": GEMMA_VOCAB - 1,
    "mm_tokens_per_image": 4,
    "eos_token_id": [1],
    "pad_token_id": 0,
    "bos_token_id": 2,
    "text_config": {
        "model_type": "gemma3_text",
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "intermediate_size": 64,
        "vocab_size": GEMMA_VOCAB,
        "query_pre_attn_scalar": 16,
        "sliding_window": 64,
        "max_position_embeddings": 2048,
        "rope_scaling": {"rope_type": "linear", "factor": 8.0},
        "rope_theta": 1000000.0,
        "rope_local_base_freq": 10000.0,
        "hidden_activation": "gelu_pytorch_tanh",
        "rms_norm_eps": 1e-6,
    },
    "vision_config": {
        "model_type": "siglip_vision_model",
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "image_size": 56,
        "patch_size": 14,
        "vision_use_head": False,
    },
}
_LORA_TARGETS = (
    "attn1.to_q",
    "attn1.to_k",
    "attn1.to_v",
    "attn1.to_out.0",
    "attn2.to_q",
    "ff.net.0.proj",
    "ff.net.2",
    "audio_attn1.to_q",
    "audio_attn1.to_v",
)


def checkpoint_config() -> dict[str, Any]:
    """The real 22B checkpoint config with tiny widths and depths."""
    cfg = copy.deepcopy(arch.CHECKPOINT_CONFIG)
    cfg["transformer"].update(_TRANSFORMER)
    cfg["vae"].update(_VAE)
    cfg["audio_vae"]["model"]["params"]["ddconfig"].update(_AUDIO_DDCONFIG)
    cfg["vocoder"]["vocoder"].update(_VOCODER)
    cfg["vocoder"]["bwe"].update(_BWE)
    return cfg


def fingerprint() -> str:
    blob = json.dumps([BUILDER_VERSION, checkpoint_config(), UPSAMPLER_CONFIG, GEMMA_CONFIG], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def is_built(dest: str | Path) -> bool:
    marker = Path(dest) / "tiny.json"
    return marker.is_file() and json.loads(marker.read_text()).get("fingerprint") == fingerprint()


def _randomize(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Small random weights everywhere PyTorch's own init leaves torch.empty (scale-shift tables,
    per-channel statistics) or zeros that would make the maths degenerate (SnakeBeta log-scales)."""
    with torch.no_grad():
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if not tensor.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "std-of-means":
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif leaf == "mean-of-means" or "scale_shift_table" in leaf or leaf in ("alpha", "beta"):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))


def _stft_buffers(vocoder: torch.nn.Module) -> None:
    """Real DFT x Hann bases and a mel filter bank for the BWE's MelSTFT (the checkpoint stores them)."""
    from torchaudio.functional import melscale_fbanks

    stft = vocoder.mel_stft.stft_fn
    n_fft = stft.forward_basis.shape[-1]
    window = np.hanning(n_fft + 1)[:-1]
    basis = np.fft.rfft(np.eye(n_fft))
    forward = np.concatenate([basis.real.T, basis.imag.T]) * window[None, :]
    stft.forward_basis.copy_(torch.tensor(forward[:, None, :], dtype=torch.float32))
    stft.inverse_basis.copy_(torch.tensor(forward[:, None, :], dtype=torch.float32))  # unused by forward()
    n_mels, n_freqs = vocoder.mel_stft.mel_basis.shape
    fb = melscale_fbanks(n_freqs, 0.0, 8000.0, n_mels, 16000, norm="slaney", mel_scale="slaney")
    vocoder.mel_stft.mel_basis.copy_(fb.T)


def _prefixed(prefix: str, module: torch.nn.Module, skip: str | None = None) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in module.state_dict().items() if skip is None or not k.startswith(skip)}


def _checkpoint_tensors(cfg: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    from ltx_core.model.audio_vae import (
        AudioDecoderConfigurator,
        AudioEncoderConfigurator,
        VocoderConfigurator,
    )
    from ltx_core.model.transformer import LTXModelConfigurator
    from ltx_core.model.video_vae import VideoDecoderConfigurator, VideoEncoderConfigurator
    from ltx_core.text_encoders.gemma import EmbeddingsProcessorConfigurator

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    parts = {
        "transformer": LTXModelConfigurator.from_config(cfg),
        "vae_enc": VideoEncoderConfigurator.from_config(cfg),
        "vae_dec": VideoDecoderConfigurator.from_config(cfg),
        "aud_enc": AudioEncoderConfigurator.from_config(cfg),
        "aud_dec": AudioDecoderConfigurator.from_config(cfg),
        "vocoder": VocoderConfigurator.from_config(cfg),
        "text": EmbeddingsProcessorConfigurator.from_config(cfg),
    }
    for module in parts.values():
        _randomize(module, generator)
    _stft_buffers(parts["vocoder"])
    text = parts["text"]
    sd: dict[str, torch.Tensor] = {}
    sd |= _prefixed("model.diffusion_model.", parts["transformer"])
    sd |= _prefixed("vae.encoder.", parts["vae_enc"], skip="per_channel_statistics.")
    sd |= _prefixed("vae.decoder.", parts["vae_dec"], skip="per_channel_statistics.")
    sd |= _prefixed("vae.per_channel_statistics.", parts["vae_enc"].per_channel_statistics)
    sd |= _prefixed("audio_vae.encoder.", parts["aud_enc"], skip="per_channel_statistics.")
    sd |= _prefixed("audio_vae.decoder.", parts["aud_dec"], skip="per_channel_statistics.")
    sd |= _prefixed("audio_vae.per_channel_statistics.", parts["aud_enc"].per_channel_statistics)
    sd |= _prefixed("vocoder.", parts["vocoder"])
    sd |= _prefixed(
        "text_embedding_projection.video_aggregate_embed.", text.feature_extractor.video_aggregate_embed
    )
    sd |= _prefixed(
        "text_embedding_projection.audio_aggregate_embed.", text.feature_extractor.audio_aggregate_embed
    )
    sd |= _prefixed("model.diffusion_model.video_embeddings_connector.", text.video_connector)
    sd |= _prefixed("model.diffusion_model.audio_embeddings_connector.", text.audio_connector)
    return {k: v.detach().to(torch.bfloat16).contiguous() for k, v in sd.items()}


def lora_tensors(cfg: dict[str, Any], seed: int, rank: int = 4) -> dict[str, torch.Tensor]:
    """A ComfyUI-layout LoRA (``diffusion_model.<module>.lora_A/B.weight``) on the tiny transformer."""
    from ltx_core.model.transformer import LTXModelConfigurator

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in LTXModelConfigurator.from_config(cfg).state_dict().items()}
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        module = key.removesuffix(".weight")
        if key.endswith(".weight") and len(shape) == 2 and module.endswith(_LORA_TARGETS):
            out[f"diffusion_model.{module}.lora_A.weight"] = 0.1 * torch.randn(
                rank, shape[1], generator=generator
            )
            out[f"diffusion_model.{module}.lora_B.weight"] = 0.1 * torch.randn(
                shape[0], rank, generator=generator
            )
    return {k: v.to(torch.bfloat16) for k, v in out.items()}


def write_ic_lora(path: str | Path, seed: int = 7, reference_downscale_factor: int = 1) -> Path:
    """An IC-LoRA file for the tiny transformer (with the metadata ic_lora.py reads)."""
    path = Path(path)
    save_file(
        lora_tensors(checkpoint_config(), seed),
        str(path),
        metadata={"reference_downscale_factor": str(reference_downscale_factor)},
    )
    return path


def _write_gemma(folder: Path, seed: int) -> None:
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessor

    folder.mkdir(parents=True)
    config = Gemma3Config.from_dict(GEMMA_CONFIG)
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config)
    # The legacy layout of the hub's Gemma 3 checkpoints, which 1.0.0's GEMMA_LLM_KEY_OPS maps.
    renames = (
        ("model.language_model.", "language_model.model."),
        ("model.vision_tower.", "vision_tower.vision_model."),
        ("model.multi_modal_projector.", "multi_modal_projector."),
    )
    sd = {}
    for key, value in model.state_dict().items():
        if key == "lm_head.weight":
            continue  # tied to the embeddings; the key map duplicates embed_tokens into it
        for old, new in renames:
            if key.startswith(old):
                key = new + key[len(old) :]
        sd[key] = value.detach().to(torch.bfloat16).contiguous()
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(GEMMA_CONFIG, indent=1))
    tokenizer = gemma_tokenizer(vocab_size=GEMMA_VOCAB, model_max_length=1024)
    tokenizer.save_pretrained(str(folder))
    # Gemma3Processor reads boi/eoi/image tokens off the tokenizer (the hub's tokenizer_config has them).
    tok_config_path = folder / "tokenizer_config.json"
    tok_config = json.loads(tok_config_path.read_text())
    tok_config["extra_special_tokens"] = dict(
        zip(("boi_token", "eoi_token", "image_token"), IMAGE_TOKENS, strict=True)
    )
    tok_config_path.write_text(json.dumps(tok_config, indent=1))
    (folder / "tokenizer.model").write_bytes(b"")  # found by name; tokenizer.json is what loads
    size = GEMMA_CONFIG["vision_config"]["image_size"]
    Gemma3ImageProcessor(size={"height": size, "width": size}).save_pretrained(str(folder))


def build(dest: str | Path) -> Path:
    """Write tiny-ltx-2.3 at `dest` (temporary sibling, then rename); keep a current one."""
    from i2v.families.ltx2_official import compat

    dest = Path(dest)
    if is_built(dest):
        return dest
    compat.install()
    tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        cfg = checkpoint_config()
        _write_gemma(tmp / GEMMA_FOLDER, seed=3)
        ltx = tmp / LTX_FOLDER
        ltx.mkdir(parents=True)
        meta = {"config": json.dumps(cfg), "model_version": arch.MODEL_VERSION}
        # The text projection's input width is the tiny Gemma's hidden size x (layers + 1).
        with compat.gemma_config_for(tmp / GEMMA_FOLDER):
            for role, seed in (("dev", 0), ("distilled", 1)):
                save_file(
                    _checkpoint_tensors(cfg, seed), str(ltx / WEIGHT_FILES[role].filename), metadata=meta
                )
        save_file(lora_tensors(cfg, seed=5), str(ltx / WEIGHT_FILES["distilled-lora"].filename))
        _write_upsampler(ltx / WEIGHT_FILES["upsampler-x2"].filename)
        (tmp / "tiny.json").write_text(
            json.dumps(
                {
                    "id": TINY_ID,
                    "fingerprint": fingerprint(),
                    "note": "random weights, for tests; not a usable model",
                }
            )
        )
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _write_upsampler(path: Path) -> None:
    from ltx_core.model.upsampler import LatentUpsamplerConfigurator

    torch.manual_seed(2)
    model = LatentUpsamplerConfigurator.from_config(UPSAMPLER_CONFIG)
    save_file(
        {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()},
        str(path),
        metadata={"config": json.dumps(UPSAMPLER_CONFIG)},
    )


def write_test_media(folder: str | Path, size: int = 64, frames: int = 9, fps: int = 24) -> dict[str, Path]:
    """Small inputs for the modes: two images, a mono 22.05 kHz WAV (audio-to-video), and an
    8k+1-frame H.264 mp4 with stereo AAC sound (retake source, IC-LoRA reference)."""
    import av
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    out = {}
    for name, phase in (("first.png", 0.0), ("last.png", 1.5)):
        rgb = np.stack([np.sin(xx / 7 + phase), np.cos(yy / 5 - phase), np.sin((xx + yy) / 9)], -1)
        Image.fromarray(((rgb + 1) * 127.5).astype(np.uint8)).save(folder / name)
        out[name.removesuffix(".png")] = folder / name
    wav, rate = folder / "tone.wav", 22050
    with av.open(str(wav), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="mono")
        t = np.arange(int(rate * 1.0)) / rate
        samples = (0.3 * np.sin(2 * math.pi * 440 * t) * 32767).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    out["audio"] = wav
    out["video"] = write_clip(folder / "source.mp4", size, size, frames, fps)
    return out


def write_clip(
    path: str | Path,
    width: int = 64,
    height: int = 64,
    frames: int = 9,
    fps: int = 24,
    audio_layout: str | None = "stereo",
) -> Path:
    """An H.264 mp4 of `frames` frames (a bar growing left to right) with an AAC tone, or no sound."""
    import av

    path, rate = Path(path), 16000
    with av.open(str(path), "w") as container:
        vs = container.add_stream("libx264", rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuv420p"
        aus = container.add_stream("aac", rate=rate, layout=audio_layout) if audio_layout else None
        for i in range(frames):
            img = np.full((height, width, 3), 40 + 20 * i % 200, dtype=np.uint8)
            img[:, : (i + 1) * width // frames, 0] = 220
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
        if aus is None:
            return path
        t = np.arange(int(rate * frames / fps) + 1024) / rate
        tone = (0.2 * np.sin(2 * math.pi * 330 * t)).astype(np.float32)
        channels = 2 if audio_layout == "stereo" else 1
        interleaved = np.repeat(tone[:, None], channels, axis=1).reshape(1, -1)
        audio = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=audio_layout)
        audio.sample_rate = rate
        resampler = av.AudioResampler(format="fltp", layout=audio_layout, rate=rate)
        for chunk in resampler.resample(audio):
            for packet in aus.encode(chunk):
                container.mux(packet)
        for packet in aus.encode():
            container.mux(packet)
    return path
