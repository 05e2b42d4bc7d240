"""Parsers for what the vendor tools print: `nvidia-smi --query-gpu ... csv`, `npu-smi info`, the
board query, the Ascend driver's version.info and CANN's version.cfg. Pure functions over text,
tested against recorded outputs (tests/fixtures/hosts/); `i2v.hardware` runs the tools."""

from __future__ import annotations

import re
from dataclasses import dataclass

NVIDIA_QUERY_FIELDS = (
    "index",
    "uuid",
    "name",
    "memory.total",
    "memory.free",
    "driver_version",
    "compute_cap",
    "pci.bus_id",
)

# npu-smi prints these instead of a table when the driver cannot be reached
# (vllm-project/vllm-ascend#2698, #632). No report shows the exit status that goes with
# them, so the text itself marks the failure.
NPU_SMI_FAILURES = ("dcmi module initialize failed", "dcmi model initialized failed")

_NVIDIA_NA = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]"}
_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_USED_TOTAL = re.compile(r"(\d+)\s*/\s*(\d+)")


class HardwareParseError(ValueError):
    """A vendor tool printed something this module cannot read; the message quotes it."""


@dataclass(frozen=True)
class Accelerator:
    index: int  # nvidia-smi index / npu-smi NPU id (can be non-contiguous)
    name: str  # "NVIDIA H100 80GB HBM3", "Ascend 910B3"
    memory_total_mib: int  # HBM (310P: its DDR "Memory-Usage"); 0 when unknown
    memory_free_mib: int
    uuid: str | None = None
    compute_capability: str | None = None  # "9.0" (NVIDIA only)
    chip: str | None = None  # "910B3", "310P3" (Ascend)
    health: str | None = None  # npu-smi "OK", "Warning", "Critical", ...
    bus_id: str | None = None
    chip_id: int | None = None  # Ascend: chip within the NPU (300I Duo and A3 have two)
    device_id: int | None = None  # Ascend: the "Device" (310P) / "Phy-ID" (A3) column when printed; with
    # two chips per NPU, /dev/davinci<N> follows this, not `index`


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
        devices.append(
            Accelerator(
                index=gpu_index,
                name=name,
                memory_total_mib=_mib(total, row),
                memory_free_mib=_mib(free, row),
                uuid=_nvidia_value(uuid),
                compute_capability=_nvidia_value(compute_cap),
                bus_id=_nvidia_value(bus_id),
            )
        )
    return devices


def nvidia_driver_from_csv(text: str) -> str | None:
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
    for marker in NPU_SMI_FAILURES:
        if marker in text:
            raise HardwareParseError(first_lines(text))
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
            devices.append(
                Accelerator(
                    index=npu_id,
                    name=f"Ascend {chip}",
                    memory_total_mib=total,
                    memory_free_mib=max(total - used, 0),
                    chip=chip,
                    health=health,
                    bus_id=cells[1],
                    chip_id=int(first[0]),
                    device_id=int(first[1]) if len(first) > 1 and first[1].isdigit() else None,
                )
            )
        elif len(first) >= 2 and not first[1].isdigit():
            if pending is not None:
                raise HardwareParseError(f"npu-smi NPU {pending[0]} row has no chip row after it")
            pending = (int(first[0]), " ".join(first[1:]), cells[1])
        else:
            raise HardwareParseError(f"unrecognised npu-smi row: {stripped[:200]!r}")
    if pending is not None:
        raise HardwareParseError(f"npu-smi NPU {pending[0]} row has no chip row after it")
    if not devices:
        raise HardwareParseError(f"no NPU rows in npu-smi output: {first_lines(text)!r}")
    return devices


def key_values(text: str, separator: str) -> dict[str, str]:
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
    fields = key_values(text, ":")
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
    fields = {key.lower(): value for key, value in key_values(text, "=").items()}
    for key in ("package_version", "version"):
        if fields.get(key):
            return fields[key].strip('"')
    return None


def parse_cann_version_cfg(text: str) -> str | None:
    """CANN version from the toolkit's ``version.cfg``: ``toolkit_running_version=[8.2.0.2.220:8.2.RC2]``
    gives ``8.2.RC2``; ``runtime_running_version=[8.5.2]`` gives ``8.5.2``."""
    fields = key_values(text, "=")
    keys = ["toolkit_running_version", "runtime_running_version"]
    keys += sorted(key for key in fields if key.endswith("_running_version") and key not in keys)
    for key in keys:
        groups = re.findall(r"\[([^\]]+)\]", fields.get(key, ""))
        if groups:
            version = groups[-1].rpartition(":")[2].strip()
            if version:
                return version
    return None


def first_lines(text: str, count: int = 2) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[:count])[:300]
