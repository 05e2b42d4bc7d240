"""A real job over HTTP against a running server: POST /v1/videos, poll, fetch the mp4, decode it."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from io import BytesIO
from pathlib import Path


def submit_job(port: int, mp4: Path, model: str = "tiny-i2vgen-xl") -> tuple[str, float]:
    """(summary, seconds from POST to succeeded); raises AssertionError with the job's state otherwise."""
    from PIL import Image

    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    png = BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(png, format="PNG")
    fields = {"model": model, "prompt": "a ball rolls", "preset": "fast", "seed": "1"}
    body, content_type = multipart(fields, "image", "input.png", png.getvalue())
    start = time.monotonic()
    request = urllib.request.Request(
        f"{base}/v1/videos", data=body, method="POST", headers={"Content-Type": content_type}
    )
    with opener.open(request, timeout=30) as response:
        assert response.status == 202, f"POST /v1/videos answered {response.status}"
        job = json.load(response)
    state = {}
    while time.monotonic() - start < 300:
        with opener.open(f"{base}/v1/videos/{job['id']}", timeout=10) as response:
            state = json.load(response)
        if state.get("state") in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.5)
    assert state.get("state") == "succeeded", f"job {job['id']} ended {state}"
    took = time.monotonic() - start
    with opener.open(f"{base}/v1/videos/{job['id']}/content", timeout=30) as response:
        mp4.write_bytes(response.read())
    frames, codec, width, height = probe_mp4(mp4)
    assert frames > 0 and codec == "h264", f"{mp4}: {frames} frames, codec {codec}"
    return (
        f"{job['id']}: {frames} frames {width}x{height} {codec}, {mp4.stat().st_size} bytes, {took:.0f} s",
        took,
    )


def multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = f"i2v-ci-{os.getpid()}-{time.time_ns()}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def probe_mp4(path: Path) -> tuple[int, str, int, int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.codec_context.name, stream.codec_context.width, stream.codec_context.height
