"""Input audio for LTX-2's audio-to-video mode: any file PyAV decodes -> float32 stereo.

Torch-free. The LTX-2 audio VAE encodes two channels (``in_channels=2``; the Ascend port notes that
mono input fails with a channel mismatch), so mono is upmixed by copying the channel to left and
right, and more than two channels are downmixed to stereo by libswresample. The sample rate is
kept: resampling to the VAE's 16 kHz belongs to the mel front end that diffusers 0.42.1 does not
have yet (the mode is refused with that reason).
"""

from __future__ import annotations

import os

import numpy as np

from i2v.request import InvalidRequestError


def load_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """``(samples, rate)``: samples float32 in [-1, 1], shape (2, n)."""
    import av

    chunks: list[np.ndarray] = []
    rate = 0
    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.audio:
                raise InvalidRequestError("audio", os.fspath(path), "has no audio stream")
            stream = container.streams.audio[0]
            channels = stream.codec_context.channels
            rate = stream.codec_context.sample_rate
            layout = "stereo" if channels > 2 else stream.codec_context.layout.name
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except av.FFmpegError as exc:
        raise InvalidRequestError("audio", os.fspath(path), f"is not readable audio: {exc}") from None
    if not chunks:
        raise InvalidRequestError("audio", os.fspath(path), "has no audio samples")
    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if samples.shape[0] == 1:
        samples = np.repeat(samples, 2, axis=0)
    return np.clip(samples, -1.0, 1.0), int(rate)


__all__ = ["load_audio"]
