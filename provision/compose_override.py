"""`compose.override.yaml` next to `.env`: the per-host wiring compose cannot read from `.env`.

An env file holds strings, and compose cannot expand one into a list, so the NPU device nodes of
this host (`/dev/davinci<N>` per chip: ids can have gaps, a 300I Duo card has two chips) are
written here for the `server-npu` service of compose.yaml (`worker-npu` on a worker-only host: compose
resolves `extends` before it merges this file), which already carries the manager, svm
and hdc nodes and the driver mounts. When Docker has the Ascend Docker Runtime registered, the
override switches the service to it instead: `runtime: ascend` with `ASCEND_VISIBLE_DEVICES`, and the
static devices and driver mounts reset (the runtime adds its own). The CUDA profile needs nothing
here (one string of ids reaches the NVIDIA toolkit), nor does the CPU profile.

Docker Compose reads `compose.override.yaml` from the project folder by itself. A file that does not
start with `MARKER` is the user's own: it is never overwritten or removed. Torch-free, no YAML
library: the text is small and fixed, and a rerun writes the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from i2v.hardware import HardwareReport
from provision import host
from provision.envfile import write_atomic

NAME = "compose.override.yaml"
MARKER = "# Written by `provision env` for this host."

# The models, outputs and jobs volumes of compose.yaml, restated when the runtime's override
# replaces the service's volume list (YAML cannot extend a list from another file).
_BASE_VOLUMES = (
    '      - {type: bind, source: "${I2V_MODELS_DIR:-./models}", target: /models, bind: {create_host_path: true}}\n'
    '      - "${I2V_SHARED_OUTPUTS:-outputs}:/outputs"\n'
    "      - jobs:/data\n"
)


def ascend_runtime(report: HardwareReport) -> bool:
    docker = report.docker
    return docker is not None and docker.available and "ascend" in docker.runtimes


def _describe(report: HardwareReport) -> str:
    names = sorted({d.name for d in report.devices})
    return f"{', '.join(names)} x{len(host.visible_ids(report))}"


def render(report: HardwareReport, service: str = "server-npu") -> str | None:
    """The override's text for this host's NPU `service`, or None when the host needs none."""
    if host.profile(report) != "npu":
        return None
    head = (
        f"{MARKER} Rerun it after changing cards.\n"
        f"# Host: {_describe(report)}. Your own changes belong in another file (docker compose -f ...).\n"
        f"services:\n  {service}:\n"
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


def write(env_path: Path, report: HardwareReport, service: str = "server-npu") -> str | None:
    """Write, refresh or remove the override beside `env_path`; returns a note for the user, if any."""
    path = Path(env_path).parent / NAME
    text = render(report, service)
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
