"""The runtime (engine, worker, server, CLIs, bench, weights) imports neither `provision` (the host tool)
nor `i2v.tiny` (the random-weight model factory): only building a tiny model reaches the factory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNTIME = ("i2v.engine", "i2v.worker", "i2v.cli", "i2v.bench", "i2v.server.app", "i2v.weights", "i2v.errors")
FORBIDDEN = (
    "bad = sorted(m for m in sys.modules if m == 'provision' or m.startswith(('provision.', 'i2v.tiny')))"
)


def run(code: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_importing_the_runtime_imports_neither():
    run(
        f"import sys, importlib; [importlib.import_module(m) for m in {RUNTIME!r}]; {FORBIDDEN}; assert not bad, bad"
    )


def test_error_table_resolves_without_them():
    run(f"import sys; from i2v import errors; errors._classes(); {FORBIDDEN}; assert not bad, bad")


def test_a_run_on_fetched_weights_imports_neither(tmp_path):
    pytest.importorskip("diffusers")
    from i2v import catalogue
    from i2v.weights import build_tiny_with_manifest

    build_tiny_with_manifest(catalogue.get("tiny-svd"), tmp_path / "tiny-svd")  # what `i2v fetch` leaves
    run(
        f"""
        import sys
        from i2v.cli import demo_image
        from i2v.devices import CpuDevice
        from i2v.engine import Engine
        from i2v.request import resolve
        from i2v.settings import Settings
        from i2v import catalogue

        spec = catalogue.get("tiny-svd")
        request = resolve(spec, "standard", frames=2, steps=1)
        engine = Engine(Settings(models_dir={str(tmp_path)!r}, device="cpu"), device=CpuDevice())
        result = engine.generate(request, demo_image(request.width, request.height))
        assert result.output.frames.shape[0] == 2
        {FORBIDDEN}
        assert not bad, bad
        """
    )
