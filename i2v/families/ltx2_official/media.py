"""Probe request media with PyAV before anything loads. Torch-free.

Each probe raises `InvalidRequestError` naming the request field when a file is missing or is
not what the field needs (an "audio" file with no audio stream, a "video" with no video).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from i2v.request import InvalidRequestError


@dataclass(frozen=True)
class AudioInfo:
    channels: int
    sample_rate: int
    duration_s: float


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frames: int
    width: int
    height: int
    audio: AudioInfo | None

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


def _open(field: str, path: str) -> av.container.InputContainer:
    if not Path(path).is_file():
        raise InvalidRequestError(field, path, "no such file")
    try:
        return av.open(path)
    except (av.error.FFmpegError, ValueError) as exc:
        raise InvalidRequestError(field, path, f"not a media file PyAV (FFmpeg) can open: {exc}") from None


def _audio_info(container: av.container.InputContainer) -> AudioInfo | None:
    stream = next((s for s in container.streams if s.type == "audio"), None)
    if stream is None:
        return None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:  # no duration in the header: count the decoded samples
        duration = sum(frame.samples for frame in container.decode(stream)) / stream.rate
    return AudioInfo(
        channels=stream.codec_context.channels, sample_rate=int(stream.rate), duration_s=duration
    )


def probe_audio(field: str, path: str) -> AudioInfo:
    """The audio stream of `path` (an audio file, or a video with sound)."""
    with _open(field, path) as container:
        info = _audio_info(container)
    if info is None:
        raise InvalidRequestError(field, path, "is not audio: the file has no audio stream")
    if info.duration_s <= 0:
        raise InvalidRequestError(field, path, "the audio stream is empty")
    return info


def probe_video(field: str, path: str) -> VideoInfo:
    """Frame rate, frame count (decoded when the header has none), size and audio of `path`."""
    with _open(field, path) as container:
        stream = next((s for s in container.streams if s.type == "video"), None)
        if stream is None:
            raise InvalidRequestError(field, path, "is not a video: the file has no video stream")
        fps = float(stream.average_rate or Fraction(0))
        frames = stream.frames or sum(1 for _ in container.decode(stream))
        width, height = stream.codec_context.width, stream.codec_context.height
        container.seek(0)
        audio = _audio_info(container)
    if fps <= 0 or frames <= 0:
        raise InvalidRequestError(field, path, "the video stream has no frames")
    return VideoInfo(fps=fps, frames=frames, width=width, height=height, audio=audio)
