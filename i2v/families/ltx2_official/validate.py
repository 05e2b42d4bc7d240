"""Check an `Ltx23Request` against its mode before anything loads. Torch-free.

Every refusal is an `i2v.request.InvalidRequestError(field, value, rule, nearest)`: the field, the
value, what would be valid and, for numbers, the nearest valid value. The rules are 1.0.0's own,
raised there late or not at all: sizes a multiple of 64 (two-stage) or 32 (one-stage, retake)
(``helpers.assert_resolution``), frame counts 8k+1 (the VAE's temporal stride), a retake source of
8k+1 frames and a multiple of 32 in size (``retake.main``), a retake window inside the video, the
IC-LoRA's ``reference_downscale_factor`` dividing the size (``ICLoraPipeline._create_conditionings``).
Checks the package does not make, which otherwise fail deep in a run: a mode's required media
(audio, source video, reference video, IC-LoRA), audio that covers the video, stereo audio in a
retake source, image indices inside the video, FP8 off CUDA (npu.check_quantization).

`validate_request` returns `Checked`: the resolved request plus what the probes found, so the
runner does not probe again, and the notes to show the user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from i2v.lora import check as lora_problem
from i2v.request import InvalidRequestError

from .media import AudioInfo, VideoInfo, probe_audio, probe_video
from .modes import MODE_NAMES, InputKind, ModeSpec, get
from .npu import check_quantization
from .request import Ltx23Request

FRAME_STRIDE = 8  # the video VAE's temporal compression: frames = 8k + 1
MAX_SIZE = 4096
# LTX2Scheduler stretches its last non-zero sigma to the terminal 0.1: a 1-step schedule becomes
# [0.1, 0] (denoising starts from pure noise at sigma 0.1), and [nan, 0] with two-stage-hq's
# token-count shift (0/0 in the stretch). So 2 steps at least.
MIN_STEPS, MAX_STEPS = 2, 100
MIN_GUIDANCE, MAX_GUIDANCE = 1.0, 20.0


@dataclass(frozen=True)
class Checked:
    request: Ltx23Request  # resolved (no None numbers); a retake's size is its source's
    audio: AudioInfo | None = None
    source: VideoInfo | None = None
    reference: VideoInfo | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def nearest_8k1(frames: int, minimum: int = 9) -> int:
    k = max(round((frames - 1) / FRAME_STRIDE), (minimum - 1) // FRAME_STRIDE)
    return FRAME_STRIDE * k + 1


def nearest_multiple(value: int, multiple: int) -> int:
    return min(max(multiple, multiple * round(value / multiple)), MAX_SIZE // multiple * multiple)


def _int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequestError(name, value, "must be an integer")
    return value


def validate_request(
    request: Ltx23Request,
    device_kind: str = "cpu",
    *,
    image_at_start: bool = False,
    require_prompt: bool = True,
) -> Checked:
    """Resolve `request` against its mode and check it; raise the first `InvalidRequestError`.

    ``image_at_start``: an image at frame 0 will be given at run time that ``request.images`` does not
    hold yet (the request is checked when it is submitted, before its input image is staged)."""
    if request.mode not in MODE_NAMES:
        raise InvalidRequestError("mode", request.mode, f"one of {', '.join(MODE_NAMES)}")
    spec = get(request.mode)
    req = request.resolved()
    notes: list[str] = []
    if require_prompt and (not isinstance(req.prompt, str) or not req.prompt.strip()):
        raise InvalidRequestError("prompt", req.prompt, "a non-empty text")
    check_quantization(req.quantization, device_kind)
    source = _check_source(spec, req) if "video" in spec.accepts else None
    if source is not None:
        req, source_notes = _adopt_source_size(request, req, source)
        notes += source_notes
    _check_numbers(spec, req, notes)
    _check_images(spec, req, image_at_start)
    audio = _check_audio(spec, req, notes)
    reference = _check_reference(spec, req)
    _check_loras(spec, req)
    for kind, value in (
        ("audio", req.audio),
        ("video", req.video),
        ("reference-video", req.reference_video),
    ):
        if value is not None and kind not in spec.accepts:
            raise InvalidRequestError(kind.replace("-", "_"), value, f"mode {spec.name!r} takes no {kind}")
    return Checked(req, audio=audio, source=source, reference=reference, notes=tuple(notes))


def _check_numbers(spec: ModeSpec, req: Ltx23Request, notes: list[str]) -> None:
    m = spec.size_multiple
    for name in ("height", "width"):
        value = _int(name, getattr(req, name))
        if value % m or not m <= value <= MAX_SIZE:
            raise InvalidRequestError(
                name,
                value,
                f"mode {spec.name!r} needs a multiple of {m} in {m}..{MAX_SIZE}",
                nearest_multiple(value, m),
            )
    frames = _int("frames", req.frames)
    if frames < 9 or (frames - 1) % FRAME_STRIDE:
        raise InvalidRequestError(
            "frames", frames, "8k+1 frames with k >= 1 (9, 17, ..., 97, 121)", nearest_8k1(frames)
        )
    if isinstance(req.fps, bool) or not isinstance(req.fps, (int, float)) or not 1 <= req.fps <= 60:
        raise InvalidRequestError("fps", req.fps, "a number in 1..60")
    steps = _int("steps", req.steps)
    if spec.takes_steps and not MIN_STEPS <= steps <= MAX_STEPS:
        raise InvalidRequestError(
            "steps",
            steps,
            f"an integer in {MIN_STEPS}..{MAX_STEPS} (LTX2Scheduler turns one "
            "step into [0.1, 0], or NaN for two-stage-hq)",
            min(max(steps, MIN_STEPS), MAX_STEPS),
        )
    if not spec.takes_steps and steps != spec.defaults.steps:
        notes.append(
            f"steps={steps} ignored: mode {spec.name!r} runs fixed distilled schedules "
            f"({spec.total_steps(steps)} steps)"
        )
    g = req.guidance
    if (
        isinstance(g, bool)
        or not isinstance(g, (int, float))
        or not math.isfinite(g)
        or not MIN_GUIDANCE <= g <= MAX_GUIDANCE
    ):
        raise InvalidRequestError("guidance", g, f"a number in {MIN_GUIDANCE:g}..{MAX_GUIDANCE:g}")
    if not spec.runs_cfg and g != spec.defaults.video_cfg:
        notes.append(f"guidance={g:g} ignored: mode {spec.name!r} runs without guidance")
    seed = _int("seed", req.seed)
    if not 0 <= seed < 2**63:
        raise InvalidRequestError("seed", seed, "an integer in 0..2^63-1")


def image_kind(req: Ltx23Request, index: int) -> InputKind:
    assert req.frames is not None
    return "image" if index == 0 else "last-image" if index == req.frames - 1 else "keyframes"


def _check_images(spec: ModeSpec, req: Ltx23Request, image_at_start: bool = False) -> None:
    assert req.frames is not None
    seen: dict[int, str] = {0: "image"} if image_at_start else {}
    kinds: set[InputKind] = {"image"} if image_at_start else set()
    if image_at_start and "image" not in spec.accepts:
        raise InvalidRequestError("image", "given", f"mode {spec.name!r} takes no input image")
    for i, image in enumerate(req.images):
        name = image.field or f"images[{i}]"
        frame = _int(f"{name}.frame", image.frame)
        if not -req.frames <= frame < req.frames:
            raise InvalidRequestError(
                f"{name}.frame",
                frame,
                f"a frame of the {req.frames}-frame video: 0..{req.frames - 1}, or "
                f"-{req.frames}..-1 from the end",
                max(-req.frames, min(frame, req.frames - 1)),
            )
        index = req.frame_index(image)
        if index in seen:
            raise InvalidRequestError(f"{name}.frame", frame, f"frame {index} already has {seen[index]}")
        seen[index] = name
        kind = image_kind(req, index)
        if kind not in spec.accepts:
            raise InvalidRequestError(name, image.path, f"mode {spec.name!r} takes no {kind} input")
        kinds.add(kind)
        if (
            isinstance(image.strength, bool)
            or not isinstance(image.strength, (int, float))
            or not 0.0 <= image.strength <= 1.0
        ):
            raise InvalidRequestError(f"{name}.strength", image.strength, "a number in 0..1")
        _check_image_file(name, image.path)
    for kind in ("image", "last-image"):
        if kind in spec.requires and kind not in kinds:
            where = "frame 0" if kind == "image" else f"frame -1 (= {req.frames - 1})"
            field = "image" if kind == "image" else "last_image"
            raise InvalidRequestError(field, None, f"mode {spec.name!r} needs an image at {where}")


def _check_image_file(name: str, path: str) -> None:
    if not Path(path).is_file():
        raise InvalidRequestError(name, path, "no such file")
    try:
        with Image.open(path) as im:
            im.verify()
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidRequestError(name, path, f"not an image PIL can read: {exc}") from None


def _check_audio(spec: ModeSpec, req: Ltx23Request, notes: list[str]) -> AudioInfo | None:
    if req.audio is None:
        if "audio" in spec.requires:
            raise InvalidRequestError(
                "audio", None, f"mode {spec.name!r} needs an audio file (the track the video is made for)"
            )
        return None
    if "audio" not in spec.accepts:
        return None  # refused by validate_request's generic check
    info = probe_audio("audio", req.audio)
    if info.channels not in (1, 2):
        raise InvalidRequestError(
            "audio", req.audio, f"mono or stereo audio; the file has {info.channels} channels"
        )
    if info.channels == 1:
        notes.append("mono input upmixed to stereo (the audio VAE takes 2 channels)")
    assert req.frames is not None and req.fps is not None
    if not 0 <= req.audio_start_s < info.duration_s:
        raise InvalidRequestError("audio_start_s", req.audio_start_s, f"a time in 0..{info.duration_s:.3f} s")
    available = info.duration_s - req.audio_start_s
    if req.frames / req.fps > available + 1e-6:
        fitting = FRAME_STRIDE * int((available * req.fps - 1) // FRAME_STRIDE) + 1
        raise InvalidRequestError(
            "frames",
            req.frames,
            f"at most {available:.3f} s of audio from {req.audio_start_s:g} s covers "
            f"{req.frames / req.fps:.3f} s of video at {req.fps:g} fps",
            fitting if fitting >= 9 else None,
        )
    return info


def _check_source(spec: ModeSpec, req: Ltx23Request) -> VideoInfo | None:
    if req.video is None:
        if "video" in spec.requires:
            raise InvalidRequestError("video", None, f"mode {spec.name!r} needs a source video")
        return None
    info = probe_video("video", req.video)
    if (info.frames - 1) % FRAME_STRIDE or info.frames < 9:
        raise InvalidRequestError(
            "video",
            req.video,
            f"a source of 8k+1 frames; it has {info.frames}: trim it to",
            nearest_8k1(info.frames),
        )
    for name, size in (("width", info.width), ("height", info.height)):
        if size % 32:
            raise InvalidRequestError(
                "video",
                req.video,
                f"a source {name} that is a multiple of 32; it is {size}: scale or crop it to",
                nearest_multiple(size, 32),
            )
    if info.audio is not None and info.audio.channels != 2:
        raise InvalidRequestError(
            "video",
            req.video,
            f"stereo sound or none (the audio VAE takes 2 channels); it has {info.audio.channels}",
        )
    start, end = req.start_time, req.end_time
    for name, value in (("start_time", start), ("end_time", end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidRequestError(
                name, value, f"a time in seconds within the {info.duration_s:.3f} s source"
            )
    assert start is not None and end is not None
    if not 0 <= start < info.duration_s:
        raise InvalidRequestError(
            "start_time",
            start,
            f"a time in 0..{info.duration_s:.3f} s (the source's length)",
            min(max(start, 0.0), info.duration_s),
        )
    if not start < end <= info.duration_s:
        raise InvalidRequestError(
            "end_time",
            end,
            f"a time after start_time={start:g} and at most {info.duration_s:.3f} s (the source's length)",
            min(max(end, start), info.duration_s),
        )
    return info


def _adopt_source_size(
    original: Ltx23Request, req: Ltx23Request, src: VideoInfo
) -> tuple[Ltx23Request, list[str]]:
    """A retake regenerates in place: the output has the source's size, length and frame rate."""
    asked = {
        k: getattr(original, k)
        for k in ("height", "width", "frames", "fps")
        if getattr(original, k) is not None
    }
    adopted = replace(req, height=src.height, width=src.width, frames=src.frames, fps=src.fps)
    differs = {k: v for k, v in asked.items() if v != getattr(adopted, k)}
    notes = [
        f"retake: output follows the source video ({src.width}x{src.height}, {src.frames} frames at "
        f"{src.fps:g} fps)" + (f"; ignored {differs}" if differs else "")
    ]
    return adopted, notes


def _check_reference(spec: ModeSpec, req: Ltx23Request) -> VideoInfo | None:
    if req.reference_video is None:
        if "reference-video" in spec.requires:
            raise InvalidRequestError(
                "reference_video",
                None,
                f"mode {spec.name!r} needs a reference video (the "
                "control video its IC-LoRA was trained on: depth, pose, edges...)",
            )
        return None
    if not 0.0 <= req.reference_strength <= 1.0:
        raise InvalidRequestError("reference_strength", req.reference_strength, "a number in 0..1")
    return probe_video("reference_video", req.reference_video)


def _check_loras(spec: ModeSpec, req: Ltx23Request) -> None:
    for i, ref in enumerate(req.loras):
        problem = lora_problem(ref)
        if problem is not None:
            raise InvalidRequestError(f"loras[{i}]", str(ref), problem)
    if "ic-lora" in spec.requires and not req.loras:
        raise InvalidRequestError(
            "loras", [], f"mode {spec.name!r} needs an IC-LoRA file (Lightricks/LTX-2.3-22b-IC-LoRA-*)"
        )
    if "ic-lora" in spec.requires:
        for i, ref in enumerate(req.loras):
            factor = reference_downscale_factor(ref.path)
            for name in ("height", "width"):
                value = getattr(req, name)
                if value % (2 * factor):
                    multiple = math.lcm(spec.size_multiple, 2 * factor)
                    raise InvalidRequestError(
                        name,
                        value,
                        f"a multiple of {multiple}: loras[{i}] was trained with "
                        f"reference_downscale_factor={factor} (the reference is scaled by "
                        f"1/{factor} of stage 1's half size)",
                        nearest_multiple(value, multiple),
                    )


def reference_downscale_factor(path: str) -> int:
    """An IC-LoRA's ``reference_downscale_factor`` metadata (1 when absent), as ic_lora.py reads it."""
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        return int((f.metadata() or {}).get("reference_downscale_factor", 1))
