"""Shared pytest wiring: hardware/slow/containers/browser markers are skipped unless enabled; one real
PostgreSQL server per test session for the tests that run against it (`postgres`, `database_url`)."""

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


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the session (started on first use, stopped at the end, also after a
    failure). Without the server binaries the PostgreSQL cases are skipped, except in CI (CI=true),
    where `make test` installs them and their absence is an error."""
    from pg_server import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        message = "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin): apt-get install postgresql-15"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("psycopg", reason="the job store's PostgreSQL driver: pip install -e '.[postgres]'")
    server = PostgresServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty job-store database: a SQLite file, then a new database on the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    server = request.getfixturevalue("postgres")
    return server.create_database(f"t_{abs(hash(request.node.nodeid)) % 10**12}")


@pytest.fixture(autouse=True)
def _hub_offline_mode_restored(monkeypatch):
    """Offline mode (`I2V_OFFLINE=1`) sets HF_HUB_OFFLINE in the environment and in huggingface_hub's
    constants for the rest of the process, as it should in a server; between tests it must not leak."""
    monkeypatch.setenv("HF_HUB_OFFLINE", os.environ.get("HF_HUB_OFFLINE", "0"))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)
