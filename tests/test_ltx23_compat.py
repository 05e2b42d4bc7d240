"""Each compat patch: its guard passes on the pinned 1.0.0 package and fails on a changed one, and
the patch does what it says (the unpatched 1.0.0 code fails the same check).

Drift is simulated by handing a patch's check the targets it gathered with one of them replaced
(another function, another SDOps, another version string): exactly what a new package release
would present to it.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

torch = pytest.importorskip("torch")

from i2v.devices import CpuDevice, NpuDevice  # noqa: E402
from i2v.devices.guard import NpuDtypeGuard, UnsupportedOnNpuError  # noqa: E402
from i2v.families.ltx2_official import compat, scope  # noqa: E402

compat.install()
PATCHES = {p.name: p for p in compat.PATCHES}


class RecordingCpu(CpuDevice):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def synchronize(self, index: int = 0) -> None:
        self.calls.append("synchronize")

    def empty_cache(self) -> None:
        self.calls.append("empty_cache")


class NpuPolicyOnCpu(NpuDevice):
    """The NPU policy flags (no float64, complex steps on the host) with CPU compute; no torch_npu needed."""

    def synchronize(self, index: int = 0) -> None:
        pass

    def empty_cache(self) -> None:
        pass


def _another_function():
    return None


def _drifted(name: str, key: str, value: object) -> dict:
    targets = compat.pristine_targets(name)
    targets[key] = value
    return targets


@pytest.mark.parametrize("name", list(PATCHES))
def test_guard_accepts_the_pinned_package(name):
    PATCHES[name].check(compat.pristine_targets(name))


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("gemma-transformers-5", "create_and_populate"),
        ("gemma-config-from-root", "_create_feature_extractor"),
        ("device-sync", "cleanup_memory"),
        ("step-progress", "euler_denoising_loop"),
        ("res2s-float32", "res2s_audio_video_denoising_loop"),
        ("res2s-float32", "_inject_sde_noise"),
        ("mel-on-host", "waveform_to_mel"),
    ],
)
def test_guard_refuses_a_changed_function(name, key):
    with pytest.raises(compat.PatchDriftError, match=f"compat patch '{name}'.*{key}"):
        PATCHES[name].check(_drifted(name, key, _another_function))


def test_guard_refuses_changed_objects_around_the_functions():
    from ltx_core.loader.sd_ops import SDOps

    with pytest.raises(compat.PatchDriftError, match="transformers 5"):
        PATCHES["gemma-transformers-5"].check(_drifted("gemma-transformers-5", "transformers", "4.57.1"))
    with pytest.raises(compat.PatchDriftError, match="replacement"):
        PATCHES["gemma-transformers-5"].check(
            _drifted("gemma-transformers-5", "GEMMA_LLM_KEY_OPS", SDOps("X"))
        )
    with pytest.raises(compat.PatchDriftError, match="is not the config module's"):
        PATCHES["gemma-config-from-root"].check(_drifted("gemma-config-from-root", "held", object()))
    with pytest.raises(compat.PatchDriftError, match="no longer imports"):
        PATCHES["res2s-float32"].check(_drifted("res2s-float32", "held", _another_function))
    targets = compat.pristine_targets("device-sync")
    module, (held, source, cleanup) = next(iter(targets["modules"].items()))
    targets["modules"][module] = (held, source + "\ntorch.cuda.Stream()\n", cleanup)
    with pytest.raises(compat.PatchDriftError, match=r"calls torch.cuda.\['Stream'\]"):
        PATCHES["device-sync"].check(targets)


def test_versions_are_pinned():
    compat.check_versions()
    with pytest.raises(compat.PatchDriftError, match="ltx-core is 1.1.4, not 1.0.0"):
        compat.check_versions(lambda dist: "1.1.4" if dist == "ltx-core" else "1.0.0")


def test_device_sync_routes_to_the_run_device_and_falls_back_outside_a_run(monkeypatch):
    import gc

    from ltx_pipelines import ti2vid_two_stages
    from ltx_pipelines.utils import helpers

    collections = []
    monkeypatch.setattr(gc, "collect", lambda *a: collections.append(a) or 0)
    device = RecordingCpu()
    with scope.run_scope(device):
        ti2vid_two_stages.torch.cuda.synchronize()
        ti2vid_two_stages.cleanup_memory()
        helpers.cleanup_memory()
    assert device.calls == ["synchronize", "empty_cache", "synchronize", "empty_cache", "synchronize"]
    assert collections == []  # no gc.collect() inside a warm run
    if not torch.cuda.is_available():  # outside a run: 1.0.0's own call, which needs CUDA
        with pytest.raises((AssertionError, RuntimeError)):
            ti2vid_two_stages.torch.cuda.synchronize()
        assert ti2vid_two_stages.torch.bfloat16 is torch.bfloat16


def test_step_progress_ticks_inside_a_run_only():
    from ltx_pipelines.utils import samplers

    seen = []
    ticker = scope.StepTicker(total=3, callback=lambda done, total: seen.append((done, total)))
    with scope.run_scope(CpuDevice(), ticker):
        assert list(samplers.tqdm(range(3))) == [0, 1, 2]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    bar = samplers.tqdm(range(2), disable=True)
    assert type(bar).__name__ == "tqdm" and list(bar) == [0, 1]


def _res2s_inputs():
    from ltx_core.components.diffusion_steps import Res2sDiffusionStep
    from ltx_core.types import LatentState

    def state(tokens: int) -> LatentState:
        g = torch.Generator().manual_seed(tokens)
        latent = torch.randn(1, tokens, 8, generator=g).to(torch.bfloat16)
        return LatentState(
            latent=latent,
            denoise_mask=torch.ones(1, tokens, 1),
            positions=torch.zeros(1, 3, tokens, 2),
            clean_latent=torch.zeros_like(latent),
        )

    def denoise(video_state, audio_state, sigmas, step_index):
        return 0.5 * video_state.latent, 0.5 * audio_state.latent

    sigmas = torch.tensor([1.0, 0.6, 0.3, 0.0])
    return dict(
        sigmas=sigmas,
        video_state=state(6),
        audio_state=state(4),
        stepper=Res2sDiffusionStep(),
        denoise_fn=denoise,
        noise_seed=1,
    )


def test_res2s_runs_in_float32_under_the_npu_policy_only():
    from ltx_pipelines import ti2vid_two_stages_hq

    unpatched = compat.pristine_targets("res2s-float32")["res2s_audio_video_denoising_loop"]
    with pytest.raises(UnsupportedOnNpuError, match="float64"), NpuDtypeGuard(device_type="cpu"):
        unpatched(**_res2s_inputs())
    with scope.run_scope(NpuPolicyOnCpu()), NpuDtypeGuard(device_type="cpu"):
        video32, _ = ti2vid_two_stages_hq.res2s_audio_video_denoising_loop(**_res2s_inputs())
    assert video32.latent.dtype == torch.bfloat16 and torch.isfinite(video32.latent.float()).all()
    # Same maths in the other precision: with the SDE noise taken out (float64 and float32 draws from
    # one seed differ), 1.0.0's loop (what the dispatcher runs outside the policy) agrees.
    quiet = {"new_noise_fn": lambda x, generator: torch.zeros(x.shape, dtype=torch.float32)}
    with scope.run_scope(NpuPolicyOnCpu()), NpuDtypeGuard(device_type="cpu"):
        video32, _ = ti2vid_two_stages_hq.res2s_audio_video_denoising_loop(**_res2s_inputs(), **quiet)
    video64, _ = ti2vid_two_stages_hq.res2s_audio_video_denoising_loop(**_res2s_inputs(), **quiet)
    assert video64.latent.float().abs().mean() > 1e-2  # not trivially zero
    assert torch.allclose(video32.latent.float(), video64.latent.float(), atol=1e-3)


def test_mel_runs_on_the_host_under_the_npu_policy():
    from ltx_core.model.audio_vae.ops import AudioProcessor
    from ltx_core.types import Audio

    processor = AudioProcessor(target_sample_rate=16000, mel_bins=64, mel_hop_length=160, n_fft=1024)
    audio = Audio(
        waveform=torch.randn(1, 2, 4000, generator=torch.Generator().manual_seed(0)), sampling_rate=22050
    )
    unpatched = compat.pristine_targets("mel-on-host")["waveform_to_mel"]
    with pytest.raises(UnsupportedOnNpuError, match="complex"), NpuDtypeGuard(device_type="cpu"):
        unpatched(processor, audio)
    with scope.run_scope(NpuPolicyOnCpu()), NpuDtypeGuard(device_type="cpu"):
        mel = processor.waveform_to_mel(audio)
    assert mel.shape[-1] == 64 and mel.dtype == torch.float32
    assert torch.equal(mel, processor.waveform_to_mel(audio))  # same maths as 1.0.0's own path
    assert isinstance(processor.mel_transform, torch.nn.Module)  # put back after the call


def test_gemma_key_map_and_populator_fit_transformers_5(tmp_path):
    from ltx_core.text_encoders.gemma import GemmaTextEncoderConfigurator
    from ltx_pipelines.utils import model_ledger

    from i2v.tiny.ltx23 import GEMMA_CONFIG

    key = "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight"
    assert (
        model_ledger.GEMMA_LLM_KEY_OPS.apply_to_key(key)
        == "model.model.vision_tower.encoder.layers.0.mlp.fc1.weight"
    )
    legacy = compat.pristine_targets("gemma-transformers-5")["GEMMA_LLM_KEY_OPS"]
    assert legacy.apply_to_key(key) == "model.model.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight"
    (tmp_path / "config.json").write_text(json.dumps(GEMMA_CONFIG))
    with compat.gemma_config_for(tmp_path), torch.device("meta"):
        encoder = GemmaTextEncoderConfigurator.from_config({})
    original = compat.pristine_targets("gemma-transformers-5")["create_and_populate"]
    with pytest.raises(AttributeError, match="vision_model"):
        original(encoder)
    populated = model_ledger.GEMMA_MODEL_OPS.mutator(encoder)
    assert not [n for n, b in populated.named_buffers() if b.device.type == "meta"]


def test_gemma_config_comes_from_a_root_that_differs(tmp_path):
    from ltx_core.text_encoders.gemma.config import GEMMA3_CONFIG_FOR_LTX
    from ltx_core.text_encoders.gemma.encoders import encoder_configurator as ec

    from i2v.tiny.ltx23 import GEMMA_CONFIG

    real = tmp_path / "real"
    real.mkdir()
    (real / "config.json").write_text(json.dumps(GEMMA3_CONFIG_FOR_LTX.to_dict()))
    assert compat.root_gemma_config(real) is None  # the 12B root builds exactly as upstream
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    (tiny / "config.json").write_text(json.dumps(GEMMA_CONFIG))
    with compat.gemma_config_for(tiny) as differs:
        assert differs and ec.GEMMA3_CONFIG_FOR_LTX.text_config.hidden_size == 32
    assert ec.GEMMA3_CONFIG_FOR_LTX.text_config.hidden_size == 3840
    assert dataclasses.asdict(GEMMA3_CONFIG_FOR_LTX) == ec.GEMMA3_CONFIG_FOR_LTX.to_dict()
