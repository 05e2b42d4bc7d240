"""Bad requests for the ltx-pipelines modes are refused before anything loads, naming the field,
the value, what is valid and (for numbers) the nearest valid value."""

from __future__ import annotations

import pytest

from i2v.families.ltx2_official.request import ImageInput, Ltx23Request
from i2v.families.ltx2_official.validate import validate_request
from i2v.lora import LoraRef
from i2v.request import InvalidRequestError


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from i2v.tiny.ltx23 import write_clip, write_ic_lora, write_test_media

    folder = tmp_path_factory.mktemp("ltx23-media")
    out = write_test_media(folder)
    out["ten_frames"] = write_clip(folder / "ten.mp4", frames=10)
    out["narrow"] = write_clip(folder / "narrow.mp4", width=48, height=64)
    out["mono_sound"] = write_clip(folder / "mono.mp4", audio_layout="mono")
    out["silent"] = write_clip(folder / "silent.mp4", audio_layout=None)
    out["ic_lora"] = write_ic_lora(folder / "ic.safetensors", reference_downscale_factor=3)
    (folder / "notes.txt").write_text("not media")
    out["text"] = folder / "notes.txt"
    return out


def refused(request: Ltx23Request, device_kind: str = "cpu") -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        validate_request(request, device_kind)
    return info.value


def small(mode: str, **fields) -> Ltx23Request:
    base = dict(prompt="a red ball", height=64, width=64, frames=9)
    return Ltx23Request(mode=mode, **{**base, **fields})


def test_a_good_request_resolves_the_mode_defaults(media):
    checked = validate_request(Ltx23Request(mode="two-stage", prompt="a boat"))
    assert (checked.request.height, checked.request.width, checked.request.frames) == (1024, 1536, 121)
    assert checked.request.steps == 30 and checked.request.guidance == 3.0 and checked.notes == ()


def test_retake_source_not_8k_plus_1_frames(media):
    err = refused(small("retake", video=str(media["ten_frames"]), start_time=0.0, end_time=0.2))
    assert (err.field, err.value, err.nearest) == ("video", str(media["ten_frames"]), 9)
    assert "8k+1" in err.rule and "it has 10" in err.rule


def test_retake_source_size_not_a_multiple_of_32(media):
    err = refused(small("retake", video=str(media["narrow"]), start_time=0.0, end_time=0.2))
    assert err.field == "video" and "width" in err.rule and "48" in err.rule and err.nearest == 64


@pytest.mark.parametrize(
    ("start", "end", "field", "nearest"),
    [
        (0.5, 0.6, "start_time", 0.375),  # the 9-frame source at 24 fps lasts 0.375 s
        (0.1, 0.9, "end_time", 0.375),
        (0.2, 0.1, "end_time", 0.2),
        (-0.1, 0.2, "start_time", 0.0),
    ],
)
def test_retake_times_outside_the_video(media, start, end, field, nearest):
    err = refused(small("retake", video=str(media["video"]), start_time=start, end_time=end))
    assert err.field == field and err.nearest == pytest.approx(nearest) and "0.375 s" in err.rule


def test_retake_follows_its_source_and_says_so(media):
    checked = validate_request(
        small("retake", video=str(media["video"]), start_time=0.1, end_time=0.3, height=128)
    )
    assert (checked.request.height, checked.request.width, checked.request.frames) == (64, 64, 9)
    assert "ignored {'height': 128}" in checked.notes[0]


def test_retake_source_with_mono_sound(media):
    err = refused(small("retake", video=str(media["mono_sound"]), start_time=0.0, end_time=0.2))
    assert err.field == "video" and "stereo" in err.rule and "it has 1" in err.rule


def test_audio_to_video_without_audio():
    err = refused(small("audio-to-video"))
    assert (err.field, err.value) == ("audio", None) and "audio-to-video" in err.rule


@pytest.mark.parametrize("kind", ["text", "first", "silent"])
def test_an_audio_file_that_is_not_audio(media, kind):
    err = refused(small("audio-to-video", audio=str(media[kind])))
    assert err.field == "audio" and err.value == str(media[kind])
    assert "not audio" in err.rule or "not a media file" in err.rule


def test_audio_shorter_than_the_video(media):
    err = refused(small("audio-to-video", audio=str(media["audio"]), frames=49, fps=24))  # 1.0 s of audio
    assert err.field == "frames" and err.value == 49 and err.nearest == 17 and "1.000 s of audio" in err.rule


def test_mono_audio_is_taken_with_a_note(media):
    checked = validate_request(small("audio-to-video", audio=str(media["audio"])))
    assert checked.audio.channels == 1 and "mono input upmixed to stereo" in checked.notes[0]


@pytest.mark.parametrize(("frame", "nearest"), [(9, 8), (-10, -9), (40, 8)])
def test_keyframe_index_outside_the_video(media, frame, nearest):
    images = (ImageInput(str(media["first"]), 0), ImageInput(str(media["last"]), frame))
    err = refused(small("keyframes", images=images))
    assert (err.field, err.value, err.nearest) == ("images[1].frame", frame, nearest) and "0..8" in err.rule


def test_keyframes_needs_a_last_image_and_negative_frames_count_from_the_end(media):
    err = refused(small("keyframes", images=(ImageInput(str(media["first"]), 0),)))
    assert err.field == "last_image" and "frame -1 (= 8)" in err.rule
    checked = validate_request(
        small("keyframes", images=(ImageInput(str(media["first"]), 0), ImageInput(str(media["last"]), -1)))
    )
    assert [checked.request.frame_index(im) for im in checked.request.images] == [0, 8]
    err = refused(
        small("keyframes", images=(ImageInput(str(media["first"]), 0), ImageInput(str(media["last"]), 0)))
    )
    assert err.field == "images[1].frame" and "already has images[0]" in err.rule


def test_an_image_that_is_not_an_image(media):
    err = refused(small("two-stage", images=(ImageInput(str(media["text"]), 0),)))
    assert err.field == "images[0]" and "not an image" in err.rule


def test_ic_lora_without_a_reference_video_or_without_an_ic_lora(media):
    err = refused(small("ic-lora", loras=(LoraRef(str(media["ic_lora"]), 1.0),)))
    assert (err.field, err.value) == ("reference_video", None) and "IC-LoRA" in err.rule
    err = refused(small("ic-lora", reference_video=str(media["video"])))
    assert err.field == "loras" and "IC-LoRA" in err.rule


def test_ic_lora_reference_downscale_factor_must_divide_the_size(media):
    err = refused(
        small(
            "ic-lora",
            reference_video=str(media["video"]),
            loras=(LoraRef(str(media["ic_lora"]), 1.0),),
            height=384,
            width=64,
        )
    )
    assert (err.field, err.value, err.nearest) == (
        "width",
        64,
        192,
    ) and "reference_downscale_factor=3" in err.rule


@pytest.mark.parametrize(
    ("mode", "field", "value", "nearest"),
    [
        ("two-stage", "height", 96, 128),  # two-stage: multiples of 64 (stage 1 runs at half size)
        ("one-stage", "height", 100, 96),  # one-stage: multiples of 32
        ("two-stage", "frames", 10, 9),
        ("two-stage", "frames", 118, 121),
        ("two-stage-hq", "steps", 1, 2),  # LTX2Scheduler: one step is [nan, 0] with the HQ token shift
    ],
)
def test_sizes_and_frame_counts(mode, field, value, nearest):
    err = refused(small(mode, **{field: value}))
    assert (err.field, err.value, err.nearest) == (field, value, nearest)


def test_media_a_mode_does_not_take_is_refused(media):
    err = refused(small("two-stage", audio=str(media["audio"])))
    assert err.field == "audio" and "takes no audio" in err.rule
    err = refused(
        small(
            "retake",
            video=str(media["video"]),
            start_time=0.0,
            end_time=0.2,
            images=(ImageInput(str(media["last"]), 4),),
        )
    )
    assert err.field == "images[0]" and "takes no keyframes input" in err.rule


def test_fp8_is_refused_off_cuda_with_the_reason():
    err = refused(small("two-stage", quantization="fp8-cast"), device_kind="npu")
    assert err.field == "quantization" and "triton / TensorRT-LLM" in err.rule and "npu" in err.rule
    assert validate_request(
        small("two-stage", quantization="fp8-cast"), device_kind="cuda"
    ).request.quantization


def test_distilled_modes_note_ignored_steps_and_guidance():
    checked = validate_request(small("distilled", steps=12, guidance=5.0))
    assert any("steps=12 ignored" in n for n in checked.notes) and any(
        "guidance=5 ignored" in n for n in checked.notes
    )
