"""The API process alone (no workers started), served by uvicorn on loopback in a thread: it never
imports torch, refuses work until a worker is ready, keeps CORS off unless asked, and pins each
worker to its device through the visible-devices variable."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time

import httpx
import pytest
import uvicorn
from service_harness import free_port, png_bytes

from i2v.hardware import Accelerator
from i2v.jobs import JobStore, ServiceSettings


@contextlib.contextmanager
def api_server(settings: ServiceSettings):
    from i2v.server.app import create_app

    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10), app
    finally:
        server.should_exit = True
        thread.join(10)


def settings(tmp_path, **overrides) -> ServiceSettings:
    return ServiceSettings(
        _env_file=None,
        outputs_dir=tmp_path / "out",
        models_dir=tmp_path / "models",
        device="cpu",
        spawn_workers=False,
        **overrides,
    )


def test_the_api_modules_never_import_torch(tmp_path):
    code = f"""
import sys
from i2v.jobs import ServiceSettings
from i2v.server.app import create_app
import i2v.server.run, i2v.server.supervisor
app = create_app(ServiceSettings(_env_file=None, outputs_dir={str(tmp_path)!r}, device="cpu"))
app.openapi()
from i2v.server.fit import describe_models, probed_budget
describe_models(probed_budget("cpu"), app.state.service.settings)
heavy = sorted(m for m in ("torch", "diffusers", "transformers", "torch_npu") if m in sys.modules)
assert not heavy, heavy
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_not_ready_until_a_worker_has_its_model(tmp_path):
    s = settings(tmp_path)
    with api_server(s) as (client, app):
        assert client.get("/health/live").status_code == 200
        ready = client.get("/health/ready")
        refused = client.post("/v1/videos", files={"image": ("a.png", png_bytes(32, 32), "image/png")})
        assert ready.status_code == refused.status_code == 503
        assert refused.json()["error"]["code"] == "not_ready" and refused.headers["Retry-After"]
        store: JobStore = app.state.service.store
        store.register_worker(
            "elsewhere-1", host="gpu-host", pid=1, slot="cuda:0", state="ready", model="tiny-svd"
        )
        time.sleep(0.6)  # readiness is cached for half a second
        assert client.get("/health/ready").json()["workers"][0]["id"] == "elsewhere-1"
        accepted = client.post(
            "/v1/videos",
            files={"image": ("a.png", png_bytes(32, 32), "image/png")},
            data={"model": "tiny-svd", "steps": "1"},
        )
        assert accepted.status_code == 202 and accepted.json()["state"] == "queued"
        metrics = client.get("/metrics").text
        assert 'i2v_jobs{state="queued"} 1' in metrics and "i2v_jobs_submitted_total 1" in metrics


@pytest.mark.parametrize("origins", ["", "https://studio.example"])
def test_cors_is_off_unless_origins_are_set(tmp_path, origins):
    with api_server(settings(tmp_path, cors_origins=origins)) as (client, _):
        preflight = client.options(
            "/v1/models", headers={"Origin": "https://studio.example", "Access-Control-Request-Method": "GET"}
        )
        allowed = preflight.headers.get("access-control-allow-origin")
        assert allowed == (origins or None)


def test_workers_are_pinned_to_one_device_each(monkeypatch):
    from i2v import hardware
    from i2v.server.supervisor import worker_slots

    def report(indices):
        devices = tuple(
            Accelerator(index=i, name="NVIDIA H100", memory_total_mib=81559, memory_free_mib=80000)
            for i in indices
        )
        return hardware.HardwareReport(
            vendor="nvidia",
            arch="x86_64",
            ram_mib=1,
            ram_available_mib=1,
            cpu_count=1,
            disk_path="/",
            disk_free_mib=1,
            devices=devices,
            driver_version="570",
            cann_version=None,
            device_nodes=(),
            device_node_gid=None,
            docker=None,
            warnings=(),
        )

    def slots(indices, **fields):
        monkeypatch.setattr(hardware, "probe", lambda **_: report(indices))
        return [(s.name, s.env) for s in worker_slots(ServiceSettings(_env_file=None, **fields))]

    assert slots([0, 1]) == [
        ("cuda:0", {"I2V_DEVICE": "cuda", "CUDA_VISIBLE_DEVICES": "0"}),
        ("cuda:1", {"I2V_DEVICE": "cuda", "CUDA_VISIBLE_DEVICES": "1"}),
    ]
    assert slots([0, 1, 2, 3], visible_devices="2,3", workers_per_device=2) == [
        ("cuda:2#0", {"I2V_DEVICE": "cuda", "CUDA_VISIBLE_DEVICES": "2"}),
        ("cuda:2#1", {"I2V_DEVICE": "cuda", "CUDA_VISIBLE_DEVICES": "2"}),
        ("cuda:3#0", {"I2V_DEVICE": "cuda", "CUDA_VISIBLE_DEVICES": "3"}),
        ("cuda:3#1", {"I2V_DEVICE": "cuda", "CUDA_VISIBLE_DEVICES": "3"}),
    ]
    # a container handed host GPUs 4 and 5 sees them as 0 and 1
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in slots([0, 1], visible_devices="4,5")] == ["0", "1"]
    assert slots([], device="cpu") == [("cpu", {"I2V_DEVICE": "cpu"})]
    with pytest.raises(RuntimeError, match="found no cuda device"):
        slots([], device="cuda")
