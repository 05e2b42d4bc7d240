"""NpuDtypeGuard, and the NPU precision policy run on CPU under it (tiny real LTX-2 modules)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i2v.devices import CpuDevice, NpuDevice
from i2v.devices.guard import NpuDtypeGuard, UnsupportedOnNpuError, host_ops
from i2v.families.ltx2 import Ltx2Diffusers


@pytest.fixture
def guard():
    """The NPU policy simulated on CPU: CPU tensors stand for NPU tensors."""
    return NpuDtypeGuard(device_type="cpu")


def test_raises_on_float64_factory(guard):
    with guard, pytest.raises(UnsupportedOnNpuError) as caught:
        torch.ones(2, dtype=torch.float64)
    error = caught.value
    assert error.op == "aten.ones.default" and error.dtype == torch.float64
    assert "test_npu_guard.py" in error.where  # the hint points at the line that asked for float64
    assert "aten.ones.default produced a torch.float64 tensor on 'cpu'" in str(error)


def test_raises_on_upcast_to_float64(guard):
    x = torch.ones(3)
    with guard, pytest.raises(UnsupportedOnNpuError, match=r"aten._to_copy.default produced a torch.float64"):
        x.double()


@pytest.mark.parametrize(
    "complex_op",
    [
        lambda: torch.fft.rfft(torch.ones(16)),
        lambda: torch.stft(torch.randn(512), n_fft=64, window=torch.hann_window(64), return_complex=True),
        lambda: torch.polar(torch.ones(4), torch.zeros(4)),
    ],
)
def test_raises_on_complex_results(guard, complex_op):
    with (
        guard,
        pytest.raises(UnsupportedOnNpuError, match=r"torch.complex64 tensor .* run this step on the CPU"),
    ):
        complex_op()


def test_passes_float32_and_bf16_work(guard):
    torch.manual_seed(0)
    layer = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.GELU(), torch.nn.Flatten(), torch.nn.LazyLinear(4)
    )
    with guard:
        y = layer(torch.randn(2, 3, 8, 8))
        q = torch.randn(1, 2, 16, 8, dtype=torch.bfloat16)
        z = torch.nn.functional.scaled_dot_product_attention(q, q, q)
        w = (y.softmax(-1) @ torch.randn(4, 4)).to(torch.bfloat16).float()
        s = torch.tensor([0.5, 0.25]) * 2.0  # Python floats become float32, not float64
    assert y.dtype == w.dtype == s.dtype == torch.float32 and z.dtype == torch.bfloat16


def test_host_data_is_exempt_until_it_is_computed_on(guard):
    """`torch.from_numpy` / `torch.tensor` make host tensors (on a real NPU they stay on the CPU until moved);
    casting them down is fine, computing with them in float64 is not."""
    sigmas = np.linspace(1.0, 0.1, 8)  # float64, as diffusers' pipelines build them
    with guard:
        assert torch.from_numpy(sigmas).to(torch.float32).dtype == torch.float32
        with pytest.raises(UnsupportedOnNpuError, match="aten.mul.Tensor"):
            torch.from_numpy(sigmas) * 2


def test_guard_on_npu_ignores_host_tensors():
    """On a real NPU compute and host are different devices: CPU float64/complex work is not its business."""
    with NpuDtypeGuard(device_type="npu"):
        torch.fft.rfft(torch.ones(16, dtype=torch.float64))


def test_host_sections_are_exempt_only_while_open(guard):
    wave = torch.randn(1024)
    with guard:
        with host_ops():
            magnitude = torch.stft(wave, 64, window=torch.hann_window(64), return_complex=True).abs()
        with guard.allow_host_ops():
            torch.ones(2, dtype=torch.float64)
        with pytest.raises(UnsupportedOnNpuError):
            torch.stft(wave, 64, window=torch.hann_window(64), return_complex=True)
    assert magnitude.dtype == torch.float32


def test_run_complex_step_follows_the_policy(guard):
    """A mel-like step (STFT magnitude): NPU policy runs it on the host; the real-valued result is returned."""

    def spectrogram(wave: torch.Tensor) -> torch.Tensor:
        return (
            torch.stft(wave, 64, hop_length=16, window=torch.hann_window(64), return_complex=True).abs() ** 2
        )

    wave = torch.randn(2, 1024)
    with guard:
        power = NpuDevice().run_complex_step(spectrogram, wave)
        with pytest.raises(UnsupportedOnNpuError):
            CpuDevice().run_complex_step(
                spectrogram, wave
            )  # CPU allows complex: runs in place, guard objects
    assert power.dtype == torch.float32
    assert torch.allclose(power, spectrogram(wave))


def rope_frequencies(positions: torch.Tensor, dim: int, dtype: torch.dtype, theta: float = 10000.0):
    """RoPE the way Wan / LTX build it: frequencies in high precision, angles cast to float32."""
    exponents = torch.arange(0, dim, 2, dtype=dtype) / dim
    inv_freq = 1.0 / theta**exponents
    angles = positions.to(dtype)[:, None] * inv_freq[None, :]
    return angles.cos().float(), angles.sin().float()


def test_float64_rope_is_caught_and_the_policy_dtype_passes(guard):
    positions = torch.arange(64)
    with (
        guard,
        pytest.raises(UnsupportedOnNpuError, match=r"aten.arange.start_step produced a torch.float64"),
    ):
        rope_frequencies(positions, 32, torch.float64)
    with guard:
        cos32, sin32 = rope_frequencies(positions, 32, NpuDevice().high_precision_dtype)
    cos64, sin64 = rope_frequencies(positions, 32, CpuDevice().high_precision_dtype)
    assert torch.allclose(cos32, cos64, atol=1e-4) and torch.allclose(sin32, sin64, atol=1e-4)


# -- diffusers' LTX-2, tiny and real ---------------------------------------------------------
def tiny_ltx2_transformer():
    from diffusers import LTX2VideoTransformer3DModel

    torch.manual_seed(0)
    return LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=1,
        caption_channels=16,
    )


def ltx2_inputs(frames: int = 2, height: int = 2, width: int = 2, audio_frames: int = 3) -> dict:
    torch.manual_seed(1)
    return dict(
        hidden_states=torch.randn(1, frames * height * width, 4),
        audio_hidden_states=torch.randn(1, audio_frames, 4),
        encoder_hidden_states=torch.randn(1, 5, 16),
        audio_encoder_hidden_states=torch.randn(1, 5, 16),
        timestep=torch.full((1,), 500.0),
        num_frames=frames,
        height=height,
        width=width,
        audio_num_frames=audio_frames,
        return_dict=False,
    )


def test_ltx2_transformer_rope_is_float64_by_default_and_the_policy_fixes_it(guard):
    model = tiny_ltx2_transformer()
    inputs = ltx2_inputs()
    with torch.no_grad():
        reference = model(**inputs)
        with (
            guard,
            pytest.raises(UnsupportedOnNpuError, match=r"aten.linspace.default .* transformer_ltx2.py:\d+"),
        ):
            model(**inputs)

        changes = Ltx2Diffusers().configure_for_device(model, NpuDevice())
        assert {c.split(".")[1] for c in changes} == {
            "rope",
            "audio_rope",
            "cross_attn_rope",
            "cross_attn_audio_rope",
            "config",
        }
        assert model.config.rope_double_precision is False
        with guard:
            video, audio = model(**inputs)
    assert torch.allclose(video, reference[0], atol=1e-4) and torch.allclose(audio, reference[1], atol=1e-4)


def test_ltx2_connectors_rope_is_fixed_through_the_pipeline(guard):
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors

    class Pipe:  # the attribute names of LTX2Pipeline
        transformer = tiny_ltx2_transformer()
        connectors = LTX2TextConnectors(
            caption_channels=16,
            text_proj_in_factor=2,
            video_connector_num_attention_heads=2,
            video_connector_attention_head_dim=8,
            video_connector_num_layers=1,
            video_connector_num_learnable_registers=None,
            audio_connector_num_attention_heads=2,
            audio_connector_attention_head_dim=8,
            audio_connector_num_layers=1,
            audio_connector_num_learnable_registers=None,
        )

    text_states, mask = torch.randn(1, 6, 32), torch.ones(1, 6)
    with torch.no_grad():
        with guard, pytest.raises(UnsupportedOnNpuError, match=r"connectors.py:\d+"):
            Pipe.connectors(text_states, mask)
        changes = Ltx2Diffusers().configure_for_device(Pipe, NpuDevice())
        assert "connectors.video_connector.rope.double_precision=False" in changes
        assert "connectors.audio_connector.rope.double_precision=False" in changes
        assert "transformer.rope.double_precision=False" in changes
        with guard:
            Pipe.connectors(text_states, mask)
            Pipe.transformer(**ltx2_inputs())


def test_ltx2_vocoder_needs_no_change(guard):
    """diffusers' LTX-2 vocoder computes its STFT as a conv1d against precomputed bases: no complex tensors."""
    from diffusers.pipelines.ltx2.vocoder import LTX2VocoderWithBWE

    torch.manual_seed(0)
    vocoder = LTX2VocoderWithBWE(
        in_channels=16,
        hidden_channels=16,
        out_channels=2,
        upsample_kernel_sizes=[4, 4],
        upsample_factors=[2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1]],
        bwe_in_channels=16,
        bwe_hidden_channels=16,
        bwe_out_channels=2,
        bwe_upsample_kernel_sizes=[12, 16],
        bwe_upsample_factors=[6, 8],
        bwe_resnet_kernel_sizes=[3],
        bwe_resnet_dilations=[[1]],
        filter_length=64,
        hop_length=16,
        window_length=64,
        num_mel_channels=8,
        input_sampling_rate=16000,
        output_sampling_rate=48000,
    )
    with torch.no_grad(), guard:
        waveform = vocoder(torch.randn(1, 2, 16, 8))
    assert waveform.shape == (1, 2, 192) and waveform.dtype == torch.float32
