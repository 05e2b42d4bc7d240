"""LTX-2.3's eight modes through what users touch: `i2v generate` and `POST /v1/videos` on tiny-ltx-2.3.

The CLI is the real typer app in this process; the API a real `i2v serve` subprocess with a real worker
on CPU. Every mp4 is decoded back (frames, size, stereo audio). The warm worker's second request reads
no weights (the job says so: load time 0, bytes read 0). Bad inputs are refused before anything runs,
each naming the field, the value and what is valid, and nothing is admitted.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ltx_pipelines")

from service_harness import Service, record_figure  # noqa: E402

from i2v.video import probe_mp4  # noqa: E402

MODEL = "tiny-ltx-2.3"
SIZE, FRAMES, FPS = 64, 9, 24
MODES = (
    "two-stage",
    "two-stage-hq",
    "one-stage",
    "distilled",
    "keyframes",
    "audio-to-video",
    "retake",
    "ic-lora",
)
IC_LORA = "ic-depth.safetensors"


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from i2v.tiny import ltx23

    folder = tmp_path_factory.mktemp("ltx23-media")
    found = ltx23.write_test_media(folder, size=SIZE, frames=FRAMES, fps=FPS)
    loras = folder / "loras"
    loras.mkdir()
    found["ic_lora"] = ltx23.write_ic_lora(loras / IC_LORA)
    found["ten_frames"] = ltx23.write_clip(folder / "ten.mp4", SIZE, SIZE, 10, FPS)
    found["odd_size"] = ltx23.write_clip(folder / "odd.mp4", 80, SIZE, FRAMES, FPS)
    found["text"] = folder / "notes.wav"
    found["text"].write_text("this is not audio")
    return found


def cli_inputs(mode: str, media) -> list[str]:
    return {
        "keyframes": ["--image", str(media["first"]), "--last-image", str(media["last"])],
        "audio-to-video": ["--audio", str(media["audio"])],
        "retake": ["--video", str(media["video"]), "--start-time", "0.1", "--end-time", "0.3"],
        "ic-lora": ["--reference-video", str(media["video"]), "--lora", str(media["ic_lora"])],
    }.get(mode, ["--image", str(media["first"])])


def check_mp4(path, frames: int = FRAMES) -> None:
    info = probe_mp4(path)
    assert (info.frames, info.width, info.height) == (frames, SIZE, SIZE)
    assert info.has_audio and info.audio_channels == 2  # the generated (or, audio-to-video, the input) track


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_through_the_cli(mode, media, tmp_path_factory, tmp_path):
    from typer.testing import CliRunner

    from i2v.cli import app

    models = tmp_path_factory.getbasetemp() / "models"
    out = tmp_path / f"{mode}.mp4"
    args = ["generate", "--model", MODEL, "--mode", mode, "--prompt", "a red ball rolls", "--steps", "2"]
    args += ["--height", str(SIZE), "--width", str(SIZE), "--frames", str(FRAMES), "--fps", str(FPS)]
    result = CliRunner().invoke(
        app,
        [*args, *cli_inputs(mode, media), "--out", str(out), "--json"],
        env={"I2V_MODELS_DIR": str(models), "I2V_DEVICE": "cpu"},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["request"]["mode"] == mode and data["frames"] == FRAMES and data["has_audio"]
    check_mp4(out)
    if mode == "audio-to-video":
        assert any("mono input upmixed to stereo" in n for n in data["plan"]["notes"])
    record_figure(f"ltx23 cli {mode} seconds", data["seconds"])


def _parts(mode: str, media) -> tuple[dict, dict]:
    """(files, form fields) of a multipart request for ``mode``, in the API's field names."""

    def part(key: str, media_type: str) -> tuple:
        return (media[key].name, media[key].read_bytes(), media_type)

    image = {"input_reference": part("first", "image/png")}
    return {
        "keyframes": (image | {"last_image": part("last", "image/png")}, {}),
        "audio-to-video": ({"audio": part("audio", "audio/wav")}, {}),
        "retake": ({"video": part("video", "video/mp4")}, {"start_time": "0.1", "end_time": "0.3"}),
        "ic-lora": ({"reference_video": part("video", "video/mp4")}, {"loras": IC_LORA}),
    }.get(mode, (image, {}))


@pytest.fixture(scope="module")
def service(tmp_path_factory, media):
    svc = Service(
        tmp_path_factory.mktemp("ltx23-service"),
        tmp_path_factory.getbasetemp() / "models",
        model=MODEL,
        loras_dir=media["ic_lora"].parent,
        queue_size=16,
        poll_interval_s=0.05,
    ).start()
    yield svc
    assert svc.stop() == 0, svc.log()


def submit(service, client, mode: str, media, **extra):
    files, data = _parts(mode, media)
    fields = {"prompt": "a red ball rolls", "mode": mode, "size": f"{SIZE}x{SIZE}", "num_frames": FRAMES}
    fields |= {"fps": FPS, "num_inference_steps": 2, "seed": 3} | data | extra
    return client.post("/v1/videos", files=files, data={k: str(v) for k, v in fields.items()})


def test_every_mode_through_the_api_and_the_warm_second_request(service, media):
    client = service.client()
    jobs = {}
    for mode in MODES:
        response = submit(service, client, mode, media)
        assert response.status_code == 202, response.text
        jobs[mode] = response.json()["id"]
    done = {mode: service.wait_job(client, job, timeout=600) for mode, job in jobs.items()}
    for mode, job in done.items():
        assert job["state"] == "succeeded", (mode, job["error"], service.log())
        content = client.get(f"/v1/videos/{job['id']}/content")
        assert content.status_code == 200
        path = service.root / f"{mode}.mp4"
        path.write_bytes(content.content)
        check_mp4(path)
        assert job["total_steps"] == job["step"] > 0
    # The same request again on the warm worker: no model is built, no weight is read.
    first = done["two-stage"]["result"]
    again = service.wait_job(client, submit(service, client, "two-stage", media).json()["id"], timeout=300)
    assert first["weights_read_bytes"] > 1_000_000 and first["load_s"] > 0
    assert again["result"]["weights_read_bytes"] == 0 and again["result"]["load_s"] == 0
    record_figure(
        "ltx23 api warm second request",
        {
            k: {"load_s": r["load_s"], "bytes": r["weights_read_bytes"], "run_s": r["run_s"]}
            for k, r in (("first", first), ("second", again["result"]))
        },
    )
    record_figure("ltx23 api run seconds", {mode: job["result"]["run_s"] for mode, job in done.items()})


BAD = [
    # (mode, what to change, status, field named, words in the message)
    ("audio-to-video", {"drop": "audio"}, 422, "audio", "needs it"),
    ("audio-to-video", {"file": ("audio", "text", "audio/wav")}, 415, "audio", "is not an WAV, MP3, FLAC"),
    ("retake", {"file": ("video", "ten_frames", "video/mp4")}, 422, "video", "8k+1"),
    ("retake", {"file": ("video", "odd_size", "video/mp4")}, 422, "video", "multiple of 32"),
    ("retake", {"form": {"start_time": "0.1", "end_time": "5.0"}}, 422, "end_time", "at most 0.375 s"),
    ("keyframes", {"form": {"keyframes[0][frame]": "20"}}, 422, "keyframes", "a frame of the 9-frame video"),
    ("ic-lora", {"drop": "reference_video"}, 422, "reference_video", "needs it"),
]


@pytest.mark.parametrize("mode, change, status, field, words", BAD, ids=[f"{b[0]}-{b[3]}" for b in BAD])
def test_bad_inputs_are_refused_before_anything_runs(service, media, mode, change, status, field, words):
    client = service.client()
    before = client.get("/v1/videos").json()["data"]
    files, data = _parts(mode, media)
    if "drop" in change:
        files.pop(change["drop"])
    if "file" in change:
        name, key, media_type = change["file"]
        files[name] = (media[key].name, media[key].read_bytes(), media_type)
    if "form" in change:
        data |= change["form"]
        if mode == "keyframes":
            files["keyframes[0][image]"] = (media["last"].name, media["last"].read_bytes(), "image/png")
    fields = {"prompt": "p", "mode": mode, "size": f"{SIZE}x{SIZE}", "num_frames": FRAMES, "fps": FPS} | data
    # every field a multipart part, so a request without any file is still multipart/form-data
    parts = [(k, (None, str(v))) for k, v in fields.items()] + list(files.items())
    response = client.post("/v1/videos", files=parts)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"].startswith(field) and words in error["message"], error
    assert client.get("/v1/videos").json()["data"] == before  # nothing admitted


def test_cli_refuses_a_retake_source_that_is_not_8k_plus_1_frames(media, tmp_path):
    from typer.testing import CliRunner

    from i2v.cli import app

    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--model",
            MODEL,
            "--mode",
            "retake",
            "--prompt",
            "p",
            "--video",
            str(media["ten_frames"]),
            "--start-time",
            "0.1",
            "--end-time",
            "0.2",
            "--out",
            str(tmp_path / "x.mp4"),
        ],
        env={"I2V_MODELS_DIR": str(tmp_path / "none")},
    )
    assert result.exit_code == 2, result.output
    assert (
        "`video` = " in result.output
        and "8k+1" in result.output
        and "nearest valid value: 9" in result.output
    )
    assert not (tmp_path / "none").exists() and not (tmp_path / "x.mp4").exists()  # nothing built or written
