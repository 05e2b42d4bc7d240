"""Frames (+ audio) -> an H.264 mp4 that browsers play, written atomically; and a prober for tests.

Contract: `write_mp4` either leaves a complete file at `path` or nothing new at all: it encodes
into a temporary file in the same directory and renames it over `path` only when the muxer has
finished; on any error the temporary file is removed and an existing `path` is untouched.

Browser-playable means: H.264 (libx264), yuv420p (so even width and height; odd sizes are padded
by one edge-replicated column/row, reported in `VideoInfo.padded_from`), BT.709 tagged, the moov
atom before mdat (`+faststart`) so playback starts before the download ends, AAC audio.

Import-safe and torch-free: torch is touched only when frames or audio are torch tensors (then it
is already imported by whoever made them).
"""

from __future__ import annotations

import contextlib
import numbers
import os
import struct
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

H264_ENCODERS = (
    "libx264",
    "libopenh264",
    "h264_nvenc",
    "h264_qsv",
    "h264_amf",
    "h264_videotoolbox",
    "h264_vaapi",
    "h264_v4l2m2m",
    "h264_mf",
)
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
AAC_BIT_RATE = 192_000
_BT709 = 1  # AVCOL_SPC / AVCOL_PRI / AVCOL_TRC_BT709
_MPEG_RANGE = 1


@dataclass(frozen=True)
class VideoInfo:
    path: str
    frames: int
    width: int
    height: int
    fps: Fraction
    duration_s: float
    has_audio: bool
    bytes: int
    codec: str = "h264"
    pix_fmt: str = "yuv420p"
    audio_channels: int = 0
    audio_sample_rate: int | None = None
    padded_from: tuple[int, int] | None = None  # (width, height) before padding to even sizes
    faststart: bool = True  # moov atom before mdat


def exact_fps(fps: float | int | Fraction) -> Fraction:
    """The frame rate as an exact rational: 24 -> 24/1, 23.976 -> 24000/1001, 12.5 -> 25/2.

    Rates within 0.0015 of an NTSC rate N*1000/1001 (23.976, 29.97, 59.94, ...) are taken to be it.
    """
    if (
        isinstance(fps, bool)
        or not isinstance(fps, numbers.Real)
        or not fps > 0
        or not np.isfinite(float(fps))
    ):
        raise ValueError(f"fps must be a positive number (e.g. 8, 24, 23.976), got {fps!r}")
    if isinstance(fps, Fraction):
        return fps
    if isinstance(fps, numbers.Integral):
        return Fraction(int(fps))
    fps = float(fps)
    if fps.is_integer():
        return Fraction(int(fps))
    ntsc = round(fps * 1001 / 1000)
    if ntsc > 0 and abs(fps - ntsc * 1000 / 1001) < 0.0015:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


# -- frames -----------------------------------------------------------------------------------
def _is_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")  # a tensor exists only if torch is already imported
    return torch is not None and isinstance(obj, torch.Tensor)


def _tensor_to_numpy(tensor: Any) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point():
        tensor = tensor.float()  # bf16/fp16 have no numpy dtype
    return tensor.numpy()


def _frame_to_uint8(frame: Any, index: int, channels_first: bool = False) -> np.ndarray:
    """One frame as a (H, W, 3) uint8 array; errors name `frames[index]`."""
    pil_image = sys.modules.get("PIL.Image")  # a PIL image exists only if PIL is already imported
    if pil_image is not None and isinstance(frame, pil_image.Image):
        if frame.mode != "RGB":
            raise ValueError(
                f"frames[{index}] is a PIL image in mode {frame.mode!r}; need 'RGB' "
                f"(convert with image.convert('RGB'))"
            )
        return np.asarray(frame, dtype=np.uint8)
    array = _tensor_to_numpy(frame) if _is_tensor(frame) else frame
    if not isinstance(array, np.ndarray):
        raise ValueError(
            f"frames[{index}] is a {type(array).__name__}; need a PIL image, numpy array or tensor"
        )
    if channels_first and array.ndim == 3:
        array = array.transpose(1, 2, 0)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"frames[{index}] has shape {array.shape}; need (height, width, 3) RGB")
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"frames[{index}] has dtype {array.dtype}; need uint8 or float in [0, 1]")
    low, high = float(array.min()), float(array.max())
    if low < -0.01 or high > 1.01 or not np.isfinite(low + high):
        raise ValueError(
            f"frames[{index}] float values span [{low:.3g}, {high:.3g}]; need [0, 1] "
            f"(for [-1, 1] output use (x + 1) / 2)"
        )
    return np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)


def _frame_source(frames: Any) -> tuple[int, Iterator[np.ndarray]]:
    """(frame count, iterator of (H, W, 3) uint8 frames) for any accepted `frames` form."""
    if _is_tensor(frames) or isinstance(frames, np.ndarray):
        shape = tuple(frames.shape)
        if len(shape) != 4:
            raise ValueError(
                f"frames has shape {shape}; need (frames, height, width, 3) or (frames, 3, height, width)"
            )
        channels_first = shape[-1] != 3 and shape[1] == 3
        if not channels_first and shape[-1] != 3:
            raise ValueError(
                f"frames has shape {shape}; need 3 channels, last (F, H, W, 3) or second (F, 3, H, W)"
            )
        count = shape[0]
        return count, (_frame_to_uint8(frames[i], i, channels_first) for i in range(count))
    if isinstance(frames, (str, bytes)) or not isinstance(frames, Sequence):
        raise ValueError(
            f"frames is a {type(frames).__name__}; need a list of PIL images, "
            f"a (F, H, W, 3) numpy array or a (F, 3, H, W) / (F, H, W, 3) tensor"
        )
    count = len(frames)
    return count, (
        _frame_to_uint8(f, i, _is_tensor(f) and f.ndim == 3 and f.shape[0] == 3 and f.shape[-1] != 3)
        for i, f in enumerate(frames)
    )


def _pad_even(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


# -- audio ------------------------------------------------------------------------------------
def _audio_planar(audio: Any, sample_rate: Any) -> tuple[np.ndarray, int]:
    """(channels, samples) float32 in [-1, 1], and the sample rate, validated."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(
            f"audio_sample_rate must be a positive int (e.g. 16000, 24000, 48000) when audio "
            f"is given, got {sample_rate!r}"
        )
    array = _tensor_to_numpy(audio) if _is_tensor(audio) else np.asarray(audio)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] not in (1, 2):
        raise ValueError(
            f"audio has shape {array.shape}; need (samples,) or (channels, samples) with 1 or 2 channels"
        )
    if array.shape[1] == 0:
        raise ValueError("audio has 0 samples; pass audio=None for a silent video")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"audio has dtype {array.dtype}; need float samples in [-1, 1]")
    if not np.isfinite(array).all():
        raise ValueError("audio contains NaN or inf samples")
    return np.ascontiguousarray(np.clip(array, -1.0, 1.0), dtype=np.float32), int(sample_rate)


# -- encoder ----------------------------------------------------------------------------------
def pick_h264_encoder() -> str:
    """libx264 if this FFmpeg build has it, else the first other H.264 encoder present."""
    import av

    available = av.codecs_available
    for name in H264_ENCODERS:
        if name in available:
            with contextlib.suppress(Exception):
                av.Codec(name, "w")
                return name
    raise RuntimeError(
        f"no H.264 encoder in PyAV {av.__version__}'s FFmpeg (tried {', '.join(H264_ENCODERS)}); "
        f"install PyAV's PyPI wheel, which bundles libx264"
    )


def _validate_options(crf: int, preset: str) -> None:
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise ValueError(
            f"crf must be an int in 0..51 (lower is better; 18 is visually lossless), got {crf!r}"
        )
    if preset not in X264_PRESETS:
        raise ValueError(f"preset must be one of {', '.join(X264_PRESETS)}, got {preset!r}")


def write_mp4(
    frames: Any,
    path: str | os.PathLike[str],
    fps: float | Fraction,
    audio: Any = None,
    audio_sample_rate: int | None = None,
    crf: int = 18,
    preset: str = "medium",
) -> VideoInfo:
    """Encode `frames` (and `audio`) to an H.264/AAC mp4 at `path`; return what was written.

    frames: list of RGB PIL images or (H, W, 3) arrays; a numpy array (F, H, W, 3) of uint8 or
    float in [0, 1]; or a torch tensor (F, 3, H, W) or (F, H, W, 3), float in [0, 1].
    audio: float samples in [-1, 1], numpy or tensor, shape (samples,) or (channels, samples),
    1 or 2 channels, with `audio_sample_rate`.
    """
    rate = exact_fps(fps)
    _validate_options(crf, preset)
    count, source = _frame_source(frames)
    if count < 1:
        raise ValueError("frames is empty; need at least 1 frame")
    planar = _audio_planar(audio, audio_sample_rate) if audio is not None else None
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"path {path!r}: directory {directory!r} does not exist")

    # A fresh unique name rather than mkstemp: the encoder creates it with the umask's permissions
    # (mkstemp's 0600 would survive the rename and hide the video from a separate web server).
    tmp_path = os.path.join(
        directory, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:12]}.part"
    )
    try:
        shape, padded_from = _encode(tmp_path, source, count, rate, planar, crf, preset)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        raise
    height, width = shape
    return VideoInfo(
        path=path,
        frames=count,
        width=width,
        height=height,
        fps=rate,
        duration_s=float(count / rate),
        has_audio=planar is not None,
        bytes=os.path.getsize(path),
        audio_channels=0 if planar is None else planar[0].shape[0],
        audio_sample_rate=None if planar is None else planar[1],
        padded_from=padded_from,
    )


def _encode(
    tmp_path: str,
    source: Iterable[np.ndarray],
    count: int,
    rate: Fraction,
    planar: tuple[np.ndarray, int] | None,
    crf: int,
    preset: str,
) -> tuple[tuple[int, int], Any]:
    import av

    encoder = pick_h264_encoder()
    container = av.open(tmp_path, mode="w", format="mp4", options={"movflags": "+faststart"})
    ok = False
    try:
        video = None
        first_shape = None
        padded_from = None
        for index, frame in enumerate(source):
            if first_shape is None:
                first_shape = frame.shape[:2]
                height, width = first_shape
                if height % 2 or width % 2:
                    padded_from = (width, height)
                video = _add_video_stream(
                    container, encoder, rate, width + width % 2, height + height % 2, crf, preset
                )
                audio_stream = _add_audio_stream(container, planar) if planar is not None else None
            elif frame.shape[:2] != first_shape:
                raise ValueError(
                    f"frames[{index}] is {frame.shape[1]}x{frame.shape[0]} (WxH) but frames[0] is "
                    f"{first_shape[1]}x{first_shape[0]}; all frames must have one size"
                )
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(_pad_even(frame)), format="rgb24")
            picture = picture.reformat(
                format="yuv420p",
                dst_colorspace=_BT709,
                dst_color_range=_MPEG_RANGE,
                dst_color_trc=_BT709,
                dst_color_primaries=_BT709,
            )
            picture.pts = index
            container.mux(video.encode(picture))
        container.mux(video.encode())
        if planar is not None:
            _encode_audio(container, audio_stream, planar)
        ok = True
    finally:
        if ok:
            container.close()  # writes the trailer; with +faststart, moves moov to the front
        else:
            with contextlib.suppress(Exception):
                container.close()
    return (first_shape[0] + first_shape[0] % 2, first_shape[1] + first_shape[1] % 2), padded_from


def _add_video_stream(
    container: Any, encoder: str, rate: Fraction, width: int, height: int, crf: int, preset: str
) -> Any:
    stream = container.add_stream(encoder, rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.time_base = 1 / rate
    context = stream.codec_context
    context.colorspace = context.color_primaries = context.color_trc = _BT709
    context.color_range = _MPEG_RANGE
    if encoder == "libx264":
        stream.options = {"crf": str(crf), "preset": preset}
    else:  # hardware/other encoders: no crf; a bit rate that is generous for generated clips
        stream.bit_rate = 8_000_000
    return stream


def _add_audio_stream(container: Any, planar: tuple[np.ndarray, int]) -> Any:
    samples, sample_rate = planar
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    stream = container.add_stream("aac", rate=sample_rate, layout=layout)
    stream.bit_rate = AAC_BIT_RATE
    return stream


def _encode_audio(container: Any, stream: Any, planar: tuple[np.ndarray, int]) -> None:
    import av

    samples, sample_rate = planar
    frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=stream.layout.name)
    frame.sample_rate = sample_rate
    frame.pts = 0
    container.mux(stream.encode(frame))  # PyAV re-chunks into the encoder's 1024-sample frames
    container.mux(stream.encode())


# -- reading back -----------------------------------------------------------------------------
def top_level_boxes(path: str | os.PathLike[str]) -> list[str]:
    """The types of an mp4's top-level boxes in file order, e.g. ['ftyp', 'moov', 'free', 'mdat']."""
    boxes = []
    with open(path, "rb") as fh:
        size_total = os.fstat(fh.fileno()).st_size
        offset = 0
        while offset + 8 <= size_total:
            fh.seek(offset)
            size, kind = struct.unpack(">I4s", fh.read(8))
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0]
            elif size == 0:
                size = size_total - offset
            if size < 8:
                raise ValueError(f"{os.fspath(path)!r}: corrupt mp4 box at byte {offset} (size {size})")
            boxes.append(kind.decode("latin-1"))
            offset += size
    return boxes


def probe_mp4(path: str | os.PathLike[str]) -> VideoInfo:
    """Decode `path` with PyAV and report what is really in it (frames counted by decoding)."""
    import av

    path = os.fspath(path)
    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path!r} has no video stream")
        video = container.streams.video[0]
        rate = Fraction(video.average_rate or video.guessed_rate)
        context = video.codec_context
        codec, pix_fmt = context.name, context.format.name if context.format else ""
        width, height = context.width, context.height
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_channels = audio.codec_context.channels if audio is not None else 0
        audio_rate = audio.codec_context.sample_rate if audio is not None else None
        frames = sum(1 for _ in container.decode(video=0))
    boxes = top_level_boxes(path)
    faststart = "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")
    return VideoInfo(
        path=path,
        frames=frames,
        width=width,
        height=height,
        fps=rate,
        duration_s=float(frames / rate) if rate else 0.0,
        has_audio=audio is not None,
        bytes=os.path.getsize(path),
        codec=codec,
        pix_fmt=pix_fmt,
        audio_channels=audio_channels,
        audio_sample_rate=audio_rate,
        faststart=faststart,
    )


def read_frames(path: str | os.PathLike[str]) -> np.ndarray:
    """All frames of `path` as a (F, H, W, 3) uint8 RGB array (for tests and previews)."""
    import av

    with av.open(os.fspath(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
