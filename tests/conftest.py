"""Shared pytest wiring: hardware/slow/containers/browser markers are skipped unless enabled."""

from __future__ import annotations

import os

import pytest

OPT_IN_MARKERS = ("cuda", "npu", "slow", "containers", "browser")


def pytest_addoption(parser: pytest.Parser) -> None:
    for marker in OPT_IN_MARKERS:
        parser.addoption(
            f"--run-{marker}", action="store_true", default=False,
            help=f"run tests marked @{marker} (also I2V_TEST_{marker.upper()}=1)",
        )


def _enabled(config: pytest.Config, marker: str) -> bool:
    return bool(config.getoption(f"--run-{marker}")) or os.environ.get(f"I2V_TEST_{marker.upper()}") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker in OPT_IN_MARKERS:
            if marker in item.keywords and not _enabled(config, marker):
                item.add_marker(pytest.mark.skip(reason=f"@{marker}: enable with --run-{marker}"))
