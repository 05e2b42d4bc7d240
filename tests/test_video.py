"""i2v.video: write real mp4s with PyAV, read them back by decoding."""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from i2v.video import VideoInfo, exact_fps, probe_mp4, read_frames, top_level_boxes, write_mp4


def gradient(frames: int = 6, height: int = 48, width: int = 64) -> np.ndarray:
    """(F, H, W, 3) uint8: red ramps across, green down, blue against red, brightness by frame."""
    x = np.zeros((frames, height, width, 3), np.float32)
    x[..., 0] = np.linspace(0, 1, width)[None, None, :]
    x[..., 1] = np.linspace(0, 1, height)[None, :, None]
    x[..., 2] = np.linspace(1, 0, width)[None, None, :]
    x *= np.linspace(0.6, 1.0, frames)[:, None, None, None]
    return np.round(x * 255).astype(np.uint8)


def leftovers(directory) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".part")]


@pytest.mark.parametrize(
    ("fps", "exact"), [(8, Fraction(8)), (24, Fraction(24)), (23.976, Fraction(24000, 1001))]
)
def test_round_trip_frames_size_fps_codec(tmp_path, fps, exact):
    frames = gradient(frames=9)
    info = write_mp4(frames, tmp_path / "out.mp4", fps)
    probed = probe_mp4(tmp_path / "out.mp4")

    assert info.fps == exact and probed.fps == exact
    assert (probed.frames, probed.width, probed.height) == (9, 64, 48)
    assert (probed.codec, probed.pix_fmt) == ("h264", "yuv420p")
    assert probed.duration_s == pytest.approx(9 / float(exact))
    assert info.bytes == probed.bytes == os.path.getsize(tmp_path / "out.mp4")
    assert not probed.has_audio


def test_moov_atom_precedes_mdat(tmp_path):
    write_mp4(gradient(), tmp_path / "out.mp4", 8)
    boxes = top_level_boxes(tmp_path / "out.mp4")
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")
    assert probe_mp4(tmp_path / "out.mp4").faststart


def test_decoded_content_matches_the_input(tmp_path):
    frames = gradient(frames=4, height=64, width=96)
    write_mp4(frames, tmp_path / "out.mp4", 8, crf=12)
    decoded = read_frames(tmp_path / "out.mp4").astype(np.float32)
    assert decoded.shape == frames.shape
    assert np.abs(decoded - frames).mean() < 4.0  # yuv420p + H.264: a couple of levels off on average


@pytest.mark.parametrize(("shape", "channels"), [((16000,), 1), ((1, 16000), 1), ((2, 16000), 2)])
def test_audio_is_muxed_as_aac(tmp_path, shape, channels):
    t = np.arange(shape[-1]) / 16000
    audio = np.broadcast_to(0.5 * np.sin(2 * np.pi * 440 * t), shape).copy()
    info = write_mp4(gradient(frames=8), tmp_path / "av.mp4", 8, audio=audio, audio_sample_rate=16000)
    probed = probe_mp4(tmp_path / "av.mp4")
    assert info.has_audio and probed.has_audio
    assert probed.audio_channels == info.audio_channels == channels
    assert probed.audio_sample_rate == 16000
    assert probed.frames == 8


def test_torch_audio_tensor(tmp_path):
    torch = pytest.importorskip("torch")
    audio = torch.rand(2, 8000) * 2 - 1
    info = write_mp4(gradient(frames=4), tmp_path / "av.mp4", 8, audio=audio, audio_sample_rate=16000)
    assert probe_mp4(info.path).audio_channels == 2


def test_every_frame_form_gives_the_same_video(tmp_path):
    torch = pytest.importorskip("torch")
    frames = gradient(frames=3, height=32, width=32)
    as_float = frames.astype(np.float32) / 255
    forms = {
        "pil": [Image.fromarray(f) for f in frames],
        "uint8": frames,
        "float": as_float,
        "list_of_arrays": list(frames),
        "tensor_fhwc": torch.from_numpy(as_float),
        "tensor_fchw": torch.from_numpy(as_float).permute(0, 3, 1, 2).to(torch.bfloat16),
    }
    decoded = {}
    for name, form in forms.items():
        write_mp4(form, tmp_path / f"{name}.mp4", 8, crf=10)
        decoded[name] = read_frames(tmp_path / f"{name}.mp4").astype(np.float32)
    for name, video in decoded.items():
        assert video.shape == frames.shape, name
        assert np.abs(video - frames).mean() < 4.0, name


def test_odd_sizes_are_padded_by_edge_replication_and_reported(tmp_path):
    frames = gradient(frames=2, height=47, width=65)
    info = write_mp4(frames, tmp_path / "odd.mp4", 8, crf=10)
    assert (info.width, info.height, info.padded_from) == (66, 48, (65, 47))
    decoded = read_frames(tmp_path / "odd.mp4").astype(np.float32)
    assert decoded.shape == (2, 48, 66, 3)
    # the added column repeats the last one
    assert np.abs(decoded[:, :47, 65] - decoded[:, :47, 64]).mean() < 4.0


def test_failure_mid_write_leaves_nothing(tmp_path):
    frames = [Image.fromarray(f) for f in gradient(frames=3)]
    frames.append(Image.new("RGB", (32, 32)))  # a different size, found only while encoding
    with pytest.raises(ValueError, match=r"frames\[3\] is 32x32 .* frames\[0\] is 64x48"):
        write_mp4(frames, tmp_path / "out.mp4", 8)
    assert not (tmp_path / "out.mp4").exists()
    assert leftovers(tmp_path) == []


def test_failure_keeps_an_existing_file_intact(tmp_path):
    target = tmp_path / "out.mp4"
    write_mp4(gradient(frames=2), target, 8)
    before = target.read_bytes()
    with pytest.raises(ValueError, match=r"frames\[1\]"):
        write_mp4([gradient(frames=1)[0], np.zeros((48, 64, 4), np.uint8)], target, 8)
    assert target.read_bytes() == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fps", [0, -24, float("nan"), "24", None, True])
def test_bad_fps_names_the_field(tmp_path, fps):
    with pytest.raises(ValueError, match=r"fps must be a positive number.*got"):
        write_mp4(gradient(), tmp_path / "out.mp4", fps)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([], r"frames is empty; need at least 1 frame"),
        (np.zeros((2, 8, 8, 4), np.uint8), r"frames has shape \(2, 8, 8, 4\); need 3 channels"),
        (np.zeros((8, 8, 3), np.uint8), r"frames has shape \(8, 8, 3\); need \(frames, height, width, 3\)"),
        (np.full((2, 8, 8, 3), -1.0, np.float32), r"frames\[0\] float values span \[-1, -1\]; need \[0, 1\]"),
        ([Image.new("RGBA", (8, 8))], r"frames\[0\] is a PIL image in mode 'RGBA'; need 'RGB'"),
        ("frames.png", r"frames is a str"),
    ],
)
def test_bad_frames_are_named(tmp_path, frames, message):
    with pytest.raises(ValueError, match=message):
        write_mp4(frames, tmp_path / "out.mp4", 8)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("audio", "rate", "message"),
    [
        (np.zeros(100, np.float32), None, r"audio_sample_rate must be a positive int"),
        (np.zeros((3, 100), np.float32), 16000, r"audio has shape \(3, 100\); need .* 1 or 2 channels"),
        (np.zeros(100, np.int16), 16000, r"audio has dtype int16; need float"),
    ],
)
def test_bad_audio_is_named(tmp_path, audio, rate, message):
    with pytest.raises(ValueError, match=message):
        write_mp4(gradient(), tmp_path / "out.mp4", 8, audio=audio, audio_sample_rate=rate)
    assert os.listdir(tmp_path) == []


def test_bad_encoder_options_and_missing_directory(tmp_path):
    with pytest.raises(ValueError, match=r"crf must be an int in 0..51.*got 60"):
        write_mp4(gradient(), tmp_path / "out.mp4", 8, crf=60)
    with pytest.raises(ValueError, match=r"preset must be one of .*got 'fastest'"):
        write_mp4(gradient(), tmp_path / "out.mp4", 8, preset="fastest")
    with pytest.raises(ValueError, match=r"directory .* does not exist"):
        write_mp4(gradient(), tmp_path / "missing" / "out.mp4", 8)


@pytest.mark.parametrize(
    ("fps", "exact"),
    [
        (8, Fraction(8)),
        (24.0, Fraction(24)),
        (23.976, Fraction(24000, 1001)),
        (29.97, Fraction(30000, 1001)),
        (59.94, Fraction(60000, 1001)),
        (12.5, Fraction(25, 2)),
        (Fraction(24000, 1001), Fraction(24000, 1001)),
    ],
)
def test_exact_fps(fps, exact):
    assert exact_fps(fps) == exact


def test_written_file_has_ordinary_permissions(tmp_path):
    old_umask = os.umask(0o022)
    try:
        write_mp4(gradient(frames=1), tmp_path / "shared.mp4", np.int64(8))
    finally:
        os.umask(old_umask)
    assert (tmp_path / "shared.mp4").stat().st_mode & 0o777 == 0o644  # readable by a separate web server


def test_video_info_is_frozen(tmp_path):
    info = write_mp4(gradient(frames=1), tmp_path / "one.mp4", 24)
    assert isinstance(info, VideoInfo) and info.frames == 1
    with pytest.raises(AttributeError):
        info.frames = 2  # type: ignore[misc]
