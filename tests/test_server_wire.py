"""The wire without a server: the form reader (SDK names, our options, aliases, keyframes as the SDK's
brackets encode them, data: URLs, conflicts), seconds -> frames and LoRA names, media sniffing."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from starlette.datastructures import UploadFile

from i2v import catalogue
from i2v.server.errors import ApiError
from i2v.server.fields import frames_for_seconds, lora_files
from i2v.server.form import FormReader
from i2v.server.media import check, decode_data_url, sniff
from i2v.server.wire import FIELDS


def png(size: int = 8) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def read(items: list[tuple[str, object]], extension: bool = False, max_bytes: int = 1 << 20):
    wrapped = [(k, UploadFile(io.BytesIO(v), filename="x") if isinstance(v, bytes) else v) for k, v in items]
    return asyncio.run(FormReader(max_bytes, extension).read(wrapped))


def refused(items, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as caught:
        read(items, **kwargs)
    return caught.value


def test_sdk_names_and_our_options_become_request_fields():
    sub = read(
        [
            ("prompt", "a cat"),
            ("input_reference", png()),
            ("model", "tiny-ltx-2"),
            ("size", "96x64"),
            ("seconds", "1.5"),
            ("num_inference_steps", "3"),
            ("guidance_scale", "2.5"),
            ("seed", "9"),
            ("mode", "keyframes"),
            ("last_image", "data:image/png;base64," + base64.b64encode(png()).decode()),
            ("loras[]", "a.safetensors:0.5"),
            ("loras[]", "b.safetensors"),
        ]
    )
    assert sub.fields == {
        "prompt": "a cat",
        "model": "tiny-ltx-2",
        "width": 96,
        "height": 64,
        "steps": 3,
        "guidance": 2.5,
        "seed": 9,
        "mode": "keyframes",
    }
    assert sub.seconds == 1.5 and sub.image.data == png() and sub.media["last_image"].data == png()
    assert sub.loras == ("a.safetensors:0.5", "b.safetensors") and sub.notes == ()
    assert sub.names["width"] == sub.names["height"] == "size" and sub.names["steps"] == "num_inference_steps"


def test_old_names_still_work_and_say_they_are_aliases():
    sub = read([("image", png()), ("height", "64"), ("width", "32"), ("frames", "9"), ("steps", "2")])
    assert (sub.fields["height"], sub.fields["width"], sub.fields["frames"], sub.fields["steps"]) == (
        64,
        32,
        9,
        2,
    )
    assert sub.image.field == "image"
    assert {n.split("`")[1] for n in sub.notes} == {"image", "height", "width", "frames", "steps"}
    assert all("kept for one release" in n for n in sub.notes)


@pytest.mark.parametrize(
    "items, field, code",
    [
        ([("num_frames", "9"), ("frames", "9")], "frames", "conflicting_fields"),
        ([("size", "64x64"), ("height", "64")], "height", "conflicting_fields"),
        ([("seconds", "1"), ("num_frames", "9")], "num_frames", "conflicting_fields"),
        ([("image", png()), ("input_reference", png())], "input_reference", "conflicting_fields"),
        ([("size", "64 by 64")], "size", "invalid_field"),
        ([("seconds", "-1")], "seconds", "invalid_field"),
        ([("seconds", "nan")], "seconds", "invalid_field"),
        ([("input_reference[file_id]", "file-1")], "input_reference[file_id]", "invalid_field"),
        ([("input_reference", "https://example.com/a.png")], "input_reference", "invalid_field"),
        ([("audio[id]", "x")], "audio[id]", "unknown_field"),
        ([("keyframes[0][image]", png())], "keyframes[0][frame]", "missing_field"),
        ([("keyframes[0][colour]", "red")], "keyframes[0][colour]", "unknown_field"),
        ([("n", "2")], "n", "unknown_field"),
        ([("prompt", b"file")], "prompt", "invalid_field"),
    ],
)
def test_refusals_name_the_field(items, field, code):
    error = refused(items)
    assert (error.field, error.code, error.status) == (field, code, 422)


def test_an_extension_takes_the_video_and_nothing_its_source_decides():
    sub = read([("prompt", "on"), ("seconds", "1"), ("video[id]", "a" * 32)], extension=True)
    assert sub.source.video_id == "a" * 32 and sub.media == {}
    for field in ("size", "fps", "input_reference", "num_frames", "model"):
        assert refused([(field, "1")], extension=True).field == field


def test_keyframes_as_the_sdk_brackets_encode_a_list_of_dicts():
    # extra_body={"keyframes": [{"image": A, "frame": 0}, {"image": B, "frame": -1, "strength": 0.5}]}
    a = "data:image/png;base64," + base64.b64encode(png(8)).decode()
    b = "data:image/png;base64," + base64.b64encode(png(16)).decode()
    sub = read(
        [
            ("keyframes[][image]", a),
            ("keyframes[][frame]", "0"),
            ("keyframes[][image]", b),
            ("keyframes[][frame]", "-1"),
            ("keyframes[][strength]", "0.5"),
        ]
    )
    assert [(k.image.data, k.frame, k.strength) for k in sub.keyframes] == [
        (png(8), 0, 1.0),
        (png(16), -1, 0.5),
    ]


def test_uploads_are_capped_one_by_one_and_together():
    assert refused([("input_reference", png(64))], max_bytes=100).status == 413
    big = png(40)
    items = [("input_reference", big), ("last_image", big)]
    error = refused(items, max_bytes=len(big) + 10)
    assert (error.status, error.code) == (413, "upload_too_large")


def test_every_wire_field_maps_to_a_request_field_or_a_conversion():
    from i2v.request import FIELDS as NUMBERS
    from i2v.request import INPUTS

    known = (
        set(NUMBERS)
        | set(INPUTS)
        | {"prompt", "negative_prompt", "model", "preset", "image", "size", "seconds"}
    )
    assert {f.ours for f in FIELDS} <= known
    assert {f.alias_of for f in FIELDS if f.alias_of} <= {f.name for f in FIELDS if not f.alias_of}


def test_seconds_round_to_the_nearest_frame_count_the_model_makes():
    spec = catalogue.get("tiny-ltx-2")  # 8k+1 frames in 9..33
    assert frames_for_seconds(spec, 1.0, 8)[0] == 9
    frames, note = frames_for_seconds(spec, 2.0, 8)
    assert frames == 17 and "16 frames" in note and "17 frames" in note
    assert frames_for_seconds(spec, 0.1, 8)[0] == 9  # below the shortest: the shortest
    assert frames_for_seconds(spec, 1.0, 8, plus_one=True)[0] == 9  # 8 new frames after the seam
    with pytest.raises(ApiError) as caught:
        frames_for_seconds(spec, 4.2, 8)
    assert (caught.value.field, caught.value.extra["nearest"]) == ("seconds", 4.125)
    svd = catalogue.get("tiny-svd")  # any count in 2..16
    assert frames_for_seconds(svd, 0.5, 8) == (4, "`seconds` = 0.5 at 8 fps: 4 frames")


def test_loras_are_plain_names_in_the_folder(tmp_path):
    (tmp_path / "style.safetensors").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    outside = tmp_path.parent / "outside.safetensors"
    outside.write_bytes(b"x")
    (tmp_path / "link.safetensors").symlink_to(outside)
    folder = tmp_path.resolve()
    files, names = lora_files(("style.safetensors:0.7",), folder)
    assert files == [f"{folder / 'style.safetensors'}:0.7"] and names == {
        str(folder / "style.safetensors"): "style.safetensors"
    }
    for bad in (
        "../outside.safetensors",
        "/etc/passwd",
        "notes.txt",
        "link.safetensors",
        "styel.safetensors",
        ".x.safetensors",
    ):
        with pytest.raises(ApiError) as caught:
            lora_files((bad,), folder)
        assert caught.value.field == "loras" and caught.value.valid == ["style.safetensors"], bad
    with pytest.raises(ApiError) as caught:
        lora_files(("styel.safetensors",), folder)
    assert caught.value.extra["nearest"] == "style.safetensors"


def test_media_types_come_from_the_bytes(tmp_path):
    import numpy as np

    from i2v.video import write_mp4

    write_mp4(np.zeros((3, 16, 16, 3), "float32"), tmp_path / "a.mp4", fps=8)
    mp4 = (tmp_path / "a.mp4").read_bytes()
    assert check("reference_video", "video", mp4, max_bytes=1 << 20, max_pixels=1 << 20).suffix == ".mp4"
    assert check("reference_video", "video", mp4, max_bytes=1 << 20, max_pixels=1 << 20).duration_s > 0
    assert sniff("audio", "audio", b"RIFF\x00\x00\x00\x00WAVEfmt ") == ".wav"
    assert sniff("audio", "audio", b"ID3\x04") == ".mp3"
    for kind, data in (("audio", png()), ("video", png()), ("video", b"RIFF\x00\x00\x00\x00WAVE")):
        with pytest.raises(ApiError) as caught:
            sniff("x", kind, data)
        assert caught.value.status == 415
    with pytest.raises(ApiError) as caught:  # an mp4 header with nothing behind it
        check("video", "video", mp4[:40], max_bytes=1 << 20, max_pixels=1 << 20)
    assert (caught.value.status, caught.value.field) == (422, "video")


def test_data_urls_decode_and_nothing_else_does():
    assert decode_data_url("f", "data:image/png;base64," + base64.b64encode(b"abc").decode(), 100) == b"abc"
    for bad in ("data:image/png,abc", "data:;base64,@@@", "abc"):
        with pytest.raises(ApiError, match="data: URL"):
            decode_data_url("f", bad, 100)
    for url in ("file:///etc/passwd", "HTTP://x/y", " https://example.com/a.mp4"):
        with pytest.raises(ApiError, match="fetches nothing from the network"):
            decode_data_url("f", url, 100)
    with pytest.raises(ApiError) as caught:
        decode_data_url("f", "data:a/b;base64," + "A" * 400, 100)
    assert caught.value.status == 413
