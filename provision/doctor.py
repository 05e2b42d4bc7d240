"""`provision doctor`: what is wrong with this host for the chosen deployment, and the fix for each.

Every finding carries the command that fixes it. Errors make `doctor` exit 1; warnings do not.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from i2v import catalogue
from i2v.hardware import HardwareReport
from i2v.planner import DTYPE_BYTES
from provision import cann, host, mirrors

Level = Literal["ok", "warn", "error"]


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    message: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def check_driver(report: HardwareReport) -> list[Finding]:
    if report.vendor == "nvidia":
        driver = report.driver_version
        if not driver:
            return [
                Finding(
                    "error",
                    "driver",
                    "NVIDIA devices found but no driver version",
                    "sudo apt-get install nvidia-driver-570 && sudo reboot",
                )
            ]
        cuda = host.cuda_variant(driver)
        minimum = dict(host.CUDA_VARIANTS)[cuda]
        if host.version_tuple(driver) >= host.version_tuple(minimum):
            return [
                Finding(
                    "ok", "driver", f"NVIDIA driver {driver} runs the CUDA {cuda} image (needs >= {minimum})"
                )
            ]
        if host.version_tuple(driver) >= host.version_tuple(host.CUDA12_FLOOR):
            return [
                Finding(
                    "warn",
                    "driver",
                    f"NVIDIA driver {driver} is older than CUDA {cuda} needs ({minimum}); it runs through "
                    "CUDA minor-version compatibility, without PTX JIT",
                    "sudo apt-get install nvidia-driver-570 && sudo reboot",
                )
            ]
        return [
            Finding(
                "error",
                "driver",
                f"NVIDIA driver {driver} is too old for any CUDA 12 image (needs >= {host.CUDA12_FLOOR})",
                "sudo apt-get install nvidia-driver-570 && sudo reboot",
            )
        ]
    if report.vendor == "ascend":
        choice = host.cann_choice(report)
        release = choice.release
        version_info = Path(os.environ.get("I2V_HOST_ROOT") or "/") / cann.DRIVER_VERSION_INFO.lstrip("/")
        if not version_info.is_file():
            return [
                Finding(
                    "error",
                    "driver",
                    f"npu-smi answers but {cann.DRIVER_VERSION_INFO} is missing: the "
                    "containers mount the driver from there and provision reads its "
                    "version from it to choose the CANN image",
                    "install the Ascend HDK driver package (Ascend-hdk-<chip>-npu-driver_*.run --full)",
                )
            ]
        if choice.mismatch:
            return [
                Finding(
                    "error",
                    "driver",
                    f"{choice.mismatch}; provision names the CANN {release.cann} image",
                    choice.fix or "",
                )
            ]
        found = [
            Finding(
                "ok",
                "driver",
                f"{choice.reason}; the image pairs CANN {release.cann} with torch "
                f"{release.torch} / torch_npu {release.torch_npu}",
            )
        ]
        if (
            report.cann_version
            and host.version_tuple(report.cann_version)[:2] != host.version_tuple(release.cann)[:2]
        ):
            found.append(
                Finding(
                    "ok",
                    "cann",
                    f"host CANN {report.cann_version} differs from the image's CANN "
                    f"{release.cann}: the image brings its own, the host needs only the driver",
                )
            )
        return found
    return [Finding("ok", "driver", "no GPU or NPU found: the cpu profile runs tiny models only")]


def check_engine(report: HardwareReport) -> list[Finding]:
    docker = report.docker
    if docker is None or not docker.available:
        why = docker.error if docker and docker.error else "no Docker daemon answered"
        return [
            Finding(
                "error",
                "engine",
                f"Docker engine not reachable: {why}",
                "curl -fsSL https://get.docker.com | sh  # or: sudo apt-get install docker.io; "
                "sudo systemctl enable --now docker",
            )
        ]
    found = [
        Finding(
            "ok", "engine", f"Docker {docker.server_version} answers; runtimes: {', '.join(docker.runtimes)}"
        )
    ]
    if report.vendor == "nvidia" and "nvidia" not in docker.runtimes:
        found.append(
            Finding(
                "error",
                "runtime",
                "the NVIDIA Container Toolkit is not registered with Docker",
                "sudo apt-get install nvidia-container-toolkit && "
                "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker",
            )
        )
    if report.vendor == "ascend" and "ascend" not in docker.runtimes:
        found.append(
            Finding(
                "warn",
                "runtime",
                "Ascend Docker Runtime not registered: compose passes /dev/davinci* and the driver "
                "mounts itself (compose.override.yaml)",
                "sudo ./Ascend-docker-runtime_*.run --install && sudo systemctl restart docker",
            )
        )
    return found


def check_device_nodes(report: HardwareReport) -> list[Finding]:
    if report.vendor != "ascend":
        return []
    needed = ["/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc"] + [
        f"/dev/davinci{n}" for n in host.npu_device_ids(report)
    ]
    missing = [n for n in needed if n not in report.device_nodes]
    if missing:
        return [
            Finding(
                "error",
                "devices",
                f"device nodes missing: {', '.join(missing)}",
                "reinstall the Ascend driver (it creates the nodes) and reboot",
            )
        ]
    gid = report.device_node_gid
    return [
        Finding(
            "ok",
            "devices",
            f"{len(needed)} device nodes present, group id {gid}; containers join it "
            "(group_add) so a non-root user can open them",
        )
    ]


def check_disk(report: HardwareReport, model: str) -> list[Finding]:
    spec = catalogue.get(model)
    need_mib = int(sum(spec.weights_params().values()) * DTYPE_BYTES[spec.preferred_dtype] / 2**20 * 1.1)
    free = report.disk_free_mib
    if free is None:
        return [Finding("warn", "disk", f"cannot read free space at {report.disk_path}")]
    if free < need_mib:
        return [
            Finding(
                "error",
                "disk",
                f"{model} needs about {need_mib / 1024:.1f} GiB at {report.disk_path}, "
                f"{free / 1024:.1f} GiB free",
                f"provision env --models-dir /a/larger/disk  # or free {(need_mib - free) / 1024:.1f} GiB",
            )
        ]
    return [
        Finding(
            "ok",
            "disk",
            f"{free / 1024:.1f} GiB free at {report.disk_path}; {model} needs "
            f"about {need_mib / 1024:.1f} GiB",
        )
    ]


def check_mirrors(timeout: float, candidates=mirrors.CANDIDATES) -> list[Finding]:
    found = []
    best = mirrors.fastest(mirrors.time_all(candidates, timeout=timeout))
    for kind, timing in best.items():
        if timing is None:
            found.append(
                Finding(
                    "warn",
                    f"mirror:{kind}",
                    f"no {kind} endpoint answered within {timeout:.0f} s",
                    "check the proxy (HTTPS_PROXY) or DNS; builds and fetches will fail",
                )
            )
        else:
            found.append(
                Finding(
                    "ok",
                    f"mirror:{kind}",
                    f"{timing.name} answered in {timing.seconds * 1000:.0f} ms",
                    f"provision mirrors --write  # sets {mirrors.ENV_KEYS[kind]}={timing.value}",
                )
            )
    return found


def run(report: HardwareReport, model: str, *, network: bool = True, timeout: float = 3.0) -> list[Finding]:
    findings = (
        check_driver(report) + check_engine(report) + check_device_nodes(report) + check_disk(report, model)
    )
    findings += [Finding("warn", "probe", w) for w in report.warnings]
    if network:
        findings += check_mirrors(timeout)
    return findings
