"""What one ltx-pipelines run takes and gives back. Torch-free (numpy for the output arrays).

`Ltx23Request` holds every field a mode can use; None means "the mode's default" (`modes.Defaults`,
the package's CLI defaults) and `resolved()` fills them in. Fields a mode does not use are refused
by `validate.validate_request` (inputs) or ignored with a note (steps and guidance of the distilled
modes, the size of a retake, which follows its source video).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from i2v.lora import LoraRef

from .modes import ModeName, get
from .npu import Quantization


@dataclass(frozen=True)
class ImageInput:
    """A conditioning image at a frame; negative frames count from the end (-1: the last frame)."""

    path: str
    frame: int = 0
    strength: float = 1.0
    field: str = ""  # the request field it came from ("image", "last_image", "keyframes[0]"), for errors


@dataclass(frozen=True)
class Ltx23Request:
    mode: ModeName
    prompt: str
    negative_prompt: str | None = None  # None: ltx_pipelines' DEFAULT_NEGATIVE_PROMPT
    height: int | None = None
    width: int | None = None
    frames: int | None = None
    fps: float | None = None
    steps: int | None = None  # stage-1 steps of the "ltx2" schedules
    guidance: float | None = None  # the video CFG scale (audio keeps the mode's 7.0)
    seed: int | None = None
    images: tuple[ImageInput, ...] = ()
    audio: str | None = None  # audio-to-video: the track the video is made for
    audio_start_s: float = 0.0
    video: str | None = None  # retake: the video to regenerate part of
    start_time: float | None = None
    end_time: float | None = None
    reference_video: str | None = None  # ic-lora: the control video (depth, pose, edges...)
    reference_strength: float = 1.0
    loras: tuple[LoraRef, ...] = ()  # for ic-lora, the IC-LoRA file(s)
    quantization: Quantization | None = None

    def resolved(self) -> Ltx23Request:
        """A copy with every None number replaced by the mode's default."""
        d = get(self.mode).defaults
        return replace(
            self,
            height=d.height if self.height is None else self.height,
            width=d.width if self.width is None else self.width,
            frames=d.frames if self.frames is None else self.frames,
            fps=d.fps if self.fps is None else self.fps,
            steps=d.steps if self.steps is None else self.steps,
            guidance=d.video_cfg if self.guidance is None else self.guidance,
            seed=d.seed if self.seed is None else self.seed,
        )

    def frame_index(self, image: ImageInput) -> int:
        """`image.frame` counted from the start (needs `frames`)."""
        if self.frames is None:
            raise ValueError("frame_index needs a resolved request (frames is None)")
        return image.frame + self.frames if image.frame < 0 else image.frame


@dataclass(frozen=True)
class Ltx23Output:
    """Decoded frames (F, H, W, 3) float32 in [0, 1]; audio (channels, samples) float32 in [-1, 1]."""

    frames: np.ndarray
    audio: np.ndarray
    sample_rate: int
    fps: float
    notes: list[str] = field(default_factory=list)
