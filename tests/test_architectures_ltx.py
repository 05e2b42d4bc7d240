"""LTX-Video / LTX-2 architecture data against the real classes (meta device, no weights).

Published sizes: LTX-Video is a 2B model (1.92B transformer); LTX-2 is a 19B audio+video
transformer (18.88B) with a Gemma-3-12B text encoder (12.19B with tied embeddings).
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from i2v.catalogue import arch_ltx, arch_ltx2
from i2v.catalogue.arch_types import Architecture, Component

torch = pytest.importorskip("torch")

from i2v.tiny.build import count_params, instantiate, resolve  # noqa: E402


def _meta_params(component: Component) -> int:
    # torch.device("meta") rather than accelerate.init_empty_weights: under transformers 5 the
    # latter leaves tied embeddings untied (T5 +132M, Gemma-3 +1.0B).
    return count_params(instantiate(component, device="meta"))


FULL_CASES = [
    (f"{model_id}/{c.name}", c)
    for table in (arch_ltx.FULL, arch_ltx2.FULL, {"ltx-2:upsampler": arch_ltx2.UPSAMPLER["ltx-2"]})
    for model_id, arch in table.items()
    for c in arch.components
    if c.kind not in ("tokenizer", "scheduler")
]


@pytest.mark.parametrize("component", [c for _, c in FULL_CASES], ids=[i for i, _ in FULL_CASES])
def test_full_component_params_match_meta_instantiation(component: Component) -> None:
    assert component.params > 0, f"{component.name}: weighted full-size component without a param count"
    assert _meta_params(component) == component.params


def test_full_sizes_match_published_sizes() -> None:
    ltx = arch_ltx.FULL["ltx-video"]
    assert 1.9e9 < ltx.params_by_kind("denoiser") < 2.0e9  # "LTX-Video 2B"
    ltx2 = arch_ltx2.FULL["ltx-2"]
    assert 18.8e9 < ltx2.params_by_kind("denoiser") < 19.0e9  # "LTX-2 19B"
    assert 12.1e9 < ltx2.params_by_kind("text_encoder") < 12.3e9  # Gemma-3-12B
    assert ltx2.total_params == sum(c.params for c in ltx2.components)


def test_architecture_shape() -> None:
    for table in (arch_ltx.FULL, arch_ltx.TINY, arch_ltx2.FULL, arch_ltx2.TINY, arch_ltx2.UPSAMPLER):
        for arch in table.values():
            assert isinstance(arch, Architecture)
            names = [c.name for c in arch.components]
            assert len(names) == len(set(names))
            resolve(arch.pipeline_cls)
    assert set(arch_ltx.FULL) == {"ltx-video"} and set(arch_ltx.TINY) == {"tiny-ltx-video"}
    assert set(arch_ltx2.FULL) == {"ltx-2"} and set(arch_ltx2.TINY) == {"tiny-ltx-2"}
    # tiny and full share component names and classes, so code written for one runs on the other
    for full, tiny in (
        (arch_ltx.FULL["ltx-video"], arch_ltx.TINY["tiny-ltx-video"]),
        (arch_ltx2.FULL["ltx-2"], arch_ltx2.TINY["tiny-ltx-2"]),
    ):
        assert [(c.name, c.cls, c.kind) for c in full.components] == [
            (c.name, c.cls, c.kind) for c in tiny.components
        ]


def test_pipeline_accepts_the_components() -> None:
    for arch in (arch_ltx.FULL["ltx-video"], arch_ltx2.FULL["ltx-2"], arch_ltx2.UPSAMPLER["ltx-2"]):
        params = inspect.signature(resolve(arch.pipeline_cls).__init__).parameters
        assert {c.name for c in arch.components} <= set(params)


def test_arch_modules_are_torch_free() -> None:
    code = (
        "import sys; import i2v.catalogue.arch_ltx, i2v.catalogue.arch_ltx2; "
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
