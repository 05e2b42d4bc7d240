"""The video service end to end: `i2v serve` in a subprocess on loopback, a real SQLite file, a
real worker process running tiny-svd on CPU. The tests share one service and run in file order;
each keeps its measured figure in test-artifacts/service-figures.json."""

from __future__ import annotations

import collections
import io
import json
import os
import re
import signal
import socket
import struct
import threading
import time
import zlib

import httpx
import pytest
from service_harness import Service, alive, png_bytes, record_figure, rss_kib

from i2v.server.wire import body_limit
from i2v.video import probe_mp4

QUEUE = 4
KEYS = "k-one-secret,k-two-secret"
MAX_UPLOAD = 1024 * 1024
MAX_PIXELS = 1024 * 1024
SMALL = {"model": "tiny-svd", "height": 32, "width": 32, "frames": 2, "steps": 1}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    models = tmp_path_factory.getbasetemp() / "models"
    svc = Service(
        tmp_path_factory.mktemp("service"),
        models,
        model="tiny-svd",
        queue_size=QUEUE,
        api_keys=KEYS,
        max_upload_bytes=MAX_UPLOAD,
        max_image_pixels=MAX_PIXELS,
        lease_s=3,
        drain_grace_s=5,
        poll_interval_s=0.05,
    ).start()
    yield svc
    assert svc.stop() == 0, svc.log()


@pytest.fixture(scope="module")
def client(service):
    with service.client() as c:
        yield c


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height zeros: tiny on the wire, `width*height` pixels once decoded.
    Streamed through zlib row by row, so building it never holds the pixels either."""
    row = b"\x00" * (1 + (width + 7) // 8)
    z = zlib.compressobj(9)
    parts = [z.compress(row) for _ in range(height)] + [z.flush()]
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def image_as(fmt: str, size: tuple[int, int] = (64, 64), noise: bool = False) -> bytes:
    from PIL import Image

    if noise:
        import numpy as np

        image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size[::-1], 3), dtype="uint8"))
    else:
        image = Image.new("RGB", size, (200, 40, 40))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def raw_http(service: Service, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (httpx would normalise `..` and fix headers); return (status, body)."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def auth(key: str = KEYS.split(",")[0]) -> str:
    return f"Authorization: Bearer {key}\r\n"


# --- admission --------------------------------------------------------------------------------------


def test_exact_admission_under_concurrent_submissions(service, client):
    long = service.submit(client, model="tiny-svd", height=128, width=128, frames=16, steps=150).json()
    service.wait_job(client, long["id"], states=("running",), until=lambda j: j["step"] >= 1)
    n = 24
    barrier = threading.Barrier(n)
    answers: list[httpx.Response] = []

    def one() -> None:
        with service.client() as c:
            barrier.wait()
            answers.append(service.submit(c, **SMALL))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = collections.Counter(r.status_code for r in answers)
    accepted = [r.json()["id"] for r in answers if r.status_code == 202]
    refused = [r for r in answers if r.status_code == 429]
    record_figure(
        "admission", {"concurrent": n, "queue_size": QUEUE, "running": 1, "statuses": dict(statuses)}
    )
    assert statuses == {202: QUEUE, 429: n - QUEUE}, statuses
    assert all(
        int(r.headers["Retry-After"]) >= 1 and r.json()["error"]["code"] == "queue_full" for r in refused
    )
    assert len(client.get("/v1/videos", params={"state": "queued"}).json()["data"]) == QUEUE
    for job_id in [*accepted, long["id"]]:  # clean up: cancel them all
        assert client.delete(f"/v1/videos/{job_id}").status_code in (200, 202)
    assert service.wait_job(client, long["id"])["state"] == "cancelled"


# --- malformed requests -----------------------------------------------------------------------------


def _corpus() -> list[tuple[str, dict, int | None, str | None]]:
    """(name, httpx.request kwargs, expected status or None for any 4xx, expected error field)."""
    good = png_bytes(64, 64)
    files = lambda data, name="in.png", ctype="image/png": {"image": (name, data, ctype)}  # noqa: E731

    def post(data=None, f=None, **kw):
        return dict(
            method="POST", url="/v1/videos", data=data or {}, files=f if f is not None else files(good), **kw
        )

    cases: list[tuple[str, dict, int | None, str | None]] = []
    # wrong media type
    for name, kw in {
        "json": dict(json={"prompt": "x"}),
        "text": dict(content=b"hello", headers={"Content-Type": "text/plain"}),
        "urlencoded": dict(data={"prompt": "x"}),
        "empty": dict(content=b""),
        "octets": dict(content=good, headers={"Content-Type": "application/octet-stream"}),
        "png-body": dict(content=good, headers={"Content-Type": "image/png"}),
    }.items():
        cases.append((f"media-{name}", dict(method="POST", url="/v1/videos", **kw), 415, "Content-Type"))
    # integers and numbers that are not
    for field in ("height", "width", "frames", "steps", "fps", "seed"):
        for bad in ("abc", "1.5", "1e3", "0x10", "12abc", "٣", "9" * 25):
            cases.append((f"{field}-{bad[:6]}", post({field: bad}), 422, field))
    for bad in ("nan", "inf", "-inf", "abc", "1e400", "1" * 40):
        cases.append((f"guidance-{bad[:6]}", post({"guidance": bad}), 422, "guidance"))
    # out of the model's range (tiny-svd: sizes 32..256 multiple of 32, frames 2..16, steps 1..150)
    for field, values in {
        "height": (0, -32, 31, 33, 288, 100000),
        "width": (16, 48, 4096),
        "frames": (0, 1, 17, 1000),
        "steps": (0, -1, 151),
        "fps": (0, 61, -5),
        "seed": (-1, 2**63),
        "guidance": (-0.5, 20.5, 1000),
    }.items():
        for value in values:
            cases.append((f"{field}={value}", post({"model": "tiny-svd", field: str(value)}), 422, field))
    for value in ("nope", "../../etc/passwd", "TINY-SVD", "tiny-svd\x00"):
        cases.append((f"model-{value[:8]}", post({"model": value}), 422, "model"))
    for value in ("turbo", "FAST", "standard "):
        cases.append((f"preset-{value}", post({"preset": value}), 422, "preset"))
    cases.append(("prompt-too-long", post({"prompt": "x" * 2001}), 422, "prompt"))
    cases.append(("negative-too-long", post({"negative_prompt": "y" * 2001}), 422, "negative_prompt"))
    cases.append(("prompt-nul", post({"prompt": "a\x00b"}), 422, "prompt"))
    for name in ("colour", "n", "quality", "image_url", "Model", "size[0]", "prompt[x]"):
        cases.append((f"unknown-{name}", post({name: "1"}), 422, name))
    cases.append(("weights-missing", post({"model": "svd-xt", "preset": "fast"}), 422, "model"))
    # the image part
    cases.append(("no-image", post(f={"prompt": (None, "x")}), 422, "input_reference"))
    cases.append(
        (
            "image-as-text",
            dict(
                method="POST", url="/v1/videos", data={"image": "not a file"}, files={"prompt": (None, "x")}
            ),
            422,
            "image",
        )
    )
    bad_images = {
        "empty": (b"", 422),
        "text": (b"hello, I am a PNG", 415),
        "html": (b"<html><body>x</body></html>", 415),
        "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"/>', 415),
        "zip": (b"PK\x03\x04" + b"\x00" * 100, 415),
        "pdf": (b"%PDF-1.7\n" + b"\x00" * 100, 415),
        "elf": (b"\x7fELF" + b"\x00" * 100, 415),
        "gif": (image_as("GIF"), 415),
        "bmp": (image_as("BMP"), 415),
        "tiff": (image_as("TIFF"), 415),
        "ico": (image_as("ICO", (32, 32)), 415),
        "truncated-png": (good[: len(good) // 2], 422),
        "png-header-only": (good[:33], None),
        "truncated-jpeg": (image_as("JPEG", noise=True)[:600], 422),
        "corrupt-idat": (good[:60] + b"\xff" * 40 + good[100:], 422),
        "random": (bytes(range(256)) * 4, 415),
        "over-pixel-cap": (image_as("PNG", (1100, 1000)), 413),
        "over-byte-cap": (image_as("PNG", (600, 600), noise=True), 413),
        "bomb-1gpx": (bomb_png(40000, 40000), 413),
        "bomb-100mpx": (bomb_png(10000, 10000), 413),
    }
    for name, (data, status) in bad_images.items():
        cases.append((f"image-{name}", post(f=files(data)), status, "image"))
    cases.append(
        (
            "two-images",
            dict(
                method="POST",
                url="/v1/videos",
                files=[("image", ("a.png", good, "image/png")), ("image", ("b.png", good, "image/png"))],
            ),
            422,
            "image",
        )
    )
    cases.append(
        (
            "field-twice",
            dict(
                method="POST",
                url="/v1/videos",
                files=[("image", ("a.png", good, "image/png"))],
                data={"steps": ["1", "2"]},
            ),
            422,
            "steps",
        )
    )
    cases.append(
        (
            "body-over-limit",
            dict(method="POST", url="/v1/videos", files=files(b"\x89PNG" + b"\x00" * (MAX_UPLOAD + 70_000))),
            413,
            None,
        )
    )
    head = (
        b'--zz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    )
    chunks = (head if i == 0 else b"x" * 65536 for i in range(2 + body_limit(MAX_UPLOAD) // 65536))
    cases.append(
        (
            "chunked-over-limit",
            dict(
                method="POST",
                url="/v1/videos",
                content=chunks,
                headers={"Content-Type": "multipart/form-data; boundary=zz"},
            ),
            413,
            None,
        )
    )
    cases.append(
        (
            "multipart-no-boundary",
            dict(
                method="POST",
                url="/v1/videos",
                content=b"--x\r\n\r\n",
                headers={"Content-Type": "multipart/form-data"},
            ),
            400,
            None,
        )
    )
    cases.append(
        (
            "multipart-garbage",
            dict(
                method="POST",
                url="/v1/videos",
                content=b"\x00\x01garbage" * 50,
                headers={"Content-Type": "multipart/form-data; boundary=abc"},
            ),
            None,
            None,
        )
    )
    for key in ("a b", "x" * 300, ""):
        cases.append(
            (f"idempotency-{key[:3]}", post(headers={"Idempotency-Key": key}), 422, "Idempotency-Key")
        )
    # auth
    cases.append(("no-key", post(headers={"Authorization": ""}), 401, "Authorization"))
    cases.append(("wrong-key", post(headers={"Authorization": "Bearer nope"}), 401, "Authorization"))
    cases.append(("basic-auth", post(headers={"Authorization": "Basic azpr"}), 401, "Authorization"))
    cases.append(("key-prefix", post(headers={"Authorization": "Bearer k-one"}), 401, "Authorization"))
    # routes, methods, ids, queries
    for method, url, status in (
        ("PUT", "/v1/videos", 405),
        ("PATCH", "/v1/videos", 405),
        ("DELETE", "/v1/videos", 405),
        ("POST", "/v1/models", 405),
        ("GET", "/v1/videos/nope", 404),
        ("GET", "/v1/videos/" + "0" * 32, 404),
        ("DELETE", "/v1/videos/" + "f" * 32, 404),
        ("GET", "/v1/videos/" + "A" * 32, 404),
        ("GET", "/v1/videos/x/content", 404),
        ("GET", "/v1/videos/x/events", 404),
        ("GET", "/v2/videos", 404),
        ("GET", "/v1/nothing", 404),
        ("GET", "/v1/videos?limit=0", 422),
        ("GET", "/v1/videos?limit=101", 422),
        ("GET", "/v1/videos?limit=abc", 422),
        ("GET", "/v1/videos?after=nope", 422),
        ("GET", "/v1/videos?after=" + "0" * 32, 422),
        ("GET", "/v1/videos?order=up", 422),
        ("GET", "/v1/videos/" + "0" * 32 + "/content?variant=poster", 422),
        ("GET", "/v1/videos?state=bogus", 422),
    ):
        cases.append((f"{method} {url}", dict(method=method, url=url), status, None))
    return cases


def test_malformed_corpus_gets_4xx_and_the_worker_stays_up(service, client):
    workers_before = service.workers()
    submitted_before = len(client.get("/v1/videos", params={"limit": 100}).json()["data"])
    cases = _corpus()
    histogram: collections.Counter[int] = collections.Counter()
    failures = []
    for name, kwargs, expected, field in cases:
        try:
            response = client.request(**kwargs)
        except httpx.HTTPError as exc:
            failures.append(f"{name}: {exc!r}")
            continue
        histogram[response.status_code] += 1
        problem = None
        if not 400 <= response.status_code < 500:
            problem = f"status {response.status_code}"
        elif expected is not None and response.status_code != expected:
            problem = f"status {response.status_code}, expected {expected}"
        else:
            error = response.json()["error"]
            assert set(error) >= {"code", "message", "field", "value", "valid"}
            if field is not None and error["field"] != field:
                problem = f"field {error['field']!r}, expected {field!r}"
        if problem:
            failures.append(f"{name}: {problem}: {response.text[:300]}")
    record_figure("malformed_corpus", {"requests": len(cases), "statuses": dict(sorted(histogram.items()))})
    assert not failures, "\n".join(failures)
    assert len(cases) >= 100
    assert service.workers() == workers_before and all(alive(p) for p in workers_before)
    assert client.get("/health/ready").status_code == 200
    items = client.get("/v1/videos", params={"limit": 100}).json()["data"]
    assert len(items) == submitted_before  # none of them became a job
    job = service.submit(client, **SMALL).json()
    assert service.wait_job(client, job["id"])["state"] == "succeeded"


def test_decompression_bomb_is_refused_with_little_memory(service, client):
    bomb = bomb_png(40000, 40000)  # 1.6 Gpx: 200 MB as 1-bit, 4.8 GB as RGB
    with open(f"/proc/{service.pid}/clear_refs", "w") as handle:
        handle.write("5")  # reset the API process's peak RSS (VmHWM)
    rss_before = rss_kib(service.pid)
    started = time.perf_counter()
    response = client.post("/v1/videos", files={"image": ("bomb.png", bomb, "image/png")})
    elapsed = time.perf_counter() - started
    peak_growth_mib = (rss_kib(service.pid, "VmHWM") - rss_before) / 1024
    record_figure(
        "decompression_bomb",
        {
            "pixels": 40000 * 40000,
            "bytes": len(bomb),
            "status": response.status_code,
            "api_peak_rss_growth_mib": round(peak_growth_mib, 1),
            "api_rss_mib": round(rss_before / 1024, 1),
            "seconds": round(elapsed, 3),
        },
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "image_too_large"
    assert peak_growth_mib < 32, f"the API's peak RSS grew {peak_growth_mib:.0f} MiB"  # not decoded


# --- paths ------------------------------------------------------------------------------------------


def test_path_traversal_is_contained(service, client):
    secret = service.root / "secret.txt"
    secret.write_text("root:x:0:0 TOP SECRET")
    key = auth()
    attempts = [
        "/static/../../../../etc/passwd",
        "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e/%2e%2e/secret.txt",
        "/static/....//....//secret.txt",
        "/static/..\\..\\secret.txt",
        "/static//etc/passwd",
        "/static/%00../secret.txt",
        "/v1/videos/..%2f..%2fjobs.db/content",
        "/v1/videos/../../jobs.db",
        "/v1/videos/%2e%2e%2fjobs.db/content",
        "/v1/videos/..%252f..%252fsecret.txt/content",
        "/../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/v1/videos/" + "a" * 31 + "%00/content",
        "/v1/videos/..;/..;/secret.txt/content",
    ]
    statuses = {}
    for path in attempts:
        status, body = raw_http(
            service, f"GET {path} HTTP/1.1\r\nHost: x\r\n{key}Connection: close\r\n\r\n".encode()
        )
        statuses[path] = status
        assert status in (400, 404), (path, status)
        assert b"root:" not in body and b"SECRET" not in body and b"SQLite format" not in body, path
    # client file names are ignored: the upload is stored under a server-made name
    names = ["../../../../secret.png", "/etc/passwd", "..\\..\\evil.png", "x/../../evil.png", "evil\x00.png"]
    ids = []
    for name in names:
        r = client.post("/v1/videos", files={"image": (name, png_bytes(32, 32), "image/png")}, data=SMALL)
        if r.status_code == 429:
            time.sleep(0.5)
            r = client.post("/v1/videos", files={"image": (name, png_bytes(32, 32), "image/png")}, data=SMALL)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    for job_id in ids:
        service.wait_job(client, job_id)
    uploads = service.outputs / "uploads"
    assert not [
        n for n in names if n != "/etc/passwd" and (uploads / n.replace("\x00", "")).resolve().exists()
    ]
    assert not [p for p in service.root.rglob("*") if "evil" in p.name or p.name == "secret.png"]
    made = {p.relative_to(service.outputs).parts[0] for p in service.outputs.rglob("*") if p.is_file()}
    assert made <= {"jobs.db", "jobs.db-wal", "jobs.db-shm", "uploads", "videos"}, made
    assert all(
        re.fullmatch(r"[0-9a-f]{32}(\.mp4|\.thumbnail\.webp|\.spritesheet\.jpg)", p.name)
        for p in (service.outputs / "videos").iterdir()
    )
    assert not list(uploads.iterdir())  # every upload is removed when its job ends
    record_figure(
        "path_traversal",
        {
            "urls_tried": len(attempts),
            "upload_names_tried": len(names),
            "statuses": collections.Counter(statuses.values()),
        },
    )


# --- auth -------------------------------------------------------------------------------------------


def test_auth_is_checked_on_every_route(service, client, tmp_path):
    from i2v.jobs import ServiceSettings
    from i2v.server.app import create_app
    from i2v.server.auth import PUBLIC_PATHS

    app = create_app(ServiceSettings(outputs_dir=tmp_path, api_keys="x"))
    job_id = client.get("/v1/videos", params={"state": "succeeded", "limit": 1}).json()["data"][0]["id"]
    checked = []
    for route in app.routes:
        methods = sorted(getattr(route, "methods", None) or {"GET"})
        path = route.path.replace("{job_id}", job_id)
        path = path + "/app.js" if path == "/static" else path
        public = route.path in PUBLIC_PATHS
        for method in methods:
            if method == "HEAD":
                continue
            kwargs = (
                {"files": {"image": ("a.png", png_bytes(32, 32), "image/png")}, "data": SMALL}
                if method == "POST"
                else {}
            )
            bare = httpx.request(method, service.url + path, timeout=10, **kwargs)
            wrong = httpx.request(
                method, service.url + path, headers={"Authorization": "Bearer x"}, timeout=10, **kwargs
            )
            right = client.request(method, path, **({} if method in ("POST", "DELETE") else {}))
            if public:
                assert bare.status_code != 401 and wrong.status_code != 401, (method, path)
            else:
                assert bare.status_code == wrong.status_code == 401, (
                    method,
                    path,
                    bare.status_code,
                    wrong.status_code,
                )
                assert bare.headers["WWW-Authenticate"].startswith("Bearer")
                assert right.status_code != 401, (method, path, right.text)
            checked.append((method, route.path, "public" if public else "protected"))
    protected = sum(1 for c in checked if c[2] == "protected")
    record_figure(
        "auth_routes",
        {
            "routes_checked": len(checked),
            "protected": protected,
            "public": sorted({c[1] for c in checked if c[2] == "public"}),
        },
    )
    assert protected >= 9 and {c[1] for c in checked if c[2] == "public"} == set(PUBLIC_PATHS)


# --- the API over a real job ------------------------------------------------------------------------


def test_a_job_end_to_end_with_events_content_and_idempotency(service, client):
    headers = {"Idempotency-Key": "job-e2e-1"}
    files = {"image": ("in.png", png_bytes(64, 64), "image/png")}
    # ~1 s of denoising: long enough for the 0.25 s event poll to see it running
    data = {
        "model": "tiny-svd",
        "steps": "40",
        "frames": "4",
        "height": "64",
        "width": "64",
        "prompt": "a ball",
    }
    first = client.post("/v1/videos", files=files, data=data, headers=headers)
    again = client.post("/v1/videos", files=files, data=data, headers=headers)
    other = client.post("/v1/videos", files=files, data=data | {"steps": "41"}, headers=headers)
    assert first.status_code == again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == again.json()["id"] and other.status_code == 409
    job_id = first.json()["id"]
    events = []
    with client.stream("GET", f"/v1/videos/{job_id}/events") as stream:
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    assert events[-1][0] == "end" and events[-1][1]["state"] == "succeeded"
    running = [e[1]["step"] for e in events if e[1]["state"] == "running"]
    assert running and running == sorted(running)
    job = client.get(f"/v1/videos/{job_id}").json()
    assert (
        job["plan"]["strategy"] == "resident" and job["seconds_per_step"] > 0 and job["result"]["frames"] == 4
    )
    video = client.get(f"/v1/videos/{job_id}/content")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    path = service.root / "check.mp4"
    path.write_bytes(video.content)
    info = probe_mp4(path)
    assert (info.frames, info.width, info.height, info.codec) == (4, 64, 64, "h264")
    ranged = client.get(f"/v1/videos/{job_id}/content", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100
    models = client.get("/v1/models").json()
    by_id = {m["id"]: m for m in models["models"]}
    assert (
        by_id["tiny-svd"]["usable"]
        and not by_id["svd-xt"]["usable"]
        and "i2v fetch svd-xt" in by_id["svd-xt"]["reason"]
    )
    assert models["device"]["measured_by"] == "worker"
    spec = client.get("/openapi.json").json()
    assert {"/v1/videos", "/v1/videos/{job_id}", "/v1/models", "/health/ready"} <= set(spec["paths"])
    page = client.get("/v1/videos", params={"limit": 2}).json()
    older = client.get("/v1/videos", params={"limit": 2, "after": page["last_id"]}).json()
    assert len(page["data"]) == 2 and page["has_more"] and page["last_id"] == page["data"][-1]["id"]
    assert not {j["id"] for j in page["data"]} & {j["id"] for j in older["data"]}
    assert page["data"][1]["created_at"] >= older["data"][0]["created_at"]
    # DELETE of a finished video removes it and its files; reads answer 404 afterwards
    files = [
        service.outputs / "videos" / f"{job_id}{s}" for s in (".mp4", ".thumbnail.webp", ".spritesheet.jpg")
    ]
    assert all(p.is_file() for p in files)
    deleted = client.delete(f"/v1/videos/{job_id}")
    assert deleted.status_code == 200 and deleted.json() | {"state": None, "cancel_requested": None} == {
        "id": job_id,
        "object": "video.deleted",
        "deleted": True,
        "state": None,
        "cancel_requested": None,
    }
    assert not [p for p in files if p.exists()]
    assert [client.get(f"/v1/videos/{job_id}{tail}").status_code for tail in ("", "/content")] == [404, 404]
    assert client.delete(f"/v1/videos/{job_id}").status_code == 404
    assert job_id not in {j["id"] for j in client.get("/v1/videos", params={"limit": 100}).json()["data"]}


# --- crash recovery ---------------------------------------------------------------------------------


def test_kill_9_of_a_worker_mid_job_requeues_and_finishes_it(service, client):
    job = service.submit(client, model="tiny-svd", height=64, width=64, frames=4, steps=80).json()
    service.wait_job(client, job["id"], states=("running",), until=lambda j: j["step"] >= 2)
    [victim] = service.workers()
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    requeued = service.wait_job(
        client, job["id"], states=("queued", "running"), until=lambda j: j["attempt"] == 2
    )
    requeue_s = time.monotonic() - killed
    done = service.wait_job(client, job["id"], timeout=180)
    recovery_s = time.monotonic() - killed
    record_figure(
        "kill_9_worker",
        {
            "requeued_after_s": round(requeue_s, 2),
            "succeeded_after_s": round(recovery_s, 2),
            "attempt": done["attempt"],
        },
    )
    assert requeued["attempt"] == 2 and done["state"] == "succeeded" and done["attempt"] == 2
    assert service.workers() and service.workers() != [victim]
    assert client.get("/v1/videos", params={"state": "running"}).json()["data"] == []
    assert client.get("/health/ready").status_code == 200


# --- memory over many jobs --------------------------------------------------------------------------


def test_200_small_jobs_in_a_row_do_not_grow_memory(service, client):
    # The smallest real job: tiny-svd at its minimum size (32x32, 2 frames, 1 step) through the whole
    # path (upload, admission, claim, real pipeline, mp4, finish). Pipeline cost is ~0.05 s, so the
    # figure measures the service machinery, which is what could leak between jobs.
    total, warmup = 200, 20
    image = png_bytes(32, 32)
    [worker] = service.workers()
    ids: list[str] = []
    samples: dict[int, tuple[int, int]] = {}
    started = time.monotonic()
    while len(ids) < total:
        r = service.submit(client, image=image, **SMALL)
        if r.status_code == 429:  # the queue (4) holds ~0.3 s of work: come back sooner than Retry-After
            time.sleep(0.1)
            continue
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
        if len(ids) in (warmup, total):
            service.wait_job(client, ids[-1])
            samples[len(ids)] = (rss_kib(worker), rss_kib(service.pid))
    states = collections.Counter(service.wait_job(client, i)["state"] for i in ids)
    elapsed = time.monotonic() - started
    worker_growth = (samples[total][0] - samples[warmup][0]) / 1024
    api_growth = (samples[total][1] - samples[warmup][1]) / 1024
    record_figure(
        "200_jobs",
        {
            "jobs": total,
            "seconds": round(elapsed, 1),
            "states": dict(states),
            "worker_rss_mib": [round(samples[warmup][0] / 1024, 1), round(samples[total][0] / 1024, 1)],
            "api_rss_mib": [round(samples[warmup][1] / 1024, 1), round(samples[total][1] / 1024, 1)],
            "worker_growth_mib": round(worker_growth, 1),
            "api_growth_mib": round(api_growth, 1),
        },
    )
    assert states == {"succeeded": total}
    assert service.workers() == [worker]
    assert worker_growth < 24 and api_growth < 16, (worker_growth, api_growth)


# --- metrics and the invariant ----------------------------------------------------------------------


def test_metrics_and_the_state_invariant(service, client):
    text = client.get("/metrics").text
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    submitted = values["i2v_jobs_submitted_total"]
    by_state = {
        s: values[f'i2v_jobs{{state="{s}"}}']
        for s in ("queued", "running", "succeeded", "failed", "cancelled")
    }
    record_figure("invariant", {"submitted": submitted, **by_state})
    assert submitted == sum(by_state.values()) > 200
    assert values["i2v_queue_depth"] == by_state["queued"] and values["i2v_queue_capacity"] == QUEUE
    assert values['i2v_job_duration_seconds_bucket{le="+Inf"}'] == by_state["succeeded"]
    assert (
        values['i2v_seconds_per_step_count{model="tiny-svd"}'] > 0
        and values['i2v_peak_memory_mib{model="tiny-svd"}'] > 0
    )
    assert values["i2v_oom_total"] == 0 and values["i2v_job_requeues_total"] >= 1
    assert values["i2v_worker_restarts_total"] == 1
    assert values['i2v_http_responses_total{method="POST",route="/v1/videos",status="429"}'] >= 20


def test_the_api_process_never_imports_torch(service):
    api_maps = open(f"/proc/{service.pid}/maps").read()
    [worker] = service.workers()
    worker_maps = open(f"/proc/{worker}/maps").read()
    assert "libtorch" in worker_maps  # the probe works...
    assert "libtorch" not in api_maps and "/torch/" not in api_maps  # ...and the API process has none
