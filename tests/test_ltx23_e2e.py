"""All eight ltx-pipelines 1.0.0 modes end to end on tiny-ltx-2.3 under the NPU policy with the dtype
guard (the plain CPU runs go through the CLI and the API: tests/test_ltx23_service.py); plus the warm
second request and the refusal before loading.

The real package code runs on a random-weight model set written in the real file layout and
loaded by the package's own builders (i2v/tiny/ltx23.py, built once per session). torch_npu is
the fake of tests/fake_torch_npu.py (there is no NPU here): it answers the device calls, and the
maths runs on CPU tensors under `NpuDtypeGuard(device_type="cpu")`, which fails the run on any
float64 or complex tensor outside declared host steps.
"""

from __future__ import annotations

import numpy as np
import pytest
from fake_torch_npu import NpuPolicyOnCpu

torch = pytest.importorskip("torch")

from i2v.devices import CpuDevice  # noqa: E402
from i2v.devices.guard import NpuDtypeGuard  # noqa: E402
from i2v.families.ltx2_official import MODES, ImageInput, Ltx23Request, ModelFiles  # noqa: E402
from i2v.families.ltx2_official.components import WarmPolicy  # noqa: E402
from i2v.families.ltx2_official.pipelines import WarmComponents  # noqa: E402
from i2v.families.ltx2_official.runner import run  # noqa: E402
from i2v.lora import LoraRef  # noqa: E402
from i2v.request import InvalidRequestError  # noqa: E402

SIZE, FRAMES, FPS, STEPS = 64, 9, 24, 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from i2v.tiny import ltx23

    root = tmp_path_factory.mktemp("ltx23")
    folder = ltx23.build(root / ltx23.TINY_ID)
    media = ltx23.write_test_media(root / "media", size=SIZE, frames=FRAMES, fps=FPS)
    media["ic_lora"] = ltx23.write_ic_lora(root / "media" / "ic-lora.safetensors")
    return ModelFiles.locate(folder), media


def request_for(mode: str, media: dict) -> Ltx23Request:
    first, last = ImageInput(str(media["first"]), 0, 1.0), ImageInput(str(media["last"]), -1, 0.8)
    inputs = {
        "two-stage": dict(images=(first,)),
        "two-stage-hq": dict(images=(first,)),
        "one-stage": dict(images=(first,)),
        "distilled": dict(images=(first,)),
        "keyframes": dict(images=(first, last)),
        "audio-to-video": dict(audio=str(media["audio"])),
        "retake": dict(video=str(media["video"]), start_time=0.1, end_time=0.3),
        "ic-lora": dict(reference_video=str(media["video"]), loras=(LoraRef(str(media["ic_lora"]), 1.0),)),
    }[mode]
    size = {} if mode == "retake" else dict(height=SIZE, width=SIZE, frames=FRAMES, fps=FPS)
    return Ltx23Request(
        mode=mode, prompt="a red ball rolls across a table", steps=STEPS, seed=3, **size, **inputs
    )


def check_output(out, mode: str, progress: list, tmp_path) -> None:
    from i2v.video import probe_mp4, write_mp4

    assert out.frames.shape == (FRAMES, SIZE, SIZE, 3) and out.frames.dtype == np.float32
    assert np.isfinite(out.frames).all() and np.isfinite(out.audio).all()
    assert 0.0 <= out.frames.min() and out.frames.max() <= 1.0 and out.frames.std() > 0
    duration = FRAMES / FPS
    assert out.audio.dtype == np.float32 and out.audio.shape[0] == 2 and np.abs(out.audio).max() > 0
    assert 0.7 * duration <= out.audio.shape[1] / out.sample_rate <= 1.3 * duration
    total = MODES[mode].total_steps(STEPS)
    assert progress == [(i, total) for i in range(1, total + 1)]
    info = write_mp4(
        out.frames, tmp_path / f"{mode}.mp4", fps=out.fps, audio=out.audio, audio_sample_rate=out.sample_rate
    )
    back = probe_mp4(info.path)
    assert (back.frames, back.width, back.height, back.has_audio, back.audio_channels) == (
        FRAMES,
        SIZE,
        SIZE,
        True,
        2,
    )


@pytest.fixture(scope="module")
def cpu_components(tiny):
    # Gemma, the text projection and the transformers wait in host RAM between their phases (the
    # policy for a 64 GB card); the small models stay on the device.
    return WarmComponents(tiny[0], CpuDevice(), policy=WarmPolicy(text="host", transformer="host"))


class TensorReads:
    """Counts every tensor any code reads through ``safetensors.safe_open`` (what ltx-core's loader
    calls), so a model rebuilt outside the warm cache would show up too."""

    def __init__(self, monkeypatch) -> None:
        import safetensors

        self.tensors = 0
        real, reads = safetensors.safe_open, self

        class Counting:
            def __init__(self, *args, **kwargs):
                self._handle = real(*args, **kwargs)

            def __enter__(self):
                self._inner = self._handle.__enter__()
                return self

            def __exit__(self, *exc):
                return self._handle.__exit__(*exc)

            def get_tensor(self, name):
                reads.tensors += 1
                return self._inner.get_tensor(name)

            def __getattr__(self, name):
                return getattr(self._inner, name)

        monkeypatch.setattr(safetensors, "safe_open", Counting)


def test_second_request_on_a_warm_worker_reads_no_weights(cpu_components, tiny, monkeypatch):
    request = request_for("two-stage", tiny[1])
    first = run(cpu_components, request)  # cold when this test runs alone, else already warm
    before = cpu_components.stats.snapshot()
    assert before.bytes_read > 10_000_000 and before.builds["transformer"] >= 2  # stage 1, stage 2 + LoRA
    reads = TensorReads(monkeypatch)
    second = run(cpu_components, request)
    assert reads.tensors == 0
    after = cpu_components.stats.snapshot()
    assert after.bytes_read == before.bytes_read and after.state_dict_loads == before.state_dict_loads
    assert after.builds == before.builds and after.load_seconds == before.load_seconds
    assert sum(after.hits.values()) - sum(before.hits.values()) >= 9  # every model of the run served warm
    assert np.array_equal(first.frames, second.frames)  # same seed, same models
    big = [
        (k.kind, on_device)
        for k, residency, on_device, _ in cpu_components.cache.resident()
        if residency == "host"
    ]
    assert {"text_encoder", "embeddings_processor", "transformer"} <= {kind for kind, _ in big}
    assert not any(on_device for _, on_device in big)  # parked in host RAM after the run


def test_images_reach_the_pipeline_with_frames_counted_from_the_start(tiny):
    from i2v.families.ltx2_official.runner import _images

    request = request_for("keyframes", tiny[1])
    assert [(im.frame_idx, im.strength) for im in _images(request)] == [(0, 1.0), (FRAMES - 1, 0.8)]


def test_pipelines_get_the_device_the_quantization_and_warm_ledgers(tiny):
    from i2v.families.ltx2_official.components import WarmLedger

    components = WarmComponents(tiny[0], CpuDevice())
    one = components.pipeline("one-stage", quantization="fp8-cast")  # built, nothing loaded
    assert isinstance(one.model_ledger, WarmLedger) and one.model_ledger.device == torch.device("cpu")
    assert one.model_ledger.quantization.sd_ops.name == "TRANSFORMER_LINEAR_DOWNCAST_MAP"
    two = components.pipeline("two-stage")
    assert two.stage_2_model_ledger.loras[-1].strength == 0.8  # the distilled LoRA, as the seed runs it
    variant = two.stage_1_model_ledger.with_additional_loras(two.stage_2_model_ledger.loras[-1:])
    assert isinstance(variant, WarmLedger) and variant._cache is components.cache
    assert components.pipeline("two-stage") is two and components.stats.state_dict_loads == 0


def test_bad_request_is_refused_before_anything_loads(tiny):
    components = WarmComponents(tiny[0], CpuDevice())
    with pytest.raises(InvalidRequestError, match="`audio` = None"):
        run(
            components,
            Ltx23Request(mode="audio-to-video", prompt="x", height=SIZE, width=SIZE, frames=FRAMES),
        )
    assert components.stats.state_dict_loads == 0 and not components.stats.builds


@pytest.fixture(scope="module")
def npu(tiny):
    """Warm components on the NPU policy, with the fake torch_npu installed for this module's NPU tests."""
    import fake_torch_npu

    with fake_torch_npu.installed() as fake:
        yield WarmComponents(tiny[0], NpuPolicyOnCpu(), torch.device("cpu")), fake


@pytest.mark.parametrize("mode", list(MODES))
def test_mode_runs_under_the_npu_policy_with_the_dtype_guard(npu, tiny, mode, tmp_path):
    components, fake = npu
    fake.calls.clear()
    progress: list[tuple[int, int]] = []
    with NpuDtypeGuard(device_type="cpu"):
        out = run(components, request_for(mode, tiny[1]), progress=lambda d, t: progress.append((d, t)))
    check_output(out, mode, progress, tmp_path)
    if mode == "audio-to-video":  # the output carries the input track (mono 22.05 kHz, upmixed)
        assert out.sample_rate == 22050 and np.allclose(out.audio[0], out.audio[1])
        assert any("mono input upmixed to stereo" in n for n in out.notes)
    # 1.0.0's unconditional torch.cuda.synchronize()/empty_cache() went to torch.npu instead.
    assert {"synchronize", "empty_cache"} <= set(fake.calls)
