"""LTX-2 modes on tiny-ltx-2 through the engine: every supported mode runs, the others are refused
before anything loads, and the modes' inputs and files are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from i2v import catalogue  # noqa: E402
from i2v.devices import CpuDevice  # noqa: E402
from i2v.engine import Engine  # noqa: E402
from i2v.families import MissingModeWeightsError, resolve_class  # noqa: E402
from i2v.families.ltx2 import Ltx2Diffusers  # noqa: E402
from i2v.families.ltx2.modes import (  # noqa: E402
    DISTILLED_LORA,
    DISTILLED_SIGMAS,
    DISTILLED_TRANSFORMER,
    LTX2_0_CALL_KWARGS,
    MODES,
    STAGE_2_DISTILLED_SIGMAS,
)
from i2v.request import InvalidRequestError, UnsupportedModeError, resolve  # noqa: E402
from i2v.settings import Settings  # noqa: E402
from i2v.video import probe_mp4, write_mp4  # noqa: E402

MODEL = "tiny-ltx-2"
HEIGHT, WIDTH, FRAMES = 64, 128, 17  # not the tiny defaults (64x64x9): the request's values must win
SUPPORTED = ("one-stage", "two-stage", "distilled", "keyframes", "ic-lora")
UNSUPPORTED = ("two-stage-hq", "audio-to-video", "retake")
MODE_NAMES = (
    "two-stage",
    "two-stage-hq",
    "one-stage",
    "distilled",
    "keyframes",
    "audio-to-video",
    "retake",
    "ic-lora",
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threading overhead dominates (tests/test_tiny_ltx.py)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def engine(models) -> Engine:
    return Engine(Settings(models_dir=models, device="cpu"), device=CpuDevice())


@pytest.fixture(scope="module")
def folder(engine) -> Path:
    from i2v.engine import ensure_weights

    return ensure_weights(catalogue.get(MODEL), engine.settings)  # the tiny build, with its extras


def picture(seed: int, height: int = HEIGHT, width: int = WIDTH):
    from PIL import Image

    return Image.fromarray((np.random.RandomState(seed).rand(height, width, 3) * 255).astype("uint8"))


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    from i2v.tiny.build import build_pipeline
    from i2v.tiny.lora import write_random_lora

    root = tmp_path_factory.mktemp("media")
    paths = {"last": root / "last.png", "other_last": root / "other_last.png"}
    picture(1).save(paths["last"])
    picture(2).save(paths["other_last"])
    for name, seed in (("reference", 3), ("other_reference", 4)):
        paths[name] = root / f"{name}.mp4"
        frames = np.random.RandomState(seed).rand(FRAMES + 3, HEIGHT, WIDTH, 3).astype("float32")
        write_mp4(frames, paths[name], fps=8)
    paths["ic_lora"] = write_random_lora(build_pipeline(MODEL).transformer, root / "ic.safetensors", seed=7)
    return paths


def request(mode: str | None = None, **fields):
    return resolve(
        catalogue.get(MODEL),
        "standard",
        prompt="a ball rolls",
        mode=mode,
        height=HEIGHT,
        width=WIDTH,
        frames=FRAMES,
        **fields,
    )


def inputs_for(mode: str, media) -> dict:
    if mode == "keyframes":
        return {"last_image": media["last"]}
    if mode == "ic-lora":
        return {"reference_video": media["reference"], "loras": [str(media["ic_lora"])]}
    return {}


def test_modes_of_the_catalogue_entry():
    for model in ("ltx-2", MODEL):
        adapter = catalogue.get(model).adapter
        assert isinstance(adapter, Ltx2Diffusers) and adapter.modes is MODES
        assert adapter.default_mode == "one-stage"
        assert tuple(m for m, mode in adapter.modes.items() if mode.supported) == tuple(
            m for m in MODES if m in SUPPORTED
        )
    assert resolve(catalogue.get(MODEL)).mode == "one-stage"
    assert resolve(catalogue.get("tiny-wan2.1-i2v")).mode is None


def test_modes_cover_the_eight_ltx_pipelines():
    assert tuple(MODES) == MODE_NAMES
    for name, mode in MODES.items():
        assert mode.supported == (name in SUPPORTED)
        if not mode.supported:
            assert len(mode.reason) > 40, name


@pytest.mark.parametrize("name", SUPPORTED)
def test_supported_mode_names_real_classes_and_arguments(name: str) -> None:
    import inspect

    import diffusers

    mode = MODES[name]
    pipeline_cls = resolve_class(mode.pipeline_cls)
    assert issubclass(pipeline_cls, diffusers.DiffusionPipeline)
    call = set(inspect.signature(pipeline_cls.__call__).parameters)
    assert {*LTX2_0_CALL_KWARGS, *mode.stage1.call_kwargs()} <= call, name
    if mode.stage2 is not None:
        assert set(mode.stage2.call_kwargs()) <= call, name
        upsample = resolve_class("diffusers.LTX2LatentUpsamplePipeline")
        assert "latent_upsampler" in inspect.signature(upsample.__init__).parameters
        # stage 2's scheduler switches these off (i2v.families.ltx2.run._scheduler)
        assert {"use_dynamic_shifting", "shift_terminal"} <= set(
            diffusers.FlowMatchEulerDiscreteScheduler().config
        )


def test_mode_sigmas_match_diffusers() -> None:
    from diffusers.pipelines.ltx2 import utils

    assert list(DISTILLED_SIGMAS) == utils.DISTILLED_SIGMA_VALUES
    assert list(STAGE_2_DISTILLED_SIGMAS) == utils.STAGE_2_DISTILLED_SIGMA_VALUES


@pytest.mark.parametrize("mode", SUPPORTED)
def test_supported_mode_gives_the_requested_frames_and_audio(engine, folder, media, mode):
    seen = []
    result = engine.generate(request(mode, **inputs_for(mode, media)), picture(0), seen.append)
    output = result.output
    assert output.frames.shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert np.isfinite(output.frames).all() and output.frames.std() > 0
    assert output.audio.shape[0] == 2 and output.audio_sample_rate == 24000
    assert abs(output.audio.shape[1] / 24000 - FRAMES / 8) < 0.1  # fps 8: the clip's length
    steps = [p for p in seen if p.stage == "denoising"]
    if mode == "one-stage":
        assert steps[-1].step == steps[-1].total == 2
    else:  # stage 1 (2 guided steps, or the 8 distilled ones) + the 3 steps of stage 2
        assert steps[-1].step == steps[-1].total == (8 if mode == "distilled" else 2) + 3
        assert any(f"stage 1 at {WIDTH // 2}x{HEIGHT // 2}" in note for note in result.plan.notes)


def test_two_stage_uses_the_distilled_lora_in_stage_2_only(engine, folder):
    from i2v.lora import loaded_adapters

    result = engine.generate(request("two-stage"), picture(0))
    assert any(f"stage 2 at {WIDTH}x{HEIGHT} with {DISTILLED_LORA} at 1" in n for n in result.plan.notes)
    assert len(loaded_adapters(engine._pipe)) == 1  # kept loaded for the next two-stage request
    one = engine.generate(request(), picture(0))  # ... but never leaks into another mode
    assert loaded_adapters(engine._pipe) == set() and not one.plan.notes


def test_distilled_mode_loads_the_distilled_transformer(engine, folder):
    engine.generate(request("distilled"), picture(0))
    distilled = engine._pipe.transformer
    engine.generate(request(), picture(0))
    assert engine._pipe.transformer is not distilled  # one-stage: the dev transformer again


@pytest.mark.parametrize("mode", UNSUPPORTED)
def test_unsupported_modes_are_refused_with_the_reason(mode):
    with pytest.raises(UnsupportedModeError) as info:
        request(mode)
    assert str(info.value) == f"`mode` = {mode!r} is not supported yet: {MODES[mode].reason}"
    assert info.value.field == "mode"


def test_unsupported_mode_never_loads_a_model(folder, models):
    from i2v.request import GenerationRequest

    fresh = Engine(Settings(models_dir=models, device="cpu"), device=CpuDevice())
    raw = GenerationRequest(
        model=MODEL,
        preset="standard",
        height=64,
        width=64,
        frames=9,
        steps=2,
        guidance=3.0,
        fps=8,
        mode="retake",
    )  # past validation: the engine refuses it too
    with pytest.raises(UnsupportedModeError, match="not supported yet"):
        fresh.generate(raw, picture(0))
    assert fresh._pipe is None


def test_input_audio_is_not_supported_yet(tmp_path):
    audio = tmp_path / "voice.wav"
    _write_wav(audio, channels=1)
    for mode in (None, "audio-to-video"):
        with pytest.raises(
            UnsupportedModeError, match="not supported yet: no diffusers 0.42.1 pipeline takes input audio"
        ) as info:
            request(mode, audio=audio)
        assert "'audio-to-video'" in str(info.value) and info.value.mode == "audio-to-video"


def test_unknown_mode_names_the_valid_ones():
    with pytest.raises(InvalidRequestError) as info:
        request("fast-forward")
    err = info.value
    assert (err.field, err.value) == ("mode", "fast-forward")
    assert "one-stage, distilled, keyframes, ic-lora" in str(err).replace("two-stage, ", "")
    assert "not supported yet: two-stage-hq, audio-to-video, retake" in str(err)


def test_models_without_modes_refuse_a_mode():
    with pytest.raises(InvalidRequestError, match=r"`mode` = 'two-stage' is invalid: tiny-svd has no modes"):
        resolve(catalogue.get("tiny-svd"), "standard", mode="two-stage")


def test_two_stage_sizes_must_halve_onto_the_vae_grid():
    with pytest.raises(InvalidRequestError) as info:
        resolve(catalogue.get("ltx-2"), "standard", mode="two-stage", height=480)
    assert info.value.field == "height" and info.value.nearest == 448 and "multiple of 64" in str(info.value)
    resolve(catalogue.get("ltx-2"), "standard", mode="one-stage", height=480)  # one pass: 32 is enough


def test_mode_inputs_are_required_and_exclusive(media):
    with pytest.raises(
        InvalidRequestError, match=r"`last_image` = None is invalid: mode 'keyframes' needs it"
    ):
        request("keyframes")
    with pytest.raises(InvalidRequestError, match=r"only mode 'keyframes' takes it"):
        request("two-stage", last_image=media["last"])
    with pytest.raises(InvalidRequestError, match=r"mode 'ic-lora' needs an IC-LoRA"):
        request("ic-lora", reference_video=media["reference"])
    with pytest.raises(InvalidRequestError, match=r"`reference_video` = .* no such file"):
        request("ic-lora", reference_video="nowhere.mp4", loras=[str(media["ic_lora"])])


def test_keyframes_follow_the_last_image(engine, folder, media):
    a, b, c = (
        engine.generate(request("keyframes", last_image=media[name]), picture(0)).output.frames
        for name in ("last", "last", "other_last")
    )
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3  # same seed, same first image: only the last image differs


def test_ic_lora_follows_the_reference_video(engine, folder, media):
    def run(reference):
        return engine.generate(
            request("ic-lora", reference_video=media[reference], loras=[str(media["ic_lora"])]), picture(0)
        ).output.frames

    a, b, c = run("reference"), run("reference"), run("other_reference")
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def _partial_copy(folder: Path, dest: Path, leave_out: set[str]) -> Path:
    """``folder`` as symlinks, without ``leave_out`` (and without the manifest, which would miss them)."""
    dest.mkdir(parents=True)
    for item in folder.iterdir():
        if item.name not in leave_out and item.name != "i2v-manifest.json":
            (dest / item.name).symlink_to(item, target_is_directory=item.is_dir())
    return dest


def _engine_over(folder: Path, tmp_path: Path, leave_out: set[str]) -> Engine:
    models = tmp_path / "models"
    _partial_copy(folder, models / MODEL, leave_out)
    return Engine(Settings(models_dir=models, device="cpu"), device=CpuDevice())


def test_two_stage_without_the_distilled_lora_runs_and_says_so(folder, tmp_path):
    partial = _engine_over(folder, tmp_path, {DISTILLED_LORA})
    result = partial.generate(request("two-stage"), picture(0))
    assert result.output.frames.shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert any(
        "stage 2 runs without the distilled LoRA" in n and DISTILLED_LORA in n for n in result.plan.notes
    )


def test_distilled_without_distilled_weights_names_what_is_missing(folder, tmp_path):
    partial = _engine_over(folder, tmp_path, {DISTILLED_LORA, DISTILLED_TRANSFORMER})
    with pytest.raises(MissingModeWeightsError) as info:
        partial.generate(request("distilled"), picture(0))
    assert DISTILLED_TRANSFORMER in str(info.value) and DISTILLED_LORA in str(info.value)
    assert partial._pipe is None


def test_distilled_falls_back_to_the_distilled_lora(folder, tmp_path):
    partial = _engine_over(folder, tmp_path, {DISTILLED_TRANSFORMER})
    result = partial.generate(request("distilled"), picture(0))
    assert result.output.frames.shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert any(f"dev weights + {DISTILLED_LORA}" in n for n in result.plan.notes)


def test_two_stage_without_the_upsampler_is_refused(folder, tmp_path):
    partial = _engine_over(folder, tmp_path, {"latent_upsampler"})
    with pytest.raises(MissingModeWeightsError, match="latent_upsampler/ is missing"):
        partial.generate(request("two-stage"), picture(0))


def test_cli_two_stage_writes_an_mp4_with_audio(folder, models, tmp_path):
    out = tmp_path / "two.mp4"
    env = os.environ | {"I2V_MODELS_DIR": str(models), "I2V_DEVICE": "cpu"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "i2v",
            "generate",
            "--model",
            MODEL,
            "--mode",
            "two-stage",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    info = probe_mp4(out)
    assert (info.frames, info.height, info.width, info.has_audio) == (9, 64, 64, True)
    data = json.loads(result.stdout)
    assert data["request"]["mode"] == "two-stage" and any(
        "stage 1 at 32x32" in n for n in data["plan"]["notes"]
    )


def test_cli_refuses_an_unsupported_mode_before_loading(tmp_path):
    from typer.testing import CliRunner

    from i2v.cli import app

    result = CliRunner().invoke(
        app,
        ["generate", "--model", MODEL, "--mode", "retake", "--out", str(tmp_path / "x.mp4")],
        env={"I2V_MODELS_DIR": str(tmp_path / "none")},
    )
    assert result.exit_code == 2 and "`mode` = 'retake' is not supported yet" in result.output
    assert not (tmp_path / "none").exists() and not (tmp_path / "x.mp4").exists()


# --- the input side of audio-to-video -------------------------------------------------------------


def _write_wav(path: Path, channels: int, rate: int = 16000) -> np.ndarray:
    t = np.arange(rate // 4) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    samples = np.stack([tone // (c + 1) for c in range(channels)], axis=1)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return samples.T / 32768.0


@pytest.mark.parametrize("channels", [1, 2])
def test_load_audio_gives_stereo(tmp_path, channels):
    from i2v.audio import load_audio

    path = tmp_path / "in.wav"
    source = _write_wav(path, channels)
    samples, rate = load_audio(path)
    assert rate == 16000 and samples.dtype == np.float32 and samples.shape == (2, source.shape[1])
    np.testing.assert_allclose(samples[0], source[0], atol=1e-6)
    np.testing.assert_allclose(
        samples[1], source[0] if channels == 1 else source[1], atol=1e-6
    )  # mono: copied


def test_load_audio_refuses_what_is_not_audio(tmp_path):
    from i2v.audio import load_audio

    bogus = tmp_path / "notes.wav"
    bogus.write_text("not audio")
    with pytest.raises(InvalidRequestError, match="`audio` = .* is not readable audio"):
        load_audio(bogus)
