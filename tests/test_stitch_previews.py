"""Extensions and previews on decoded frames: the stitched mp4 shows the source, then the new segment
from its second frame on (no frame twice at the seam), with the audio joined the same way; the
thumbnail is the first frame; the spritesheet's tiles are the frames its layout names."""

from __future__ import annotations

import numpy as np
import pytest

from i2v.previews import previews_from_mp4, sprite_layout
from i2v.stitch import read_source, stitch
from i2v.video import probe_mp4, read_frames, write_mp4

FPS = 8


def solid(levels: list[float]) -> np.ndarray:
    """One flat grey frame per level: each frame is told apart by its mean after H.264."""
    return np.stack([np.full((32, 48, 3), level, np.float32) for level in levels])


def levels_of(frames: np.ndarray) -> list[int]:
    return [round(float(f.mean()) / 255 * 20) for f in frames]  # the level in twentieths


def test_the_seam_shows_each_instant_once(tmp_path):
    source = tmp_path / "source.mp4"
    write_mp4(solid([i / 20 for i in range(1, 6)]), source, fps=FPS)
    clip = read_source(source)
    assert (clip.frames, clip.width, clip.height, clip.has_audio) == (5, 48, 32, False)
    # what an ideal image-to-video model returns: its first frame is the conditioning (last) frame
    segment = solid([5 / 20, 6 / 20, 7 / 20, 8 / 20])
    info = stitch(source, clip, segment, tmp_path / "out.mp4", FPS)
    decoded = read_frames(tmp_path / "out.mp4")
    assert info.frames == len(decoded) == 5 + 4 - 1
    assert levels_of(decoded) == [1, 2, 3, 4, 5, 6, 7, 8]  # 5 appears once


def test_audio_is_joined_at_the_seam(tmp_path):
    source = tmp_path / "source.mp4"
    rate = 16000
    tone = (np.sin(np.arange(rate) * 0.05) * 0.5).astype(np.float32)  # 1 s = 8 frames at 8 fps
    write_mp4(solid([0.2] * 8), source, fps=FPS, audio=tone, audio_sample_rate=rate)
    clip = read_source(source)
    # 0.5 s for 4 frames: the first frame's 1/8 s (-0.25) stands for the source's last instant and is dropped
    new_audio = np.full((2, rate // 2), 0.25, np.float32)
    new_audio[:, : rate // FPS] = -0.25
    out = tmp_path / "out.mp4"
    stitch(source, clip, solid([0.2, 0.4, 0.6, 0.8]), out, FPS, audio=new_audio, audio_sample_rate=rate)
    info = probe_mp4(out)
    assert info.frames == 11 and info.has_audio and info.audio_sample_rate == rate
    from i2v.audio import load_audio

    samples, got_rate = load_audio(out)
    seam = round(8 / FPS * rate)
    assert got_rate == rate
    assert (
        np.abs(samples[:, seam + 300 : seam + 4000] - 0.25).max() < 0.05
    )  # the new track, from its 2nd frame
    assert np.abs(samples[0, 2000:4000]).max() > 0.3  # the source's tone before it


def test_a_segment_of_another_size_is_refused(tmp_path):
    source = tmp_path / "source.mp4"
    write_mp4(solid([0.1, 0.2]), source, fps=FPS)
    with pytest.raises(ValueError, match="must match"):
        stitch(source, read_source(source), np.zeros((3, 16, 16, 3), np.float32), tmp_path / "x.mp4", FPS)
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("frames", [1, 5, 9, 40])
def test_the_spritesheet_layout(frames):
    layout = sprite_layout(frames, 1280, 720)
    assert layout.frames[0] == 0 and layout.frames[-1] == frames - 1
    assert len(layout.frames) == min(frames, 16) and list(layout.frames) == sorted(set(layout.frames))
    assert layout.columns * layout.rows >= len(layout.frames) > layout.columns * (layout.rows - 1)
    assert (layout.tile_width, layout.tile_height) == (256, 144)


def test_previews_show_the_frames_they_name(tmp_path):
    from PIL import Image

    mp4 = tmp_path / "v.mp4"
    write_mp4(solid([i / 20 for i in range(1, 19)]), mp4, fps=FPS)  # 18 frames: the sheet picks 16
    paths = {"thumbnail": tmp_path / "t.webp", "spritesheet": tmp_path / "s.jpg"}
    previews_from_mp4(mp4, paths)
    assert levels_of(np.asarray(Image.open(paths["thumbnail"]).convert("RGB"))[None]) == [1]
    layout = sprite_layout(18, 48, 32)
    sheet = np.asarray(Image.open(paths["spritesheet"]).convert("RGB"))
    assert sheet.shape == (layout.rows * 32, layout.columns * 48, 3)
    tiles = [
        sheet[r * 32 : (r + 1) * 32, c * 48 : (c + 1) * 48]
        for r, c in (divmod(slot, layout.columns) for slot in range(len(layout.frames)))
    ]
    assert levels_of(np.stack(tiles)) == [i + 1 for i in layout.frames]
