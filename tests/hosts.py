"""Pretend to be a recorded host: ``use_host(monkeypatch, "910b3x8")`` then ``probe()``.

Each directory under ``tests/fixtures/hosts/`` is one host (sources in its README.md):
``bin/`` holds fake ``nvidia-smi`` / ``npu-smi`` that replay the recorded output, ``root/`` the
files ``i2v.hardware`` reads (``/usr/local/Ascend/...``, ``/dev/davinci*``), ``arch`` the
machine the output came from. Usage in a test::

    from hosts import use_host
    from i2v import hardware

    def test_plan_on_atlas(monkeypatch):
        use_host(monkeypatch, "910b3x8")
        report = hardware.probe(with_docker=False)
        assert report.vendor == "ascend"

``tests/`` is on ``sys.path`` under pytest (rootdir conftest, no ``__init__.py``), so
``from hosts import use_host`` works from any test module.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from i2v import hardware

HOSTS_DIR = Path(__file__).parent / "fixtures" / "hosts"

# Variables that would let the real machine leak into a fixture host's report.
_CLEARED = ("DOCKER_HOST", "ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "I2V_HOST_ARCH")


def host_names() -> list[str]:
    """Every recorded host: ``["310p", "910b3x8", ..., "rtx4090"]``."""
    return sorted(path.name for path in HOSTS_DIR.iterdir() if (path / "bin").is_dir())


@functools.cache
def _shell_dir() -> str:
    """A directory holding only ``bash``, for the fakes' ``#!/usr/bin/env bash``."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is needed to run the fake vendor tools")
    directory = tempfile.mkdtemp(prefix="i2v-shell-")
    os.symlink(bash, os.path.join(directory, "bash"))
    return directory


def use_host(monkeypatch: pytest.MonkeyPatch, name: str | Path, *, isolate_path: bool = True) -> Path:
    """Make ``i2v.hardware.probe()`` see fixture host ``name``; returns its directory.

    ``name`` is a directory name under ``tests/fixtures/hosts`` or a ``Path`` to a host laid
    out the same way (e.g. a ``tmp_path`` copy a test has edited).

    Sets PATH to the host's fake tools (plus ``bash``; with ``isolate_path=False`` the real
    PATH follows them, so a real ``nvidia-smi`` could answer for tools the host lacks),
    ``I2V_HOST_ROOT`` to its ``root/`` (a path that does not exist when it has none),
    ``I2V_NO_NVML=1``, ``I2V_HOST_ARCH`` from its ``arch`` file, clears Docker/CANN variables
    and the probe cache. monkeypatch undoes it all after the test. Pass ``with_docker=False``
    to ``probe()`` unless the test is about Docker (the fixture roots have no socket, so
    Docker shows as unavailable either way).
    """
    host = name if isinstance(name, Path) else HOSTS_DIR / name
    if not (host / "bin").is_dir():
        raise ValueError(f"no fixture host {name!r}; known hosts: {', '.join(host_names())}")
    path = [str(host / "bin"), _shell_dir()]
    if not isolate_path:
        path.append(os.environ.get("PATH", os.defpath))
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    monkeypatch.setenv("I2V_HOST_ROOT", str(host / "root"))
    monkeypatch.setenv("I2V_NO_NVML", "1")
    for variable in _CLEARED:
        monkeypatch.delenv(variable, raising=False)
    arch_file = host / "arch"
    if arch_file.is_file():
        monkeypatch.setenv("I2V_HOST_ARCH", arch_file.read_text().strip())
    # probe() also keys its cache on these variables, so the real host is re-read once
    # monkeypatch restores them; clearing here just keeps the cache small.
    hardware.probe.cache_clear()
    return host
