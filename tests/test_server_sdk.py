"""The official `openai` SDK (pinned in pyproject's dev extra) as the client of `i2v serve`: a real
subprocess on loopback, a real worker running tiny-ltx-2 on CPU, bearer keys. The whole life cycle
goes through `client.videos`: create_and_poll, retrieve, list, download_content for each variant,
extend, delete, and our options (modes, their media inputs, LoRAs) as `extra_body`.

The SDK marks every Videos method deprecated (OpenAI shut its hosted service down); that one
DeprecationWarning is filtered by its message, nothing else.
"""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import openai
import pytest
from service_harness import Service, record_figure

from i2v.video import probe_mp4, read_frames, write_mp4

pytestmark = pytest.mark.filterwarnings(
    "ignore:The Sora API is scheduled to permanently shut down:DeprecationWarning"
)
MODEL = "tiny-ltx-2"
KEY = "sdk-key-0123"
LORA = "ic-style.safetensors"
FAST = {"num_inference_steps": 2, "seed": 7}


@pytest.fixture(scope="module")
def loras(tmp_path_factory):
    from i2v.tiny.build import build_pipeline
    from i2v.tiny.lora import write_random_lora

    folder = tmp_path_factory.mktemp("loras")
    write_random_lora(build_pipeline(MODEL).transformer, folder / LORA, seed=7)
    return folder


@pytest.fixture(scope="module")
def service(tmp_path_factory, loras):
    svc = Service(
        tmp_path_factory.mktemp("sdk-service"),
        tmp_path_factory.getbasetemp() / "models",
        model=MODEL,
        api_keys=KEY,
        loras_dir=loras,
        queue_size=8,
        lease_s=3,
        poll_interval_s=0.05,
    ).start()
    yield svc
    assert svc.stop() == 0, svc.log()


@pytest.fixture(scope="module")
def client(service):
    return openai.OpenAI(base_url=service.url + "/v1", api_key=KEY)


def picture(seed: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.random.RandomState(seed).rand(64, 64, 3) * 255).astype("uint8")).save(buffer, "PNG")
    return buffer.getvalue()


def data_url(data: bytes, media: str) -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode()}"


def mp4_bytes(tmp_path, frames: int = 9, seed: int = 3) -> bytes:
    path = tmp_path / f"ref-{seed}.mp4"
    write_mp4(np.random.RandomState(seed).rand(frames, 64, 64, 3).astype("float32"), path, fps=8)
    return path.read_bytes()


def decoded(service: Service, content: bytes, name: str):
    path = service.root / name
    path.write_bytes(content)
    return path


def uploads(service: Service) -> list[str]:
    folder = service.outputs / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def count(service: Service, status: int, route: str) -> float:
    text = service.client(KEY).get("/metrics").text
    line = f'i2v_http_responses_total{{method="POST",route="{route}",status="{status}"}} '
    return next((float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)), 0.0)


def test_the_life_cycle_through_the_sdk(service, client):
    video = client.videos.create_and_poll(
        prompt="a red ball rolls to the left",
        input_reference=("ball.png", picture(0), "image/png"),
        model=MODEL,
        size="64x64",
        seconds="1",
        extra_body=FAST | {"negative_prompt": "blurry"},
    )
    extra = video.model_extra
    assert (video.object, video.status, video.progress, video.model) == ("video", "completed", 100, MODEL)
    # 1 s at 8 fps is 8 frames; LTX-2 makes 8k+1, so 9 frames (1.125 s), and the job says so
    assert (video.size, video.seconds, extra["frames"], extra["fps"]) == ("64x64", "1.125", 9, 8)
    assert any("9 frames" in note for note in extra["notes"]), extra["notes"]
    assert video.prompt == "a red ball rolls to the left" and video.error is None
    assert isinstance(video.created_at, int) and video.created_at <= video.completed_at <= time.time() + 1
    assert extra["request"]["negative_prompt"] == "blurry" and extra["request"]["steps"] == 2
    assert extra["plan"]["model"] == MODEL and extra["seconds_per_step"] > 0

    raw = client.videos.with_raw_response.retrieve(video.id)
    assert raw.parse().id == video.id and "openai-poll-after-ms" not in raw.headers  # finished: no advice

    mp4 = decoded(service, client.videos.download_content(video.id).content, "life.mp4")
    info = probe_mp4(mp4)
    assert (info.frames, info.width, info.height, info.codec, info.has_audio) == (9, 64, 64, "h264", True)
    frames = read_frames(mp4).astype(float)
    from PIL import Image

    thumb = client.videos.download_content(video.id, variant="thumbnail")
    assert thumb.response.headers["content-type"] == "image/webp"
    thumbnail = np.asarray(Image.open(io.BytesIO(thumb.content)).convert("RGB"), dtype=float)
    assert thumbnail.shape == (64, 64, 3)
    # the first frame, not another one: nearer frame 0 than any later frame
    distances = [np.abs(thumbnail - f).mean() for f in frames]
    assert distances[0] < min(distances[1:]) / 2, distances
    sheet = client.videos.download_content(video.id, variant="spritesheet")
    assert sheet.response.headers["content-type"] == "image/jpeg"
    layout = extra["result"]["spritesheet"]
    grid = np.asarray(Image.open(io.BytesIO(sheet.content)).convert("RGB"), dtype=float)
    assert grid.shape == (layout["rows"] * 64, layout["columns"] * 64, 3) and layout["frames"] == list(
        range(9)
    )
    for slot, index in enumerate(layout["frames"]):
        row, column = divmod(slot, layout["columns"])
        tile = grid[row * 64 : (row + 1) * 64, column * 64 : (column + 1) * 64]
        assert int(np.argmin([np.abs(tile - f).mean() for f in frames])) == index

    second = client.videos.create_and_poll(
        prompt="another", input_reference=("b.png", picture(1), "image/png"), size="64x64", extra_body=FAST
    )
    listed = [v.id for v in client.videos.list(limit=1)]  # the SDK pages on with after=last_id
    assert listed[:2] == [second.id, video.id]
    oldest_first = [v.id for v in client.videos.list(limit=100, order="asc")]
    assert oldest_first.index(video.id) < oldest_first.index(second.id)

    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content(video.id)
    assert video.id not in [v.id for v in client.videos.list(limit=100)]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=service.url + "/v1", api_key="wrong", max_retries=0).videos.list()
    assert uploads(service) == []
    record_figure(
        "sdk_life_cycle", {"frames": info.frames, "seconds": video.seconds, "notes": extra["notes"]}
    )


def test_mode_inputs_and_loras_as_extra_body(service, client, tmp_path):
    # ic-lora: video-to-video, no input image; the reference as a data: URL, the LoRA by name
    ic = client.videos.create_and_poll(
        prompt="in the style of the reference",
        size="64x64",
        seconds="1",
        extra_body=FAST
        | {
            "mode": "ic-lora",
            "reference_video": data_url(mp4_bytes(tmp_path), "video/mp4"),
            "loras": [f"{LORA}:0.8"],
        },
    )
    assert ic.status == "completed", ic.error
    request = ic.model_extra["request"]
    assert (request["mode"], request["reference_video"]) == ("ic-lora", "uploaded")
    assert request["loras"] == [{"name": LORA, "scale": 0.8}]  # the name, never the server's path
    # the reference named by id: a completed video of this server (reference_video[id] on the wire)
    again = client.videos.create_and_poll(
        prompt="again",
        size="64x64",
        extra_body=FAST | {"mode": "ic-lora", "reference_video": {"id": ic.id}, "loras": [LORA]},
    )
    assert again.status == "completed" and again.model_extra["frames"] == 9
    # keyframes: the first frame is the input image, the last one a data: URL in extra_body
    keyframes = client.videos.create_and_poll(
        prompt="from here to there",
        input_reference=("first.png", picture(2), "image/png"),
        size="64x64",
        extra_body=FAST | {"mode": "keyframes", "last_image": data_url(picture(3), "image/png")},
    )
    assert keyframes.status == "completed" and keyframes.model_extra["request"]["last_image"] == "uploaded"
    # two stages: the 2 requested guided steps + stage 2's 3 fixed ones, all counted to the end
    assert (keyframes.model_extra["step"], keyframes.model_extra["total_steps"]) == (5, 5)
    assert uploads(service) == []  # every staged input is removed when its job ends
    models = service.client(KEY).get("/v1/models").json()
    modes = {m["name"]: m for m in next(m for m in models["models"] if m["id"] == MODEL)["modes"]}
    assert modes["ic-lora"] | {"summary": None, "reason": None} == {
        "name": "ic-lora",
        "summary": None,
        "default": False,
        "supported": True,
        "reason": None,
        "image": "optional",
        "needs": ["reference_video"],
        "takes": ["reference_video"],
        "needs_lora": True,
        "stages": 2,
    }
    assert modes["keyframes"]["needs"] == ["last_image"] and not modes["retake"]["supported"]
    assert [entry["name"] for entry in models["loras"]] == [LORA]


def nearest(frame: np.ndarray, frames: np.ndarray) -> int:
    return int(np.argmin(np.abs(frames - frame).mean(axis=(1, 2, 3))))


def test_extend_stitches_without_a_duplicated_frame(service, client):
    from PIL import Image

    source = client.videos.create_and_poll(
        prompt="a ball",
        input_reference=("a.png", picture(4), "image/png"),
        size="64x64",
        seconds="1",
        extra_body=FAST,
    )
    source_mp4 = client.videos.download_content(source.id).content
    source_frames = read_frames(decoded(service, source_mp4, "source.mp4")).astype(float)
    # the SDK's own shape (3.57.0 refuses video={"id": ...} before sending: its file extractor takes
    # the dict for a file), so: the id through extra_body, and the mp4 itself as the file
    by_id = client.videos.extend(
        prompt="it keeps rolling",
        seconds="1",
        video=openai.omit,
        extra_body=FAST | {"video": {"id": source.id}},
    )
    by_file = client.videos.extend(
        prompt="it keeps rolling", seconds="1", video=("source.mp4", source_mp4, "video/mp4"), extra_body=FAST
    )
    assert by_id.model_extra["extended_from_video_id"] == source.id
    assert by_file.model_extra["extended_from_video_id"] is None
    # The same run as a plain job: the source's last frame as the image, the same seed and length.
    last = io.BytesIO()
    Image.fromarray(source_frames[-1].astype("uint8")).save(last, "PNG")
    plain = client.videos.create_and_poll(
        prompt="it keeps rolling",
        input_reference=("last.png", last.getvalue(), "image/png"),
        size="64x64",
        extra_body=FAST | {"num_frames": 9},
    )
    segment = read_frames(decoded(service, client.videos.download_content(plain.id).content, "seg.mp4"))
    segment = segment.astype(float)
    for job in (by_id, by_file):
        done = client.videos.poll(job.id)
        assert done.status == "completed", done.error
        # 1 s of new video at 8 fps: a 9-frame segment whose first frame is the source's last
        assert (done.seconds, done.model_extra["frames"], done.size) == ("2.125", 17, "64x64")
        result = done.model_extra["result"]
        assert (result["source_frames"], result["segment_frames"], result["frames"]) == (9, 9, 17)
        stitched = read_frames(decoded(service, client.videos.download_content(done.id).content, "x.mp4"))
        stitched = stitched.astype(float)
        assert len(stitched) == 9 + 9 - 1
        # the source comes through frame for frame (decoded and encoded once more) ...
        assert [nearest(f, source_frames) for f in stitched[:9]] == list(range(9))
        # ... then the segment from its second frame on: its first (the source's last instant) is not shown
        assert [nearest(f, segment) for f in stitched[9:]] == list(range(1, 9))
    record_figure(
        "sdk_extend", {"source_frames": 9, "stitched_frames": len(stitched), "seconds": done.seconds}
    )


def test_poll_follows_the_servers_advice_and_cancel_reads_as_failed(service, client):
    long = client.videos.create(
        prompt="slow",
        input_reference=("a.png", picture(5), "image/png"),
        size="64x64",
        extra_body={"num_inference_steps": 150},
    )
    deadline = time.monotonic() + 60
    while client.videos.retrieve(long.id).status == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    queued = client.videos.create(
        prompt="waits", input_reference=("a.png", picture(6), "image/png"), size="64x64", extra_body=FAST
    )
    waits: list[float] = []
    advised: list[int] = []
    real_sleep = client.videos._sleep

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        raw = client.videos.with_raw_response.retrieve(long.id)
        if raw.parse().status == "in_progress":
            advised.append(int(raw.headers["openai-poll-after-ms"]))
            if len(advised) == 3:
                client.videos.delete(long.id)  # cancel it mid-run: it stops at its next step
        real_sleep(seconds)

    raw = client.videos.with_raw_response.retrieve(queued.id)
    assert raw.parse().model_extra["queue_position"] == 0 and int(raw.headers["openai-poll-after-ms"]) >= 250
    deleted = client.videos.delete(queued.id)  # queued: cancelled at once
    assert deleted.deleted and deleted.model_extra["state"] == "cancelled"
    client.videos._sleep = sleep
    try:
        ended = client.videos.poll(long.id)
    finally:
        client.videos._sleep = real_sleep
    # poll slept what the header said: about one denoising step, within 250 ms .. 10 s. openai 3.57.0
    # reads the header on its first read only and keeps that interval.
    assert waits and len(set(waits)) == 1 and 250 <= waits[0] * 1000 <= 10_000
    assert advised and all(250 <= a <= 10_000 for a in advised)
    # cancelled reads as failed (the SDK's poll stops on it) with error.code "cancelled"
    assert (ended.status, ended.error.code, ended.model_extra["state"]) == (
        "failed",
        "cancelled",
        "cancelled",
    )
    assert 0 < ended.model_extra["step"] < 150 and ended.progress < 95
    cancelled = client.videos.retrieve(queued.id)
    assert (cancelled.status, cancelled.error.code, cancelled.progress) == ("failed", "cancelled", 0)
    assert uploads(service) == []
    record_figure("sdk_poll", {"sleeps_s": [round(w, 3) for w in waits[:5]], "advised_ms": advised[:5]})


def wav_bytes(seconds: float = 0.5, rate: int = 16000) -> bytes:
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.sin(np.arange(int(seconds * rate)) / 9) * 8000).astype("<i2").tobytes())
    return buffer.getvalue()


def test_bad_input_is_a_422_naming_the_field_and_nothing_is_admitted(service, client, tmp_path):
    before = [v.id for v in client.videos.list(limit=100)]
    image = ("a.png", picture(0), "image/png")

    def refused(**kwargs) -> dict:
        with pytest.raises(openai.UnprocessableEntityError) as caught:
            client.videos.create(prompt="x", **kwargs)
        return caught.value.body

    cases = {
        "size": refused(input_reference=image, size="65x64"),
        "size-two-stage": refused(input_reference=image, size="96x64", extra_body={"mode": "two-stage"}),
        "seconds": refused(input_reference=image, size="64x64", seconds="10"),
        "lora": refused(size="64x64", extra_body={"mode": "ic-lora", "loras": ["nope.safetensors"]}),
        "lora-path": refused(extra_body={"mode": "ic-lora", "loras": ["../ic-style.safetensors"]}),
        "needs-lora": refused(
            size="64x64",
            extra_body={"mode": "ic-lora", "reference_video": data_url(mp4_bytes(tmp_path), "video/mp4")},
        ),
        "url": refused(
            input_reference=image, extra_body={"mode": "keyframes", "last_image": "https://x.test/a.png"}
        ),
        "mode-input": refused(
            input_reference=image, extra_body={"audio": data_url(wav_bytes(), "audio/wav")}
        ),
        "alias-conflict": refused(input_reference=image, extra_body={"num_frames": 9, "frames": 9}),
    }
    assert (cases["size"]["param"], cases["size"]["value"], cases["size"]["nearest"]) == (
        "size",
        "65x64",
        "64x64",
    )
    # two-stage modes halve the size onto the VAE grid: a multiple of 64 on tiny-ltx-2
    assert cases["size-two-stage"]["param"] == "size" and cases["size-two-stage"]["nearest"] in (
        "64x64",
        "128x64",
    )
    # 10 s at 8 fps is 80 frames; tiny-ltx-2 makes at most 33 (4.125 s)
    assert (cases["seconds"]["param"], cases["seconds"]["nearest"]) == ("seconds", 4.125)
    assert cases["lora"]["param"] == "loras" and cases["lora"]["valid"] == [LORA]
    assert cases["lora-path"]["param"] == "loras" and "plain" in cases["lora-path"]["message"]
    assert cases["needs-lora"]["param"] in ("loras", "reference_video")
    assert cases["url"]["param"] == "last_image" and "network" in cases["url"]["message"]
    assert cases["mode-input"]["param"] == "audio"
    assert cases["alias-conflict"]["code"] == "conflicting_fields"
    for name, body in cases.items():
        assert "/uploads/" not in json.dumps(body), (name, body)  # no server path in any answer
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.videos.download_content("0" * 32, variant="poster")  # type: ignore[arg-type]
    assert (caught.value.body["param"], caught.value.body["nearest"]) == ("variant", "video")
    assert caught.value.body["valid"] == ["video", "thumbnail", "spritesheet"]
    assert [v.id for v in client.videos.list(limit=100)] == before and uploads(service) == []
    record_figure("sdk_refusals", {name: [body["param"], body["message"]] for name, body in cases.items()})


def test_what_the_sdk_has_and_we_do_not_serve_is_a_501_it_does_not_retry(service, client):
    before = count(service, 501, "/v1/videos/{job_id}/remix")
    calls = {
        "remix": lambda: client.videos.remix("0" * 32, prompt="x"),
        "edit": lambda: client.videos.edit(prompt="x", video=("a.mp4", b"x", "video/mp4")),
        "create_character": lambda: client.videos.create_character(
            name="x", video=("a.mp4", b"x", "video/mp4")
        ),
        "get_character": lambda: client.videos.get_character("c1"),
    }
    for name, call in calls.items():
        with pytest.raises(openai.InternalServerError) as caught:
            call()
        assert (caught.value.status_code, caught.value.code) == (501, "not_implemented"), name
    assert count(service, 501, "/v1/videos/{job_id}/remix") == before + 1  # x-should-retry: false
