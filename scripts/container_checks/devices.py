"""The GPU / NPU services reach the engine with their device requests (and fail only there): on a machine
without them, `could not select device driver "nvidia"` and `error gathering device information`; the
engine stores the GPU request as one device id per entry (what a CDI-mapping engine needs)."""

from __future__ import annotations

import json

from .runner import DOCKER, ROOT, Runner, env_value, tail
from .static import CUDA_HOST, GOLDEN, NPU_HOST, compose_cmd, compose_env

EXPECTED_ERRORS = {
    "cuda": 'could not select device driver "nvidia"',
    "npu": "error gathering device information",
}
STAND_IN_VERSION_INFO = ROOT / "tests/fixtures/ascend-driver/25.5.1/version.info"


def driver_root(r: Runner):
    root = r.work / "ascend-driver"
    for path in ("usr/local/dcmi", "usr/local/Ascend/driver/lib64"):
        (root / path).mkdir(parents=True, exist_ok=True)
    for path in ("usr/local/bin/npu-smi", "etc/ascend_install.info"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).touch()
    (root / "usr/local/Ascend/driver/version.info").write_bytes(STAND_IN_VERSION_INFO.read_bytes())
    return root


def device_requests(r: Runner) -> None:
    root = driver_root(r)
    for profile, host, image_tag in (
        ("cuda", CUDA_HOST, "ci/cuda:runtime"),
        ("npu", NPU_HOST, "ci/cann:runtime"),
    ):
        with r.check(f"{profile} service requests its devices from the engine ({host})") as c:
            r.run([DOCKER, "tag", image_tag, env_value(GOLDEN / f"{host}.env", "I2V_IMAGE")], "devices")
            env = {**compose_env(r, host), "I2V_DRIVER_ROOT": str(root)}
            cmd = compose_cmd(host)
            extra = ""
            if profile == "cuda":
                r.run(
                    cmd + ["--profile", profile, "create", "--no-build", "server-cuda"],
                    "devices-cuda",
                    env=env,
                )
                cid = r.output(cmd + ["--profile", profile, "ps", "-aq", "server-cuda"], env=env)
                requests = json.loads(
                    r.output([DOCKER, "inspect", "--format", "{{json .HostConfig.DeviceRequests}}", cid])
                )
                ids = requests[0]["DeviceIDs"]
                wanted = env_value(GOLDEN / f"{host}.env", "I2V_VISIBLE_DEVICES").split(",")
                assert ids == wanted, f"engine got DeviceIDs {ids}, wanted one entry per GPU {wanted}"
                extra = f"; engine DeviceIDs {ids}"
            done = r.run(
                cmd + ["--profile", profile, "up", "--no-deps", "--no-build", "-d", f"server-{profile}"],
                f"devices-{profile}",
                env=env,
                check=False,
                timeout=120,
            )
            text = (r.logs / f"devices-{profile}.log").read_text()
            r.run(cmd + ["--profile", "*", "down", "--volumes"], f"devices-{profile}", env=env, check=False)
            assert done.returncode != 0, f"server-{profile} started on a machine without {profile} devices"
            match = next((line for line in text.splitlines() if EXPECTED_ERRORS[profile] in line), None)
            assert match, (
                f"expected {EXPECTED_ERRORS[profile]!r}:\n{tail(r.logs / f'devices-{profile}.log', 8)}"
            )
            c["detail"] = match[match.index(EXPECTED_ERRORS[profile]) :][:80] + extra
