"""`compose.override.yaml` next to `.env`: the per-host wiring compose cannot read from `.env`.

An env file holds strings, and compose cannot expand one into a list, so the NPU device nodes of
this host (`/dev/davinci<N>` per chip: ids can have gaps, a 300I Duo card has two chips) are
written here for the `server-npu` service of compose.yaml (`worker-npu` on a worker-only host, `provision
env --role worker`), which already carries the manager, svm
and hdc nodes and the driver mounts. When Docker has the Ascend Docker Runtime registered, the
override switches the service to it instead: `runtime: ascend` with `ASCEND_VISIBLE_DEVICES`, and the
static devices and driver mounts reset (the runtime adds its own).

For the CUDA profile it lists the GPUs of `I2V_VISIBLE_DEVICES` (the value written to `.env`, so a
user's choice there wins) as one `device_ids` entry per id: Docker Engine >= 29.2 with
`nvidia-cdi-hook` maps each entry to a CDI device name (`nvidia.com/gpu=<entry>`), and a single
`"0,1,2,3"` string would become `nvidia.com/gpu=0,1,2,3`, which CDI cannot resolve. The CPU profile
needs no override.

Docker Compose reads `compose.override.yaml` from the project folder by itself. A file that does not
start with `MARKER` is the user's own: it is never overwritten or removed. Torch-free, no YAML
library: the text is small and fixed, and a rerun writes the same bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

from i2v.hardware import HardwareReport
from i2v.request import InvalidRequestError
from provision import host
from provision.envfile import write_atomic

NAME = "compose.override.yaml"
MARKER = "# Written by `provision env` for this host."

# The models, LoRAs, outputs and jobs volumes of compose.yaml, restated when the runtime's override
# replaces the service's volume list (YAML cannot extend a list from another file).
_BASE_VOLUMES = (
    '      - {type: bind, source: "${I2V_MODELS_DIR:-./models}", target: /models, bind: {create_host_path: true}}\n'
    '      - {type: bind, source: "${I2V_LORAS_DIR:-./loras}", target: /loras, read_only: true, '
    "bind: {create_host_path: true}}\n"
    '      - "${I2V_SHARED_OUTPUTS:-outputs}:/outputs"\n'
    "      - jobs:/data\n"
)


def ascend_runtime(report: HardwareReport) -> bool:
    docker = report.docker
    return docker is not None and docker.available and "ascend" in docker.runtimes


def _describe(report: HardwareReport) -> str:
    names = sorted({d.name for d in report.devices})
    return f"{', '.join(names)} x{len(host.visible_ids(report))}"


_GPU_ID = re.compile(r"^(\d+|GPU-[0-9a-fA-F-]+|MIG-[0-9a-fA-F-]+)$")


def gpu_ids(visible: str) -> list[str]:
    """`I2V_VISIBLE_DEVICES` ("0,1,3") as device_ids entries; empty means GPU 0, as compose.yaml's default."""
    ids = [part.strip() for part in visible.split(",")] if visible.strip() else ["0"]
    bad = [part for part in ids if not _GPU_ID.match(part)]
    if bad or len(set(ids)) != len(ids):
        raise InvalidRequestError(
            "I2V_VISIBLE_DEVICES",
            visible,
            "comma-separated GPU indexes or UUIDs, each once (e.g. 0,1,2,3 or GPU-5f1c...)",
        )
    return ids


def service_for(kind: str, role: str) -> str:
    """The compose service this host's wiring goes to: the server, or a worker-only host's workers."""
    return f"{'worker' if role == 'worker' else 'server'}-{kind}"


def _render_cuda(report: HardwareReport, visible: str, service: str) -> str:
    entries = ", ".join(f'"{gpu}"' for gpu in gpu_ids(visible))
    return (
        f"{MARKER} Rerun it after changing cards.\n"
        f"# Host: {_describe(report)}. Your own changes belong in another file (docker compose -f ...).\n"
        f"services:\n  {service}:\n"
        "    # One device_ids entry per GPU (I2V_VISIBLE_DEVICES): each entry becomes one CDI device name.\n"
        "    deploy:\n      resources:\n        reservations:\n          devices: !override\n"
        "            - driver: nvidia\n"
        f"              device_ids: [{entries}]\n"
        "              capabilities: [gpu]\n"
    )


def render(report: HardwareReport, visible: str | None = None, role: str = "single") -> str | None:
    """The override's text for this host, or None when the host needs none. `visible`: the
    I2V_VISIBLE_DEVICES written to .env (default: every device the host has); `role`: the host's
    role (provision env --role), whose service gets the wiring."""
    kind = host.profile(report)
    if visible is None:
        visible = ",".join(str(i) for i in host.visible_ids(report))
    if kind == "cuda" and report.devices:
        return _render_cuda(report, visible, service_for(kind, role))
    if kind != "npu":
        return None
    head = (
        f"{MARKER} Rerun it after changing cards.\n"
        f"# Host: {_describe(report)}. Your own changes belong in another file (docker compose -f ...).\n"
        f"services:\n  {service_for(kind, role)}:\n"
    )
    if ascend_runtime(report):
        ids = ",".join(str(i) for i in host.visible_ids(report))
        return (
            head
            + "    # The Ascend Docker Runtime adds the device nodes and the driver mounts itself.\n"
            + "    runtime: ascend\n"
            + f'    environment:\n      ASCEND_VISIBLE_DEVICES: "{ids}"\n'
            + "    devices: !reset []\n"
            + "    volumes: !override\n"
            + _BASE_VOLUMES
        )
    nodes = "".join(f"      - /dev/davinci{n}\n" for n in host.npu_device_ids(report))
    return (
        head
        + "    # One node per chip; compose.yaml adds davinci_manager, devmm_svm and hisi_hdc.\n"
        + "    devices:\n"
        + nodes
    )


def is_ours(path: Path) -> bool:
    try:
        return path.read_text(encoding="utf-8").startswith(MARKER)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def write(
    env_path: Path, report: HardwareReport, visible: str | None = None, role: str = "single"
) -> str | None:
    """Write, refresh or remove the override beside `env_path`; returns a note for the user, if any."""
    path = Path(env_path).parent / NAME
    text = render(report, visible, role)
    if not is_ours(path):
        return (
            f"{path} is not provision's, left as is; this host's NPU wiring would be:\n{text}"
            if text
            else None
        )
    if text is None:
        path.unlink(missing_ok=True)
        return None
    changed = write_atomic(path, text, mode=0o644)
    return f"{'wrote' if changed else 'unchanged'} {path}"
