"""The family adapters: one per (family, backend), found by name, their levers true to diffusers 0.42.1.

The planner proposes only levers an adapter declares, so each declaration is checked against the real
classes here: a lever that is not there would fail at `apply`, one that is there but undeclared is a
speed or memory saving the planner never sees.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from i2v import catalogue
from i2v.families import ADAPTERS, FamilyAdapter, adapter_for

REPO = Path(__file__).resolve().parents[1]
FAMILY_NAMES = {spec.family for spec in catalogue.all_specs()}
# The diffusers pipelines, whose levers are checked against diffusers' classes here; Lightricks' own
# backend (ltx-2.3) declares LoRAs only, checked in tests/test_ltx23_modes.py.
REAL = [s.id for s in catalogue.all_specs(include_tiny=False) if s.backend == "diffusers"]
TINY_OF = {
    "i2vgen-xl": "tiny-i2vgen-xl",
    "svd": "tiny-svd",
    "ltx-video": "tiny-ltx-video",
    "ltx-2": "tiny-ltx-2",
    "wan2.1": "tiny-wan2.1-i2v",
    "wan2.2": "tiny-wan2.2-i2v-a14b",
}


def test_the_second_ltx2_backend_is_a_registered_adapter():
    from i2v.families.ltx2_official.adapter import Ltx2Official

    for model in ("ltx-2.3", "tiny-ltx-2.3"):
        assert isinstance(catalogue.get(model).adapter, Ltx2Official)
    assert isinstance(catalogue.get("ltx-2").adapter, type(catalogue.get("tiny-ltx-2").adapter))
    assert not isinstance(catalogue.get("ltx-2").adapter, Ltx2Official)


def test_every_catalogue_entry_has_an_adapter_of_its_family():
    for spec in catalogue.all_specs():
        adapter = adapter_for(spec)
        assert isinstance(adapter, FamilyAdapter) and adapter.backend == spec.backend, spec.id
        assert adapter_for(spec) is adapter  # one instance per (family, backend)
    assert {(s.family, s.backend) for s in catalogue.all_specs()} <= set(ADAPTERS)


def test_unknown_family_is_a_clear_error():
    from i2v.families import _adapter

    with pytest.raises(KeyError, match=r"no adapter for family 'cogvideo' on backend 'diffusers'; known: "):
        _adapter("cogvideo", "diffusers")


def test_registry_and_adapters_import_no_torch():
    modules = sorted({target.partition(":")[0] for target in ADAPTERS.values()})
    code = (
        f"import sys, importlib; [importlib.import_module(m) for m in {modules!r}]; "
        "import i2v.families, i2v.catalogue as c; [s.adapter.levers for s in c.all_specs()]; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers', 'transformers')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_nothing_outside_the_families_branches_on_family_names():
    """Family names appear as data in the catalogue and the tiny builders; no other runtime module may
    compare against them (that knowledge belongs to the family's adapter)."""
    allowed = ("families", "catalogue", "tiny")
    offenders = []
    for path in sorted((REPO / "i2v").rglob("*.py")):
        if path.relative_to(REPO / "i2v").parts[0] in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in FAMILY_NAMES:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert not offenders, offenders


# --- levers against the real classes ---------------------------------------------------------------

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from i2v.families import resolve_class  # noqa: E402
from i2v.tiny.build import instantiate  # noqa: E402


def _tiny_component(spec, name):
    arch = catalogue.get(TINY_OF[spec.family]).architecture
    return instantiate(arch.component(name))


@pytest.mark.parametrize("model", REAL)
def test_levers_are_what_the_pipeline_has(model):
    spec = catalogue.get(model)
    adapter, levers = spec.adapter, spec.adapter.levers
    pipeline = resolve_class(spec.pipeline_cls)
    call = inspect.signature(pipeline.__call__).parameters
    assert levers.decode_chunk == ("decode_chunk_size" in call)
    assert levers.lora == callable(getattr(pipeline, "load_lora_weights", None))
    # AutoencoderMixin gives every VAE `enable_tiling`, which raises unless the class set `use_tiling`
    # (SVD's temporal decoder does not): build the family's tiny VAE and look.
    assert levers.vae_tiling == hasattr(_tiny_component(spec, "vae"), "use_tiling")
    denoisers = [c for c in spec.architecture.components if c.name in adapter.denoiser_names]
    assert denoisers, f"{model}: no component named {adapter.denoiser_names}"
    for component in denoisers:
        cls = resolve_class(component.cls)
        assert levers.forward_chunking == hasattr(cls, "enable_forward_chunking"), component.name
        assert (levers.compile == "regional") == bool(getattr(cls, "_repeated_blocks", None)), component.name
        if levers.cache_hooks:
            assert hasattr(cls, "enable_cache"), component.name


@pytest.mark.parametrize("family", sorted(TINY_OF))
def test_attention_hook_matches_the_processors(family):
    """Dispatch-based processors (they carry `_attention_backend`) take `set_attention_backend`; the UNets'
    classic processors ignore it, so the NPU gives them `enable_npu_flash_attention()` instead."""
    spec = catalogue.get(TINY_OF[family])
    model = _tiny_component(spec, spec.adapter.denoiser_names[0])
    dispatch = any(
        hasattr(m.processor, "_attention_backend") for m in model.modules() if hasattr(m, "processor")
    )
    assert spec.adapter.levers.attention == ("backend" if dispatch else "npu-flash")
    if spec.adapter.levers.attention == "npu-flash":
        assert hasattr(model, "enable_npu_flash_attention")


@pytest.mark.parametrize("model", REAL)
def test_progress_hook_exists(model):
    """The default progress path uses `callback_on_step_end`; an adapter without it overrides `progress`."""
    spec = catalogue.get(model)
    adapter = spec.adapter
    has_callback = (
        "callback_on_step_end" in inspect.signature(resolve_class(spec.pipeline_cls).__call__).parameters
    )
    overridden = type(adapter).progress is not FamilyAdapter.progress
    assert has_callback or overridden, model
