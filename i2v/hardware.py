"""Torch-free host probe: accelerators, driver/CANN versions, device nodes, RAM, disk, Docker.

Contract: importing this module and calling :func:`probe` never imports ``torch`` or
``torch_npu`` and never initialises an accelerator (no CUDA context, no ACL init). It only
reads files, asks NVML for an inventory (NVML does not create a CUDA context) and runs the
vendor tools ``nvidia-smi`` / ``npu-smi`` with a short timeout. It never raises on a broken
host: a missing tool means "no devices of that kind"; a failing tool or output it cannot
parse becomes a line in ``HardwareReport.warnings``.

``probe()`` is cached per arguments and per value of the variables below
(``probe.cache_clear()`` to re-read after a driver install). Environment it honours:

- ``I2V_HOST_ROOT`` (default ``/``): prefix for every file it reads (``/usr/local/Ascend``,
  ``/dev``, ``/proc/meminfo``, the Docker socket), so tests can point it at a fixture tree.
- ``I2V_NO_NVML=1``: skip NVML and use ``nvidia-smi`` even where ``pynvml`` would work.
- ``I2V_HOST_ARCH``: report this instead of ``platform.machine()`` (planning for another host).
- ``ASCEND_TOOLKIT_HOME`` / ``ASCEND_HOME_PATH``: extra places to look for the CANN version.
- ``DOCKER_HOST``: the Docker endpoint to ask (``unix://`` paths are checked before connecting).

The report lists the devices the host has, not the ones ``CUDA_VISIBLE_DEVICES`` /
``ASCEND_RT_VISIBLE_DEVICES`` would leave to one process; ``index`` is the id the vendor
tool prints (npu-smi NPU ids can have gaps, e.g. inside a container given NPUs 4-7).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from i2v.smi import (  # noqa: F401 - re-exported: the parsers are part of this module's API
    NPU_SMI_FAILURES,
    NVIDIA_QUERY_FIELDS,
    Accelerator,
    HardwareParseError,
    first_lines,
    key_values,
    nvidia_driver_from_csv,
    parse_ascend_version_info,
    parse_cann_version_cfg,
    parse_npu_smi_board,
    parse_npu_smi_info,
    parse_nvidia_smi_csv,
)

TOOL_TIMEOUT_S = 5.0
DOCKER_TIMEOUT_S = 2.0

NVIDIA_SMI_QUERY = (
    f"--query-gpu={','.join(NVIDIA_QUERY_FIELDS)}",
    "--format=csv,noheader,nounits",
)

_DEVICE_NODE = re.compile(r"^(nvidia.*|davinci.*|devmm_svm|hisi_hdc)$")


@dataclass(frozen=True)
class DockerInfo:
    available: bool
    server_version: str | None = None
    runtimes: tuple[str, ...] = ()
    default_runtime: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class HardwareReport:
    vendor: Literal["nvidia", "ascend", "none"]
    arch: str
    ram_mib: int
    ram_available_mib: int
    cpu_count: int
    disk_path: str
    disk_free_mib: int | None
    devices: tuple[Accelerator, ...]
    driver_version: str | None
    cann_version: str | None
    device_nodes: tuple[str, ...]
    device_node_gid: int | None
    docker: DockerInfo | None
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; tuples become lists."""
        return _jsonable(dataclasses.asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


# ----------------------------------------------------------------------------- host access


def _host_root() -> Path:
    return Path(os.environ.get("I2V_HOST_ROOT") or "/")


def _at_root(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _run(tool: str, *args: str) -> tuple[int, str] | None:
    """(exit status, stdout + stderr) or None when the tool is not on PATH."""
    executable = shutil.which(tool)
    if executable is None:
        return None
    try:
        done = subprocess.run(
            [executable, *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TOOL_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return 124, f"{tool} {' '.join(args)} did not answer within {TOOL_TIMEOUT_S:.0f} s"
    except OSError as error:
        return 126, f"{tool} could not be started: {error}"
    return done.returncode, done.stdout + (("\n" + done.stderr) if done.stderr.strip() else "")


# ----------------------------------------------------------------------------- NVIDIA


def _probe_nvml() -> tuple[list[Accelerator], str | None] | None:
    """Inventory through NVML, or None when pynvml or the driver library is missing."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded...: fall back to nvidia-smi
        return None
    try:

        def text(value: Any) -> str:
            return value.decode() if isinstance(value, bytes) else str(value)

        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
                compute_capability: str | None = f"{major}.{minor}"
            except pynvml.NVMLError:
                compute_capability = None
            devices.append(
                Accelerator(
                    index=index,
                    name=text(pynvml.nvmlDeviceGetName(handle)),
                    memory_total_mib=int(memory.total) // 2**20,
                    memory_free_mib=int(memory.free) // 2**20,
                    uuid=text(pynvml.nvmlDeviceGetUUID(handle)),
                    compute_capability=compute_capability,
                    bus_id=text(pynvml.nvmlDeviceGetPciInfo(handle).busId),
                )
            )
        return devices, text(pynvml.nvmlSystemGetDriverVersion())
    except Exception:  # an NVML call failed half-way: let nvidia-smi tell the story
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _probe_nvidia(warnings: list[str]) -> tuple[list[Accelerator], str | None]:
    if os.environ.get("I2V_NO_NVML") != "1":
        found = _probe_nvml()
        if found is not None and found[0]:
            return found
    result = _run("nvidia-smi", *NVIDIA_SMI_QUERY)
    if result is None:
        return [], None
    status, output = result
    if status != 0:
        warnings.append(f"nvidia-smi failed (exit {status}): {first_lines(output) or 'no output'}")
        return [], None
    try:
        return parse_nvidia_smi_csv(output), nvidia_driver_from_csv(output)
    except HardwareParseError as error:
        warnings.append(f"could not read nvidia-smi output: {error}")
        return [], None


# ----------------------------------------------------------------------------- Ascend


def _probe_ascend(warnings: list[str]) -> tuple[list[Accelerator], str | None]:
    """(devices, npu-smi version from its header)."""
    result = _run("npu-smi", "info")
    if result is None:
        return [], None
    status, output = result
    try:
        if status != 0:
            raise HardwareParseError(f"exit {status}: {first_lines(output) or 'no output'}")
        devices = parse_npu_smi_info(output)
    except HardwareParseError as error:
        warnings.append(f"npu-smi info failed: {error}")
        return [], None
    header = re.search(r"npu-smi\s+\S+\s+Version:\s*(\S+)", output)
    # One board query per distinct name column: each costs 0.1-0.5 s on a real host and
    # every NPU of one model answers the same (A3 shows "Ascend910" here, "910_9392" there).
    chips: dict[str, str | None] = {}
    for device in devices:
        if device.chip is not None and device.chip not in chips:
            board = _run("npu-smi", "info", "-t", "board", "-i", str(device.index), "-c", "0")
            chips[device.chip] = parse_npu_smi_board(board[1]) if board and board[0] == 0 else None
    devices = [
        dataclasses.replace(device, chip=chip, name=f"Ascend {chip}")
        if (chip := chips.get(device.chip or ""))
        else device
        for device in devices
    ]
    return devices, header.group(1) if header else None


def _ascend_driver_version(root: Path) -> str | None:
    text = _read(_at_root(root, "/usr/local/Ascend/driver/version.info"))
    return parse_ascend_version_info(text) if text else None


def _cann_dirs(root: Path) -> list[Path]:
    dirs = [
        _at_root(root, value)
        for value in (os.environ.get("ASCEND_TOOLKIT_HOME"), os.environ.get("ASCEND_HOME_PATH"))
        if value
    ]
    ascend = _at_root(root, "/usr/local/Ascend")
    # <= 8.3: ascend-toolkit/latest -> ascend-toolkit/<ver>; >= 8.5: cann -> cann-<ver>,
    # with ascend-toolkit/latest kept as a link to it.
    dirs += [ascend / "ascend-toolkit" / "latest", ascend / "cann", ascend / "latest"]
    try:
        versioned = [entry for entry in ascend.iterdir() if entry.name.startswith("cann-")]
    except OSError:
        versioned = []
    dirs += sorted(versioned, key=lambda entry: _natural_key(entry.name), reverse=True)
    return dirs


def _cann_version(root: Path, arch: str) -> str | None:
    for directory in _cann_dirs(root):
        text = _read(directory / "version.cfg")
        version = parse_cann_version_cfg(text) if text else None
        for info in (
            f"{arch}-linux/ascend_toolkit_install.info",
            "ascend_toolkit_install.info",
            "runtime/version.info",
        ):
            if version:
                break
            text = _read(directory / info)
            version = parse_ascend_version_info(text) if text else None
        if version:
            return version
    return None


# ----------------------------------------------------------------------------- host facts


def _natural_key(name: str) -> list[Any]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def _device_nodes(root: Path) -> tuple[tuple[str, ...], int | None]:
    dev = _at_root(root, "/dev")
    try:
        names = sorted(
            (entry.name for entry in dev.iterdir() if _DEVICE_NODE.match(entry.name)), key=_natural_key
        )
    except OSError:
        return (), None
    gid = None
    for pattern in (r"davinci\d+", r"nvidia\d+"):
        first = next((name for name in names if re.fullmatch(pattern, name)), None)
        if first is not None:
            try:
                gid = (dev / first).stat().st_gid
            except OSError:
                pass
            break
    return tuple(f"/dev/{name}" for name in names), gid


def _meminfo(root: Path) -> tuple[int, int]:
    text = _read(_at_root(root, "/proc/meminfo")) or _read(Path("/proc/meminfo")) or ""
    fields = {key: value.split()[0] for key, value in key_values(text, ":").items() if value.split()}
    total_kib = int(fields.get("MemTotal", 0))
    available_kib = int(fields.get("MemAvailable", fields.get("MemFree", 0)))
    return total_kib // 1024, available_kib // 1024


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _disk_free_mib(path: str) -> int | None:
    current = Path(path).expanduser().absolute()
    while not current.exists() and current != current.parent:
        current = current.parent  # models dir not created yet: measure the disk it will be on
    try:
        return shutil.disk_usage(current).free // 2**20
    except OSError:
        return None


def _docker_socket(root: Path) -> tuple[str | None, str | None]:
    """(base_url, error): where to reach Docker, or why not to try."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        if host.startswith("unix://") and not Path(host[len("unix://") :]).exists():
            return None, f"DOCKER_HOST={host} but that socket does not exist"
        return host, None
    candidates = [_at_root(root, "/var/run/docker.sock"), _at_root(root, "/run/docker.sock")]
    if str(root) == "/" and os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "docker.sock")  # rootless Docker
    for socket in candidates:
        if socket.exists():
            return f"unix://{socket}", None
    return None, "no Docker socket (/var/run/docker.sock) and DOCKER_HOST is not set"


def _probe_docker(root: Path) -> DockerInfo:
    base_url, error = _docker_socket(root)
    if base_url is None:
        return DockerInfo(available=False, error=error)
    try:
        import docker  # imported here: it pulls in requests/urllib3, ~100 ms
    except ImportError:
        return DockerInfo(available=False, error="the docker Python package is not installed")
    try:
        client = docker.DockerClient(base_url=base_url, timeout=DOCKER_TIMEOUT_S)
        try:
            info = client.info()
        finally:
            client.close()
    except Exception as failure:  # connection refused, permission denied, timeout...
        return DockerInfo(available=False, error=f"{type(failure).__name__}: {failure}"[:300])
    return DockerInfo(
        available=True,
        server_version=info.get("ServerVersion"),
        runtimes=tuple(sorted((info.get("Runtimes") or {}).keys())),
        default_runtime=info.get("DefaultRuntime"),
    )


# Everything outside the arguments that changes what probe() sees: a test that points the
# probe at a fixture host (tests/hosts.py) gets a fresh report, and the real host's report
# comes back once the variables are restored.
_PROBE_ENV = (
    "PATH",
    "I2V_HOST_ROOT",
    "I2V_NO_NVML",
    "I2V_HOST_ARCH",
    "ASCEND_TOOLKIT_HOME",
    "ASCEND_HOME_PATH",
    "DOCKER_HOST",
)


def probe(models_dir: str = ".", with_docker: bool = True) -> HardwareReport:
    """Look at this host once (cached per arguments and environment; ``probe.cache_clear()``
    to look again, e.g. after a driver install)."""
    return _probe_cached(models_dir, with_docker, tuple(os.environ.get(name) for name in _PROBE_ENV))


@functools.cache
def _probe_cached(models_dir: str, with_docker: bool, _environment: tuple[str | None, ...]) -> HardwareReport:
    root = _host_root()
    warnings: list[str] = []
    arch = os.environ.get("I2V_HOST_ARCH") or platform.machine()
    ram_mib, ram_available_mib = _meminfo(root)

    devices, driver_version = _probe_nvidia(warnings)
    vendor: Literal["nvidia", "ascend", "none"] = "nvidia" if devices else "none"
    cann_version = None
    if not devices:
        devices, npu_smi_version = _probe_ascend(warnings)
        vendor = "ascend" if devices else "none"
        # Read even when npu-smi failed: "driver 24.1.rc2 installed but dcmi fails" is what
        # `provision doctor` needs to say.
        driver_version = _ascend_driver_version(root) or npu_smi_version
        cann_version = _cann_version(root, arch)
    device_nodes, device_node_gid = _device_nodes(root)

    return HardwareReport(
        vendor=vendor,
        arch=arch,
        ram_mib=ram_mib,
        ram_available_mib=ram_available_mib,
        cpu_count=_cpu_count(),
        disk_path=models_dir,
        disk_free_mib=_disk_free_mib(models_dir),
        devices=tuple(devices),
        driver_version=driver_version,
        cann_version=cann_version,
        device_nodes=device_nodes,
        device_node_gid=device_node_gid,
        docker=_probe_docker(root) if with_docker else None,
        warnings=tuple(warnings),
    )


probe.cache_clear = _probe_cached.cache_clear  # type: ignore[attr-defined]
probe.cache_info = _probe_cached.cache_info  # type: ignore[attr-defined]
