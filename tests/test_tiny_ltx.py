"""Tiny LTX-Video / LTX-2 pipelines: built locally, saved, reloaded, run through the real pipeline code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402

from i2v.catalogue.arch_ltx2 import TINY_MAX_SEQUENCE_LENGTH  # noqa: E402
from i2v.families.ltx2.modes import LTX2_0_CALL_KWARGS, MODES, UPSAMPLER_SUBFOLDER  # noqa: E402
from i2v.tiny.ltx import build_tiny_ltx2, build_tiny_ltx_video  # noqa: E402

SIZE, FRAMES, FPS = 64, 9, 24.0
WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".gguf"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models are dominated by intra-op threading overhead: one thread is ~10x faster on a busy
    2-core box (0.09 s vs 0.6-1 s per LTX-2 run), and the timings stop depending on the neighbours."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-ltx")
    return {
        "tiny-ltx-video": build_tiny_ltx_video(root / "tiny-ltx-video"),
        "tiny-ltx-2": build_tiny_ltx2(root / "tiny-ltx-2"),
    }


@pytest.fixture(scope="module")
def ltx_pipe(built):
    pipe = diffusers.LTXImageToVideoPipeline.from_pretrained(built["tiny-ltx-video"], use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def ltx2_pipe(built):
    pipe = diffusers.LTX2ImageToVideoPipeline.from_pretrained(built["tiny-ltx-2"], use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def image() -> PIL.Image.Image:
    return PIL.Image.fromarray((np.random.RandomState(0).rand(SIZE, SIZE, 3) * 255).astype("uint8"))


def _ltx(pipe, image, seed: int):
    return pipe(
        image=image,
        prompt="a cat walks across the kitchen",
        negative_prompt="blurry",
        height=SIZE,
        width=SIZE,
        num_frames=FRAMES,
        frame_rate=int(FPS),
        num_inference_steps=2,
        guidance_scale=3.0,
        output_type="np",
        generator=torch.Generator().manual_seed(seed),
    )


def _ltx2(pipe, image, seed: int, **kwargs):
    args = dict(
        image=image,
        prompt="a cat walks across the kitchen",
        negative_prompt="blurry",
        height=SIZE,
        width=SIZE,
        num_frames=FRAMES,
        frame_rate=FPS,
        num_inference_steps=2,
        max_sequence_length=TINY_MAX_SEQUENCE_LENGTH,
        output_type="np",
        generator=torch.Generator().manual_seed(seed),
        **LTX2_0_CALL_KWARGS,
    )
    args.update(kwargs)
    return pipe(**args)


@pytest.mark.parametrize("tiny_id", ["tiny-ltx-video", "tiny-ltx-2"])
def test_built_dir_is_hub_layout_with_safetensors_only(built, tiny_id: str) -> None:
    dest = built[tiny_id]
    index = json.loads((dest / "model_index.json").read_text())
    for name, value in index.items():
        if not name.startswith("_") and value[0] is not None:
            assert (dest / name).is_dir(), name
    weights = [p for p in dest.rglob("*") if p.suffix in WEIGHT_SUFFIXES]
    assert weights and all(p.suffix == ".safetensors" for p in weights), weights
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(f".{tiny_id}.")]  # temp dir renamed


def test_rebuild_replaces_with_identical_weights(built, tmp_path: Path) -> None:
    dest = build_tiny_ltx_video(tmp_path / "again")
    stale = dest / "stale.txt"
    stale.write_text("old build")
    assert build_tiny_ltx_video(dest) == dest and not stale.exists()
    for path in built["tiny-ltx-video"].rglob("*.safetensors"):
        assert (dest / path.relative_to(built["tiny-ltx-video"])).read_bytes() == path.read_bytes()


def test_registered_with_the_tiny_builders() -> None:
    from i2v.tiny import BUILDERS, smoke_call

    for tiny_id in ("tiny-ltx-video", "tiny-ltx-2"):
        assert BUILDERS[tiny_id] == "i2v.tiny.ltx:build"
        assert smoke_call(tiny_id)["num_frames"] % 8 == 1


def test_tiny_ltx_video_runs(ltx_pipe, image) -> None:
    frames = _ltx(ltx_pipe, image, seed=0).frames
    assert frames.shape == (1, FRAMES, SIZE, SIZE, 3)
    assert np.isfinite(frames).all()


def test_tiny_ltx_video_seeds(ltx_pipe, image) -> None:
    a, b, c = (_ltx(ltx_pipe, image, seed=s).frames for s in (0, 0, 1))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_tiny_ltx2_runs_with_audio(ltx2_pipe, image) -> None:
    out = _ltx2(ltx2_pipe, image, seed=0)
    assert out.frames.shape == (1, FRAMES, SIZE, SIZE, 3)
    assert np.isfinite(out.frames).all()
    sample_rate = ltx2_pipe.vocoder.config.output_sampling_rate
    assert sample_rate == 24000
    audio = out.audio
    assert audio.shape[:2] == (1, 2) and torch.isfinite(audio).all() and audio.abs().max() > 0
    # the causal audio VAE decodes 4 * (latent_frames - 1) + 1 mel frames: within 50 ms of the video
    assert abs(audio.shape[-1] / sample_rate - FRAMES / FPS) < 0.05


def test_tiny_ltx2_seeds(ltx2_pipe, image) -> None:
    a, b, c = (_ltx2(ltx2_pipe, image, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.frames, b.frames)
    torch.testing.assert_close(a.audio, b.audio, rtol=0, atol=0)
    assert np.abs(a.frames - c.frames).max() > 1e-3
    assert (a.audio - c.audio).abs().max() > 1e-6


def test_tiny_ltx2_two_stage_mode(built, ltx2_pipe, image) -> None:
    """The 'two-stage' mode's stages by hand on the tiny model: latent -> x2 upsample -> refine."""
    mode = MODES["two-stage"]
    stage1 = {**mode.stage1.call_kwargs(), "output_type": "latent"}
    latents, audio_latents = _ltx2(ltx2_pipe, image, seed=0, **stage1, return_dict=False)
    assert latents.shape[-2:] == (SIZE // 32, SIZE // 32)

    latent_upsampler = diffusers.pipelines.ltx2.LTX2LatentUpsamplerModel.from_pretrained(
        built["tiny-ltx-2"], subfolder=UPSAMPLER_SUBFOLDER, use_safetensors=True
    )
    upsample = diffusers.LTX2LatentUpsamplePipeline(vae=ltx2_pipe.vae, latent_upsampler=latent_upsampler)
    upsample.set_progress_bar_config(disable=True)
    up = upsample(latents=latents, output_type="latent", return_dict=False)[0]
    assert up.shape[-2:] == (2 * SIZE // 32, 2 * SIZE // 32)

    assert not mode.stage2.dynamic_shift
    scheduler = ltx2_pipe.scheduler
    ltx2_pipe.scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(
        scheduler.config, use_dynamic_shifting=False, shift_terminal=None
    )
    try:
        out = _ltx2(
            ltx2_pipe,
            image,
            seed=0,
            latents=up,
            audio_latents=audio_latents,
            height=2 * SIZE,
            width=2 * SIZE,
            **mode.stage2.call_kwargs(),
        )
    finally:
        ltx2_pipe.scheduler = scheduler
    assert out.frames.shape == (1, FRAMES, 2 * SIZE, 2 * SIZE, 3)
    assert out.audio.shape[:2] == (1, 2)
