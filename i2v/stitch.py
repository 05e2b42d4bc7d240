"""Extensions: a finished video continued from its last frame, stitched into one mp4.

The extension is an image-to-video run conditioned on the source's last frame, so its first frame
stands for that same instant. The stitched video is every source frame, then the new frames from
the second on: no frame is shown twice at the seam, and the length is N + M - 1 frames. Audio is
joined the same way: the source's track, then the new track without its first frame's worth of
samples (either side without audio is silence). The source frames are decoded and encoded once
more (one more H.264 generation at crf 18), streamed, never held in memory all at once.

Only the last frame carries over: the model sees where things are at the seam, not how they move,
so motion can change speed or direction there. That is what an image-to-video model can do.

Torch-free (numpy, PyAV).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from i2v.video import VideoInfo, write_mp4


@dataclass(frozen=True)
class SourceClip:
    frames: int
    fps: Fraction
    width: int
    height: int
    has_audio: bool
    last_frame: np.ndarray  # (H, W, 3) uint8


def read_source(path: str | os.PathLike[str]) -> SourceClip:
    """Decode `path` once: its frame count, rate, size, audio presence and last frame."""
    import av

    with av.open(os.fspath(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{os.fspath(path)!r} has no video stream")
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate or stream.guessed_rate or 0)
        has_audio = bool(container.streams.audio)
        count, last = 0, None
        for frame in container.decode(video=0):
            last = frame
            count += 1
        if last is None:
            raise ValueError(f"{os.fspath(path)!r} has no frames")
        image = last.to_ndarray(format="rgb24")
    return SourceClip(count, rate, image.shape[1], image.shape[0], has_audio, image)


class _Joined(Sequence):
    """The source's decoded frames, then `tail`: a sequence write_mp4 reads once, in order."""

    def __init__(self, path: str, source_frames: int, tail: np.ndarray):
        self.path, self.source_frames, self.tail = path, source_frames, tail
        self._decoded: Iterator[np.ndarray] | None = None
        self._next = 0

    def __len__(self) -> int:
        return self.source_frames + len(self.tail)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        if not isinstance(index, int) or not 0 <= index < len(self):
            raise IndexError(index)
        if index >= self.source_frames:
            return self.tail[index - self.source_frames]
        if index != self._next:
            raise IndexError(f"the source is read in order: frame {self._next} next, not {index}")
        if self._decoded is None:
            self._decoded = self._decode()
        self._next += 1
        return next(self._decoded)

    def _decode(self) -> Iterator[np.ndarray]:
        import av

        with av.open(self.path) as container:
            for count, frame in enumerate(container.decode(video=0)):
                if count >= self.source_frames:
                    return
                yield frame.to_ndarray(format="rgb24")


def stitch(
    source: str | os.PathLike[str],
    clip: SourceClip,
    new_frames: Any,
    out: str | os.PathLike[str],
    fps: int,
    audio: Any = None,
    audio_sample_rate: int | None = None,
) -> VideoInfo:
    """Write `source` + `new_frames[1:]` (and the joined audio) to `out`, atomically."""
    from i2v.previews import to_uint8

    new = np.stack([to_uint8(f) for f in new_frames])
    if new.shape[1:3] != (clip.height, clip.width):
        raise ValueError(
            f"the extension is {new.shape[2]}x{new.shape[1]}, the source {clip.width}x{clip.height}: "
            "they must match to be stitched"
        )
    joined = _Joined(os.fspath(source), clip.frames, new[1:])
    track, rate = _joined_audio(source, clip, len(new), fps, audio, audio_sample_rate)
    return write_mp4(joined, out, fps=fps, audio=track, audio_sample_rate=rate)


def _joined_audio(
    source: Any, clip: SourceClip, new_count: int, fps: int, audio: Any, audio_sample_rate: int | None
) -> tuple[np.ndarray | None, int | None]:
    if not clip.has_audio and audio is None:
        return None, None
    old, old_rate = None, None
    if clip.has_audio:
        from i2v.audio import load_audio

        old, old_rate = load_audio(source)
    rate = old_rate or audio_sample_rate
    assert rate is not None
    head = _fit(old, clip.frames / fps, rate)
    new = None
    if audio is not None:
        new = np.asarray(audio, dtype=np.float32)
        new = new[None, :] if new.ndim == 1 else new
        new = np.repeat(new, 2, axis=0) if new.shape[0] == 1 else new
        if audio_sample_rate and audio_sample_rate != rate:  # the source's rate wins; resample linearly
            n = round(new.shape[1] * rate / audio_sample_rate)
            positions = np.linspace(0, new.shape[1] - 1, n)
            new = np.stack([np.interp(positions, np.arange(new.shape[1]), ch) for ch in new])
        new = new[:, round(rate / fps) :]  # the first frame's samples belong to the source's last frame
    tail = _fit(new, (new_count - 1) / fps, rate)
    return np.concatenate([head, tail], axis=1).astype(np.float32), rate


def _fit(samples: np.ndarray | None, seconds: float, rate: int) -> np.ndarray:
    """`samples` (2, n) cut or padded with silence to `seconds`."""
    n = round(seconds * rate)
    if samples is None:
        return np.zeros((2, n), dtype=np.float32)
    samples = samples[:, :n]
    if samples.shape[1] < n:
        samples = np.pad(samples, ((0, 0), (0, n - samples.shape[1])))
    return samples


__all__ = ["SourceClip", "read_source", "stitch"]
