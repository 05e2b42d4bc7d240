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

TOOL_TIMEOUT_S = 5.0
DOCKER_TIMEOUT_S = 2.0

NVIDIA_QUERY_FIELDS = (
    "index", "uuid", "name", "memory.total", "memory.free", "driver_version", "compute_cap", "pci.bus_id",
)
NVIDIA_SMI_QUERY = (
    f"--query-gpu={','.join(NVIDIA_QUERY_FIELDS)}",
    "--format=csv,noheader,nounits",
)

# npu-smi prints these instead of a table when the driver cannot be reached
# (vllm-project/vllm-ascend#2698, #632). No report shows the exit status that goes with
# them, so the text itself marks the failure.
_NPU_SMI_FAILURES = ("dcmi module initialize failed", "dcmi model initialized failed")
_NVIDIA_NA = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]"}
_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_USED_TOTAL = re.compile(r"(\d+)\s*/\s*(\d+)")
_DEVICE_NODE = re.compile(r"^(nvidia.*|davinci.*|devmm_svm|hisi_hdc)$")


class HardwareParseError(ValueError):
    """A vendor tool printed something this module cannot read; the message quotes it."""


@dataclass(frozen=True)
class Accelerator:
    index: int                      # nvidia-smi index / npu-smi NPU id (can be non-contiguous)
    name: str                       # "NVIDIA H100 80GB HBM3", "Ascend 910B3"
    memory_total_mib: int           # HBM (310P: its DDR "Memory-Usage"); 0 when unknown
    memory_free_mib: int
    uuid: str | None = None
    compute_capability: str | None = None   # "9.0" (NVIDIA only)
    chip: str | None = None         # "910B3", "310P3" (Ascend)
    health: str | None = None       # npu-smi "OK", "Warning", "Critical", ...
    bus_id: str | None = None
    chip_id: int | None = None      # Ascend: chip within the NPU (300I Duo and A3 have two)
    device_id: int | None = None    # Ascend: the "Device" (310P) / "Phy-ID" (A3) column when printed; with
                                    # two chips per NPU, /dev/davinci<N> follows this, not `index`


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


# ----------------------------------------------------------------------------- parsers


def _nvidia_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != len(NVIDIA_QUERY_FIELDS):
            raise HardwareParseError(
                f"expected {len(NVIDIA_QUERY_FIELDS)} comma-separated fields "
                f"({','.join(NVIDIA_QUERY_FIELDS)}) but got {len(fields)}: {line.strip()[:200]!r}"
            )
        rows.append(fields)
    if not rows:
        raise HardwareParseError("nvidia-smi printed no GPU rows")
    return rows


def _nvidia_value(field: str) -> str | None:
    return None if field.lower() in _NVIDIA_NA else field


def _mib(field: str, line: list[str]) -> int:
    value = _nvidia_value(field)
    if value is None:
        return 0  # unified-memory parts (GH200, GB10) report memory as [N/A]
    try:
        return int(float(value))
    except ValueError:
        raise HardwareParseError(f"memory field {field!r} is not a number in {', '.join(line)!r}") from None


def parse_nvidia_smi_csv(text: str) -> list[Accelerator]:
    """Read ``nvidia-smi --query-gpu=<NVIDIA_QUERY_FIELDS> --format=csv,noheader,nounits``."""
    devices = []
    for row in _nvidia_rows(text):
        index, uuid, name, total, free, _driver, compute_cap, bus_id = row
        try:
            gpu_index = int(index)
        except ValueError:
            raise HardwareParseError(f"GPU index {index!r} is not an integer in {', '.join(row)!r}") from None
        devices.append(Accelerator(
            index=gpu_index,
            name=name,
            memory_total_mib=_mib(total, row),
            memory_free_mib=_mib(free, row),
            uuid=_nvidia_value(uuid),
            compute_capability=_nvidia_value(compute_cap),
            bus_id=_nvidia_value(bus_id),
        ))
    return devices


def _nvidia_driver_from_csv(text: str) -> str | None:
    drivers = {_nvidia_value(row[5]) for row in _nvidia_rows(text)} - {None}
    return sorted(drivers)[0] if drivers else None


def _strip_ascend(name: str) -> str:
    return re.sub(r"^ascend\s*", "", name.strip(), flags=re.IGNORECASE)


def parse_npu_smi_info(text: str) -> list[Accelerator]:
    """Read the device table of ``npu-smi info`` (two rows per chip; the process table is ignored).

    First row: ``NPU  Name | Health | Power Temp Hugepages``; second row:
    ``Chip [Phy-ID|Device] | Bus-Id | AICore% Memory-Usage [HBM-Usage]``. Memory is the last
    ``used / total`` pair of the second row with a non-zero total: HBM on 910B/A3, the DDR
    ``Memory-Usage`` on 310P, which has no HBM column. Values may run together (``29096/ 32768``).
    """
    for marker in _NPU_SMI_FAILURES:
        if marker in text:
            raise HardwareParseError(_first_lines(text))
    devices: list[Accelerator] = []
    pending: tuple[int, str, str] | None = None  # (npu id, name, health) of a first row
    for line in text.splitlines():
        stripped = line.strip()
        if "Process id" in stripped or "Process name" in stripped:
            break  # the process table follows the device table
        if not stripped.startswith("|"):
            continue
        cells = [cell.strip() for cell in stripped.strip("|").split("|")]
        first = cells[0].split()
        if not first or not first[0].isdigit():
            continue  # headers, "npu-smi x Version: x", "No running processes found"
        if len(cells) < 3:
            raise HardwareParseError(f"npu-smi row has {len(cells)} columns, expected 3: {stripped[:200]!r}")
        if _BUS_ID.match(cells[1]):
            if pending is None:
                raise HardwareParseError(f"npu-smi chip row without an NPU row before it: {stripped[:200]!r}")
            npu_id, name, health = pending
            pending = None
            pairs = [(int(used), int(total)) for used, total in _USED_TOTAL.findall(cells[2])]
            sized = [pair for pair in pairs if pair[1] > 0]
            used, total = sized[-1] if sized else (0, 0)
            chip = _strip_ascend(name)
            devices.append(Accelerator(
                index=npu_id,
                name=f"Ascend {chip}",
                memory_total_mib=total,
                memory_free_mib=max(total - used, 0),
                chip=chip,
                health=health,
                bus_id=cells[1],
                chip_id=int(first[0]),
                device_id=int(first[1]) if len(first) > 1 and first[1].isdigit() else None,
            ))
        elif len(first) >= 2 and not first[1].isdigit():
            if pending is not None:
                raise HardwareParseError(f"npu-smi NPU {pending[0]} row has no chip row after it")
            pending = (int(first[0]), " ".join(first[1:]), cells[1])
        else:
            raise HardwareParseError(f"unrecognised npu-smi row: {stripped[:200]!r}")
    if pending is not None:
        raise HardwareParseError(f"npu-smi NPU {pending[0]} row has no chip row after it")
    if not devices:
        raise HardwareParseError(f"no NPU rows in npu-smi output: {_first_lines(text)!r}")
    return devices


def _key_values(text: str, separator: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        key, sep, value = line.partition(separator)
        if sep and key.strip():
            pairs.setdefault(key.strip(), value.strip())
    return pairs


def parse_npu_smi_board(text: str) -> str | None:
    """Chip name from ``npu-smi info -t board -i N -c 0``: ``910B3`` on A2, ``910_9392`` on A3.

    A2 prints ``Chip Type: Ascend`` + ``Chip Name: 910B3``; A3 prints ``Chip Name: Ascend910``
    + ``NPU Name: 9392`` (SoC ``Ascend910_9392``). Returns None when there is no chip name.
    """
    fields = _key_values(text, ":")
    chip = fields.get("Chip Name")
    if not chip or chip.lower() in {"mcu", "na", "n/a", "xxx"}:
        return None
    chip = _strip_ascend(chip)
    npu_name = fields.get("NPU Name")
    if npu_name and npu_name.isdigit():
        return f"{chip}_{npu_name}"
    return chip or None


def parse_ascend_version_info(text: str) -> str | None:
    """Version from a ``KEY=VALUE`` version file: driver ``version.info`` (``package_version``
    first, then ``Version``), ``ascend_toolkit_install.info`` (``version``) or ``runtime/version.info``."""
    fields = {key.lower(): value for key, value in _key_values(text, "=").items()}
    for key in ("package_version", "version"):
        if fields.get(key):
            return fields[key].strip('"')
    return None


def parse_cann_version_cfg(text: str) -> str | None:
    """CANN version from the toolkit's ``version.cfg``: ``toolkit_running_version=[8.2.0.2.220:8.2.RC2]``
    gives ``8.2.RC2``; ``runtime_running_version=[8.5.2]`` gives ``8.5.2``."""
    fields = _key_values(text, "=")
    keys = ["toolkit_running_version", "runtime_running_version"]
    keys += sorted(key for key in fields if key.endswith("_running_version") and key not in keys)
    for key in keys:
        groups = re.findall(r"\[([^\]]+)\]", fields.get(key, ""))
        if groups:
            version = groups[-1].rpartition(":")[2].strip()
            if version:
                return version
    return None


def _first_lines(text: str, count: int = 2) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[:count])[:300]


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
            [executable, *args], capture_output=True, text=True, errors="replace",
            timeout=TOOL_TIMEOUT_S, stdin=subprocess.DEVNULL,
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
            devices.append(Accelerator(
                index=index,
                name=text(pynvml.nvmlDeviceGetName(handle)),
                memory_total_mib=int(memory.total) // 2**20,
                memory_free_mib=int(memory.free) // 2**20,
                uuid=text(pynvml.nvmlDeviceGetUUID(handle)),
                compute_capability=compute_capability,
                bus_id=text(pynvml.nvmlDeviceGetPciInfo(handle).busId),
            ))
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
        warnings.append(f"nvidia-smi failed (exit {status}): {_first_lines(output) or 'no output'}")
        return [], None
    try:
        return parse_nvidia_smi_csv(output), _nvidia_driver_from_csv(output)
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
            raise HardwareParseError(f"exit {status}: {_first_lines(output) or 'no output'}")
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
        if (chip := chips.get(device.chip or "")) else device
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
        for info in (f"{arch}-linux/ascend_toolkit_install.info", "ascend_toolkit_install.info",
                     "runtime/version.info"):
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
        names = sorted((entry.name for entry in dev.iterdir() if _DEVICE_NODE.match(entry.name)),
                       key=_natural_key)
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
    fields = {key: value.split()[0] for key, value in _key_values(text, ":").items() if value.split()}
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
        if host.startswith("unix://") and not Path(host[len("unix://"):]).exists():
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
    "PATH", "I2V_HOST_ROOT", "I2V_NO_NVML", "I2V_HOST_ARCH",
    "ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "DOCKER_HOST",
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
