"""i2v.hardware against recorded hosts (tests/fixtures/hosts, sources in its README.md)."""

from __future__ import annotations

import http.server
import json
import os
import platform
import shutil
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hosts import HOSTS_DIR, host_names, use_host

from i2v import hardware
from i2v.hardware import (
    HardwareParseError,
    parse_ascend_version_info,
    parse_cann_version_cfg,
    parse_npu_smi_board,
    parse_npu_smi_info,
    parse_nvidia_smi_csv,
    probe,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_probe_cache():
    # Some tests patch what the probe sees without changing its environment key (a fake
    # pynvml, a patched timeout): never let their reports reach another test.
    yield
    probe.cache_clear()


def recorded(host: str, name: str) -> str:
    return (HOSTS_DIR / host / name).read_text()


# --------------------------------------------------------------------------- nvidia-smi CSV


def test_h100x8_csv_gives_eight_hoppers_with_uuids_and_bus_ids():
    gpus = parse_nvidia_smi_csv(recorded("h100x8", "nvidia-smi.query.csv"))
    assert [gpu.index for gpu in gpus] == list(range(8))
    assert {gpu.name for gpu in gpus} == {"NVIDIA H100 80GB HBM3"}
    assert {(gpu.memory_total_mib, gpu.memory_free_mib) for gpu in gpus} == {(81559, 81106)}
    assert {gpu.compute_capability for gpu in gpus} == {"9.0"}
    assert gpus[0].uuid == "GPU-b42dd28e-ffdd-8720-1df0-98bd8cdc05b1"
    assert gpus[7].uuid == "GPU-33135771-a848-ece1-b61e-489e221d663c"
    assert [gpu.bus_id for gpu in gpus] == [
        f"00000000:{bus}:00.0" for bus in ("18", "2A", "3A", "5D", "9A", "AB", "BA", "DB")
    ]
    assert all(gpu.chip is None and gpu.health is None for gpu in gpus)


@pytest.mark.parametrize(
    ("host", "name", "total", "free", "capability", "uuid"),
    [
        (
            "rtx4090",
            "NVIDIA GeForce RTX 4090",
            24564,
            24210,
            "8.9",
            "GPU-8ee5f1e0-e705-aac5-6d6e-b97ad59601ef",
        ),
        (
            "rtx3060-12g",
            "NVIDIA GeForce RTX 3060",
            12288,
            10614,
            "8.6",
            "GPU-af4b4c75-6037-6435-74fd-56d537593282",
        ),
    ],
)
def test_single_consumer_gpu_csv(host, name, total, free, capability, uuid):
    (gpu,) = parse_nvidia_smi_csv(recorded(host, "nvidia-smi.query.csv"))
    assert (gpu.index, gpu.name, gpu.memory_total_mib, gpu.memory_free_mib) == (0, name, total, free)
    assert (gpu.compute_capability, gpu.uuid, gpu.bus_id) == (capability, uuid, "00000000:01:00.0")


def test_csv_not_available_fields_become_zero_or_none():
    # Unified-memory parts print [N/A] for memory; old drivers [N/A] for compute_cap.
    line = "0, GPU-5ec6a13f-17fb-193c-e964-95a811c641c8, NVIDIA GB10, [N/A], [N/A], 580.95.05, [N/A], 0000000F:01:00.0\n"
    (gpu,) = parse_nvidia_smi_csv(line)
    assert (gpu.memory_total_mib, gpu.memory_free_mib, gpu.compute_capability) == (0, 0, None)
    assert gpu.bus_id == "0000000F:01:00.0"


@pytest.mark.parametrize(
    "text",
    [
        "",
        recorded("nvidia-driver-error", "nvidia-smi.failure"),
        recorded("h100x8", "nvidia-smi.txt"),  # the table, not the CSV
        "0, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n",  # another query's field list
        "zero, GPU-x, NVIDIA H100 80GB HBM3, 81559, 81106, 565.57.01, 9.0, 00000000:18:00.0\n",
        "0, GPU-x, NVIDIA H100 80GB HBM3, lots, 81106, 565.57.01, 9.0, 00000000:18:00.0\n",
    ],
)
def test_csv_garbage_raises(text):
    with pytest.raises(HardwareParseError):
        parse_nvidia_smi_csv(text)


# --------------------------------------------------------------------------- npu-smi info


def test_910b3x8_table_reads_hbm_not_the_memory_column():
    npus = parse_npu_smi_info(recorded("910b3x8", "npu-smi.info.txt"))
    assert [npu.index for npu in npus] == list(range(8))
    assert {(npu.name, npu.chip, npu.health) for npu in npus} == {("Ascend 910B3", "910B3", "OK")}
    assert {npu.memory_total_mib for npu in npus} == {65536}
    used = [3396, 3394, 3201, 3201, 3381, 3200, 3201, 3200]
    assert [npu.memory_free_mib for npu in npus] == [65536 - value for value in used]
    assert [npu.bus_id for npu in npus][:3] == ["0000:C1:00.0", "0000:01:00.0", "0000:C2:00.0"]
    assert {(npu.chip_id, npu.device_id, npu.uuid, npu.compute_capability) for npu in npus} == {
        (0, None, None, None)
    }


def test_910b4_is_32_gib():
    npus = parse_npu_smi_info(recorded("910b4", "npu-smi.info.txt"))
    assert len(npus) == 8
    assert {(npu.chip, npu.memory_total_mib) for npu in npus} == {("910B4", 32768)}
    assert [npu.memory_free_mib for npu in npus][:2] == [32768 - 2828, 32768 - 2829]


def test_310p_has_two_chips_per_card_gapped_ids_and_ddr_memory():
    chips = parse_npu_smi_info(recorded("310p", "npu-smi.info.txt"))
    assert [(chip.index, chip.chip_id, chip.device_id) for chip in chips] == [
        (1, 0, 0),
        (1, 1, 1),
        (2, 0, 2),
        (2, 1, 3),
        (4, 0, 4),
        (4, 1, 5),
        (5, 0, 6),
        (5, 1, 7),
    ]
    assert [chip.memory_total_mib for chip in chips] == [
        47304,
        46717,
        47304,
        46717,
        44280,
        43693,
        44280,
        43693,
    ]
    assert chips[0].memory_free_mib == 47304 - 1607
    assert [chip.health for chip in chips].count("Critical") == 1 and chips[4].health == "Critical"
    assert {chip.name for chip in chips} == {"Ascend 310P3"}


def test_noncontiguous_ids_are_kept_and_the_process_table_is_ignored():
    npus = parse_npu_smi_info(recorded("npu-noncontiguous", "npu-smi.info.txt"))
    assert [npu.index for npu in npus] == [4, 5, 6, 7]
    assert [npu.memory_free_mib for npu in npus] == [
        32768 - 29096,
        32768 - 29095,
        32768 - 29096,
        32768 - 29096,
    ]


def test_values_that_run_together_are_split():
    npus = parse_npu_smi_info(recorded("npu-runtogether", "npu-smi.info.txt"))
    used = [56363, 56362, 3377, 3377, 64748, 64751, 64749, 64749]
    assert [npu.memory_free_mib for npu in npus] == [65536 - value for value in used]


def test_value_glued_to_the_total_is_split():
    # The same real row with the other spacing ("3396 /65536") npu-smi also produces.
    text = recorded("910b3x8", "npu-smi.info.txt").replace("3396 / 65536         |", "3396 /65536          |")
    assert "3396 /65536" in text
    assert parse_npu_smi_info(text)[0].memory_free_mib == 65536 - 3396


def test_a3_rows_with_phy_id():
    # Excerpt of `npu-smi info` on an A3 (two chips per NPU, "Chip Phy-ID"), verbatim from
    # ModelEngine-Group/unified-cache-management#748.
    text = """\
| npu-smi 25.2.1                   Version: 25.2.1                                               |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip  Phy-ID              | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     Ascend910           | OK            | 166.5       38                0    / 0             |
| 0     0                   | 0000:9D:00.0  | 0           0    / 0          3131 / 65536         |
+------------------------------------------------------------------------------------------------+
| 0     Ascend910           | OK            | -           37                0    / 0             |
| 1     1                   | 0000:9F:00.0  | 0           0    / 0          2886 / 65536         |
+===========================+===============+====================================================+
| 1     Ascend910           | OK            | 168.1       37                0    / 0             |
| 0     2                   | 0000:99:00.0  | 0           0    / 0          3125 / 65536         |
"""
    chips = parse_npu_smi_info(text)
    assert [(chip.index, chip.chip_id, chip.device_id) for chip in chips] == [(0, 0, 0), (0, 1, 1), (1, 0, 2)]
    assert {chip.chip for chip in chips} == {"910"}
    assert [chip.memory_free_mib for chip in chips] == [65536 - 3131, 65536 - 2886, 65536 - 3125]


def test_old_310p_single_chip_table():
    # npu-smi 22.0.x on one 310P3, verbatim from Ascend ModelZoo's bert-large-NER README.
    text = """\
+--------------------------------------------------------------------------------------------+
| npu-smi 22.0.0                       Version: 22.0.3                                       |
+-------------------+-----------------+------------------------------------------------------+
| NPU     Name      | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device    | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===================+=================+======================================================+
| 0       310P3     | OK              | 17.1         56                0    / 0              |
| 0       0         | 0000:86:00.0    | 0            3292 / 21527                            |
+===================+=================+======================================================+
"""
    (chip,) = parse_npu_smi_info(text)
    assert (chip.index, chip.chip, chip.memory_total_mib, chip.memory_free_mib) == (
        0,
        "310P3",
        21527,
        21527 - 3292,
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        recorded("npu-dcmi-error", "npu-smi.failure"),
        recorded("h100x8", "nvidia-smi.txt"),
        recorded("h100x8", "nvidia-smi.query.csv"),
        # an NPU row whose chip row is missing
        "\n".join(recorded("910b3x8", "npu-smi.info.txt").splitlines()[:7]),
        # a chip row with no NPU row before it
        "\n".join(
            line for line in recorded("910b3x8", "npu-smi.info.txt").splitlines() if "910B3" not in line
        ),
    ],
)
def test_npu_smi_garbage_raises(text):
    with pytest.raises(HardwareParseError):
        parse_npu_smi_info(text)


# --------------------------------------------------------------------------- board, versions


def test_board_chip_name_a2():
    assert parse_npu_smi_board(recorded("910b3x8", "npu-smi.board.0.0.txt")) == "910B3"
    assert parse_npu_smi_board(recorded("310p", "npu-smi.board.4.1.txt")) == "310P3"


def test_board_chip_name_a3_joins_npu_name():
    text = """\
        NPU ID                         : 0
        NPU Name                       : 9392
        Chip ID                        : 0
        Chip Name                      : Ascend910
"""
    assert parse_npu_smi_board(text) == "910_9392"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "        Chip Name                      : MCU\n",
        "        Chip Name                      : xxx\n",
        "Error: Device does not exist.\n",
    ],
)
def test_board_without_a_chip_name(text):
    assert parse_npu_smi_board(text) is None


def test_driver_version_info():
    text = recorded("910b3x8", "root/usr/local/Ascend/driver/version.info")
    assert parse_ascend_version_info(text) == "24.1.rc2.2"
    # Newer drivers put a component version in Version=; package_version is the release.
    assert parse_ascend_version_info("Version=7.35.23\npackage_version=26.0.rc1\n") == "26.0.rc1"
    assert parse_ascend_version_info("Version=24.1.rc1\nascendhal_version=7.35.19\n") == "24.1.rc1"
    assert parse_ascend_version_info("no version here\n") is None


def test_toolkit_install_info():
    info = "root/usr/local/Ascend/ascend-toolkit/latest/aarch64-linux/ascend_toolkit_install.info"
    assert parse_ascend_version_info(recorded("910b4", info)) == "8.1.RC1"
    assert parse_ascend_version_info(recorded("npu-noncontiguous", info)) == "8.0.0"


def test_cann_version_cfg():
    assert (
        parse_cann_version_cfg(recorded("910b3x8", "root/usr/local/Ascend/ascend-toolkit/latest/version.cfg"))
        == "8.2.RC2"
    )
    # Several toolkits installed: the running one counts, not the installed list.
    several = (
        "runtime_running_version=[7.3.0.1.231:8.0.RC2]\n"
        "toolkit_running_version=[7.3.0.1.231:8.0.RC2]\n"
        "runtime_installed_version=[7.0.0.5.242:7.0.RC1][7.1.0.3.220:7.0.0][7.3.0.1.231:8.0.RC2]\n"
    )
    assert parse_cann_version_cfg(several) == "8.0.RC2"
    assert parse_cann_version_cfg("runtime_running_version=[8.5.2]\n") == "8.5.2"
    assert parse_cann_version_cfg("package_name=Ascend-cann-toolkit\n") is None


# --------------------------------------------------------------------------- probe() through the fakes

EXPECTED = {
    # host: (vendor, ids, name of the first device, total MiB, driver, CANN)
    "h100x8": ("nvidia", list(range(8)), "NVIDIA H100 80GB HBM3", 81559, "565.57.01", None),
    "rtx4090": ("nvidia", [0], "NVIDIA GeForce RTX 4090", 24564, "550.127.05", None),
    "rtx3060-12g": ("nvidia", [0], "NVIDIA GeForce RTX 3060", 12288, "581.80", None),
    "910b3x8": ("ascend", list(range(8)), "Ascend 910B3", 65536, "24.1.rc2.2", "8.2.RC2"),
    "910b4": ("ascend", list(range(8)), "Ascend 910B4", 32768, "24.1.rc3", "8.1.RC1"),
    "310p": ("ascend", [1, 1, 2, 2, 4, 4, 5, 5], "Ascend 310P3", 47304, "25.0.rc1.b033", "8.1.RC1"),
    "npu-noncontiguous": ("ascend", [4, 5, 6, 7], "Ascend 910B4", 32768, "23.0.6", "8.0.0"),
    "npu-runtogether": ("ascend", list(range(8)), "Ascend 910B3", 65536, "24.1.rc2", "8.1.RC1"),
    "nvidia-driver-error": ("none", [], None, None, None, None),
    "npu-dcmi-error": ("none", [], None, None, "25.5.2", None),
    "none": ("none", [], None, None, None, None),
}


def test_every_fixture_host_has_an_expectation():
    assert sorted(EXPECTED) == host_names()


@pytest.mark.parametrize("host", sorted(EXPECTED))
def test_probe_through_the_fake_tools(monkeypatch, host):
    vendor, ids, name, total, driver, cann = EXPECTED[host]
    use_host(monkeypatch, host)
    report = probe(with_docker=False)
    assert report.vendor == vendor
    assert [device.index for device in report.devices] == ids
    if ids:
        assert (report.devices[0].name, report.devices[0].memory_total_mib) == (name, total)
        assert report.warnings == ()
    assert (report.driver_version, report.cann_version) == (driver, cann)
    arch_file = HOSTS_DIR / host / "arch"
    assert report.arch == (arch_file.read_text().strip() if arch_file.exists() else platform.machine())
    assert report.ram_mib > 0 and report.cpu_count >= 1 and report.docker is None


def test_atlas_device_nodes_and_their_group(monkeypatch):
    host = use_host(monkeypatch, "910b3x8")
    report = probe(with_docker=False)
    assert report.device_nodes == (
        *(f"/dev/davinci{i}" for i in range(8)),
        "/dev/davinci_manager",
        "/dev/devmm_svm",
        "/dev/hisi_hdc",
    )
    assert report.device_node_gid == (host / "root/dev/davinci0").stat().st_gid


def test_nvidia_device_nodes(monkeypatch):
    use_host(monkeypatch, "h100x8")
    nodes = probe(with_docker=False).device_nodes
    assert nodes[:8] == tuple(f"/dev/nvidia{i}" for i in range(8))
    assert {"/dev/nvidiactl", "/dev/nvidia-uvm"} <= set(nodes)


def test_noncontiguous_container_sees_only_its_nodes(monkeypatch):
    use_host(monkeypatch, "npu-noncontiguous")
    nodes = probe(with_docker=False).device_nodes
    assert [node for node in nodes if node[-1].isdigit()] == [f"/dev/davinci{i}" for i in range(4, 8)]


def test_driver_error_is_a_warning_not_a_traceback(monkeypatch):
    use_host(monkeypatch, "nvidia-driver-error")
    report = probe(with_docker=False)
    assert report.vendor == "none" and report.devices == ()
    (warning,) = report.warnings
    assert "exit 9" in warning and "couldn't communicate with the NVIDIA driver" in warning


def test_dcmi_failure_is_recognised_even_with_exit_status_zero(monkeypatch):
    use_host(monkeypatch, "npu-dcmi-error")
    report = probe(with_docker=False)
    assert report.vendor == "none"
    (warning,) = report.warnings
    assert "dcmi module initialize failed. ret is -8005" in warning
    assert report.driver_version == "25.5.2"  # the driver is installed, just unusable


def test_none_host(monkeypatch):
    use_host(monkeypatch, "none")
    report = probe(with_docker=False)
    assert report.vendor == "none" and report.devices == () and report.warnings == ()
    assert report.ram_mib > 0 and 0 < report.ram_available_mib <= report.ram_mib
    assert report.arch == platform.machine()
    assert report.device_nodes == () and report.device_node_gid is None
    assert report.disk_free_mib is not None and report.disk_free_mib > 0


def _fake_host(tmp_path: Path, tool: str, script: str) -> Path:
    host = tmp_path / "host"
    (host / "bin").mkdir(parents=True)
    path = host / "bin" / tool
    path.write_text(script)
    path.chmod(0o755)
    return host


@pytest.mark.parametrize(
    ("tool", "output", "status", "expected"),
    [
        ("nvidia-smi", "<html><body>502 Bad Gateway</body></html>", 0, "could not read nvidia-smi output"),
        ("nvidia-smi", "No devices were found", 6, "nvidia-smi failed (exit 6): No devices were found"),
        ("npu-smi", "Usage: npu-smi info [-h] ...", 0, "npu-smi info failed"),
        ("npu-smi", "", 1, "npu-smi info failed: exit 1"),
    ],
)
def test_garbage_from_a_tool_is_a_warning(monkeypatch, tmp_path, tool, output, status, expected):
    script = f"#!{sys.executable}\nimport sys\nprint({output!r})\nsys.exit({status})\n"
    use_host(monkeypatch, _fake_host(tmp_path, tool, script))
    report = probe(with_docker=False)
    assert report.vendor == "none" and report.devices == ()
    (warning,) = report.warnings
    assert expected in warning


def test_a_hung_tool_times_out(monkeypatch, tmp_path):
    use_host(
        monkeypatch, _fake_host(tmp_path, "nvidia-smi", f"#!{sys.executable}\nimport time\ntime.sleep(10)\n")
    )
    monkeypatch.setattr(hardware, "TOOL_TIMEOUT_S", 0.3)
    report = probe(with_docker=False)
    assert report.vendor == "none"
    assert "did not answer" in report.warnings[0]


def test_board_query_names_the_chip(monkeypatch, tmp_path):
    # An A3 shows "Ascend910" in the table; only the board query tells 910_9392.
    host = tmp_path / "a3"
    shutil.copytree(HOSTS_DIR / "910b3x8", host)
    (host / "npu-smi.info.txt").write_text(
        recorded("910b3x8", "npu-smi.info.txt").replace("910B3    ", "Ascend910")
    )
    (host / "npu-smi.board.0.0.txt").write_text(
        "        NPU ID                         : 0\n        NPU Name                       : 9392\n"
        "        Chip ID                        : 0\n        Chip Name                      : Ascend910\n"
    )
    shutil.copy(HOSTS_DIR / "_replay.sh", tmp_path / "_replay.sh")
    use_host(monkeypatch, host)
    report = probe(with_docker=False)
    assert {(device.chip, device.name) for device in report.devices} == {("910_9392", "Ascend 910_9392")}


def test_nvidia_is_probed_first(monkeypatch):
    use_host(monkeypatch, "h100x8")
    monkeypatch.setenv("PATH", f"{HOSTS_DIR / '910b3x8' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert probe(with_docker=False).vendor == "nvidia"


def test_cann_in_the_new_layout_and_from_the_environment(monkeypatch, tmp_path):
    use_host(monkeypatch, "none")
    root = tmp_path / "root"
    runtime = root / "usr/local/Ascend/cann-9.0.0/runtime"
    runtime.mkdir(parents=True)
    (runtime / "version.info").write_text("Version=9.0.0\n")
    monkeypatch.setenv("I2V_HOST_ROOT", str(root))
    assert probe(with_docker=False).cann_version == "9.0.0"

    custom = root / "opt/cann/latest"
    custom.mkdir(parents=True)
    (custom / "version.cfg").write_text("runtime_running_version=[8.3.0.1.200:8.3.RC1]\n")
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", "/opt/cann/latest")
    assert probe(with_docker=False).cann_version == "8.3.RC1"


class _FakeNvml:
    """The slice of pynvml (nvidia-ml-py) the probe calls, for one H100 of the h100x8 host."""

    class NVMLError(Exception):
        pass

    def __init__(self, init_error: bool = False):
        self.init_error = init_error
        self.shut_down = False

    def nvmlInit(self):  # noqa: N802 (pynvml's names)
        if self.init_error:
            raise self.NVMLError("NVML Shared Library Not Found")

    def nvmlShutdown(self):  # noqa: N802
        self.shut_down = True

    def nvmlDeviceGetCount(self):  # noqa: N802
        return 1

    def nvmlDeviceGetHandleByIndex(self, index):  # noqa: N802
        return index

    def nvmlDeviceGetMemoryInfo(self, handle):  # noqa: N802
        # 85520809984 bytes = 81559 MiB, the H100 figure NVML reports.
        return type("Memory", (), {"total": 85520809984, "free": 81106 * 2**20, "used": 453 * 2**20})

    def nvmlDeviceGetCudaComputeCapability(self, handle):  # noqa: N802
        return 9, 0

    def nvmlDeviceGetName(self, handle):  # noqa: N802
        return b"NVIDIA H100 80GB HBM3"  # older bindings return bytes

    def nvmlDeviceGetUUID(self, handle):  # noqa: N802
        return "GPU-b42dd28e-ffdd-8720-1df0-98bd8cdc05b1"

    def nvmlDeviceGetPciInfo(self, handle):  # noqa: N802
        return type("Pci", (), {"busId": "00000000:18:00.0"})

    def nvmlSystemGetDriverVersion(self):  # noqa: N802
        return "565.57.01"


def test_nvml_is_used_unless_switched_off(monkeypatch):
    use_host(monkeypatch, "none")
    monkeypatch.delenv("I2V_NO_NVML")
    fake = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    report = probe(with_docker=False)
    assert report.vendor == "nvidia" and report.driver_version == "565.57.01"
    (gpu,) = report.devices
    assert (gpu.index, gpu.name, gpu.memory_total_mib, gpu.memory_free_mib) == (
        0,
        "NVIDIA H100 80GB HBM3",
        81559,
        81106,
    )
    assert (gpu.compute_capability, gpu.bus_id) == ("9.0", "00000000:18:00.0")
    assert fake.shut_down

    monkeypatch.setenv("I2V_NO_NVML", "1")
    assert probe(with_docker=False).vendor == "none"  # the none host has no nvidia-smi either


def test_nvml_without_a_driver_falls_back_to_nvidia_smi(monkeypatch):
    use_host(monkeypatch, "h100x8")
    monkeypatch.delenv("I2V_NO_NVML")
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml(init_error=True))
    report = probe(with_docker=False)
    assert report.vendor == "nvidia" and len(report.devices) == 8 and report.warnings == ()


# --------------------------------------------------------------------------- cache, dict, docker


def test_probe_is_cached_per_environment(monkeypatch):
    use_host(monkeypatch, "910b3x8")
    first = probe(with_docker=False)
    assert probe(with_docker=False) is first
    use_host(monkeypatch, "h100x8")
    assert probe(with_docker=False).vendor == "nvidia"
    probe.cache_clear()
    assert probe.cache_info().currsize == 0


def test_to_dict_is_json(monkeypatch):
    use_host(monkeypatch, "310p")
    data = json.loads(json.dumps(probe().to_dict()))
    assert {"vendor", "arch", "ram_mib", "devices", "docker", "warnings"} <= set(data)
    assert data["vendor"] == "ascend" and len(data["devices"]) == 8
    first = data["devices"][0]
    assert (first["index"], first["name"], first["memory_total_mib"], first["memory_free_mib"]) == (
        1,
        "Ascend 310P3",
        47304,
        47304 - 1607,
    )
    assert data["docker"]["available"] is False


def test_docker_missing_socket_is_quick_and_explained(monkeypatch, tmp_path):
    use_host(monkeypatch, "none")
    assert "no Docker socket" in probe().docker.error
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    docker = probe().docker
    assert docker.available is False and "DOCKER_HOST" in docker.error


class _FakeDocker(http.server.BaseHTTPRequestHandler):
    # Shape of `GET /info` from a Docker 27 engine with the NVIDIA runtime registered.
    INFO = {
        "ServerVersion": "27.3.1",
        "DefaultRuntime": "runc",
        "Runtimes": {
            "io.containerd.runc.v2": {"path": "runc", "status": {}},
            "nvidia": {"path": "nvidia-container-runtime"},
            "runc": {"path": "runc", "status": {}},
        },
    }

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = {"ApiVersion": "1.47"} if self.path.endswith("/version") else self.INFO
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


def test_docker_info_through_a_socket(monkeypatch, tmp_path):
    use_host(monkeypatch, "none")
    root = tmp_path / "root"
    (root / "var/run").mkdir(parents=True)
    server = _UnixHTTPServer(str(root / "var/run/docker.sock"), _FakeDocker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("I2V_HOST_ROOT", str(root))
        docker = probe().docker
    finally:
        server.shutdown()
        server.server_close()
    assert docker.available, docker.error
    assert docker.server_version == "27.3.1" and docker.default_runtime == "runc"
    assert docker.runtimes == ("io.containerd.runc.v2", "nvidia", "runc")


# --------------------------------------------------------------------------- import safety


def test_import_and_probe_do_not_import_torch_and_are_fast(tmp_path):
    code = (
        "import time; start = time.perf_counter()\n"
        "import sys, i2v.hardware\n"
        "i2v.hardware.probe()\n"
        "elapsed = time.perf_counter() - start\n"
        "assert 'torch' not in sys.modules and 'torch_npu' not in sys.modules, sorted(sys.modules)\n"
        "assert 'docker' not in sys.modules  # no socket: the SDK is never imported\n"
        "print(elapsed)\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DOCKER_HOST", "ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "I2V_NO_NVML"}
    }
    env.update(
        PATH=str(HOSTS_DIR / "none" / "bin"), I2V_HOST_ROOT=str(tmp_path / "empty"), PYTHONPATH=str(REPO)
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 0.3
