"""Shared pytest wiring: hardware/slow/containers/browser markers are skipped unless enabled."""

from __future__ import annotations

import os

import pytest

OPT_IN_MARKERS = ("cuda", "npu", "slow", "containers", "browser")


def pytest_addoption(parser: pytest.Parser) -> None:
    for marker in OPT_IN_MARKERS:
        parser.addoption(
            f"--run-{marker}",
            action="store_true",
            default=False,
            help=f"run tests marked @{marker} (also I2V_TEST_{marker.upper()}=1)",
        )


def _enabled(config: pytest.Config, marker: str) -> bool:
    if marker == "containers" and os.environ.get("CI") == "true":
        return True  # CI (root, clean clone) runs the container checks from `make test`; see tests/test_containers.py
    return bool(config.getoption(f"--run-{marker}")) or os.environ.get(f"I2V_TEST_{marker.upper()}") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker in OPT_IN_MARKERS:
            if marker in item.keywords and not _enabled(config, marker):
                item.add_marker(pytest.mark.skip(reason=f"@{marker}: enable with --run-{marker}"))


@pytest.fixture
def fake_torch_npu():
    """Install tests/fake_torch_npu.py as `torch_npu` (and `torch.npu`) for one test, then remove it."""
    try:
        import fake_torch_npu as fake  # tests/ is on sys.path (pytest's rootdir-less conftest import)
    except ImportError:
        from tests import fake_torch_npu as fake

    with fake.installed() as module:
        yield module


@pytest.fixture(autouse=True)
def _hub_offline_mode_restored(monkeypatch):
    """Offline mode (`I2V_OFFLINE=1`) sets HF_HUB_OFFLINE in the environment and in huggingface_hub's
    constants for the rest of the process, as it should in a server; between tests it must not leak."""
    monkeypatch.setenv("HF_HUB_OFFLINE", os.environ.get("HF_HUB_OFFLINE", "0"))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)
