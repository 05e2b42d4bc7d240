"""Step-distilled fast presets: LightX2V-format LoRAs on the tiny Wan models, fetch, fallback, calls.

The tiny LoRAs are written locally in LightX2V's key format (Wan's original module names under
``diffusion_model.``, ``lora_down``/``lora_up`` pairs, ``diff``/``diff_b``/``diff_m`` deltas) and
loaded by diffusers' real Wan LoRA loader through the engine's own path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hub_server import FakeHub

from i2v import catalogue
from i2v.catalogue.assets import ASSETS, WAN21_I2V_4STEP
from i2v.engine import Engine
from i2v.planner import DeviceBudget, plan
from i2v.request import resolve
from i2v.settings import Settings
from i2v.weights import fetch, read_manifest

H100 = DeviceBudget("cuda", "NVIDIA H100 80GB HBM3", 81559, 81559, 1_000_000, compute_capability="9.0")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """The tiny Wan models and their tiny LoRA assets, built by `fetch` as `i2v fetch` does."""
    root = tmp_path_factory.mktemp("models")
    for model in ("tiny-wan2.1-i2v", "tiny-wan2.2-i2v-a14b"):
        fetch(model, models_dir=root, offline=False)
        for asset in {lora.asset for lora in catalogue.get(model).presets["fast"].loras}:
            fetch(asset, models_dir=root, offline=False)
    return root


def lightx2v_keys(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return list(handle.keys())


def test_the_tiny_lora_is_in_lightx2v_key_format(models_dir):
    keys = lightx2v_keys(
        models_dir / "tiny-lightx2v-wan2.1-i2v" / "tiny_wan2.1_i2v_lora_lightx2v.safetensors"
    )
    assert all(k.startswith("diffusion_model.blocks.") for k in keys)
    for suffix in (
        "self_attn.q.lora_down.weight",
        "cross_attn.k_img.lora_up.weight",
        "ffn.0.lora_down.weight",
    ):
        assert any(k.endswith(suffix) for k in keys), suffix
    assert any(k.endswith(".diff_b") for k in keys) and any(k.endswith(".diff_m") for k in keys)


def test_fast_resolves_to_four_steps_without_guidance_and_the_presets_lora(models_dir):
    spec = catalogue.get("tiny-wan2.1-i2v")
    request = resolve(spec, "fast", models_dir=models_dir)
    assert (request.steps, request.guidance, request.notes) == (2, 1.0, ())
    (lora,) = request.preset_loras
    assert (
        Path(lora.path)
        == models_dir / "tiny-lightx2v-wan2.1-i2v" / "tiny_wan2.1_i2v_lora_lightx2v.safetensors"
    )
    a14b = resolve(catalogue.get("tiny-wan2.2-i2v-a14b"), "fast", models_dir=models_dir)
    assert [r.target for r in a14b.preset_loras] == ["transformer", "transformer_2"]


def test_without_its_lora_fast_falls_back_to_the_preview_and_says_so(tmp_path):
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    request = resolve(spec, "fast", models_dir=tmp_path)
    assert (request.height, request.width, request.frames, request.steps) == (320, 576, 33, 20)
    assert not request.preset_loras
    (note,) = request.notes
    assert WAN21_I2V_4STEP in note and "i2v fetch wan2.1-i2v-14b-480p" in note
    p = plan(spec, request, H100)
    assert note in p.notes and p.cache == "first-block-cache:0.05"


def test_plan_counts_denoiser_calls_per_video(tmp_path):
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    standard = plan(spec, resolve(spec, "standard"), H100)
    assert standard.denoiser_calls == 40 * 2  # CFG as two batch-1 passes a step
    asset = tmp_path / "lightx2v-wan2.1-i2v-4step"
    asset.mkdir()
    (asset / WAN21_I2V_4STEP).write_bytes(b"stand-in")
    fast = plan(spec, resolve(spec, "fast", models_dir=tmp_path), H100)
    assert fast.denoiser_calls == 4 and fast.cache is None  # 4 steps, guidance 1: nothing to cache
    i2vgen = catalogue.get("i2vgen-xl")
    assert plan(i2vgen, resolve(i2vgen, "standard"), H100).denoiser_calls == 40  # CFG batched


@pytest.mark.parametrize("model", ["tiny-wan2.1-i2v", "tiny-wan2.2-i2v-a14b"])
def test_the_lightx2v_lora_loads_into_every_expert_and_changes_the_frames(models_dir, model):
    from i2v.cli import demo_image

    spec = catalogue.get(model)
    engine = Engine(Settings(models_dir=models_dir, device="cpu"))
    fast = resolve(spec, "fast", models_dir=models_dir, seed=3)
    image = demo_image(fast.width, fast.height)
    with_lora = engine.generate(fast, image)
    pipe = engine._pipe
    adapters = pipe.get_list_adapters()
    assert set(adapters) == {lora.target for lora in fast.preset_loras}, adapters
    without = engine.generate(dataclasses.replace(fast, preset_loras=()), image)
    assert not pipe.get_list_adapters()  # unloaded again: the next request runs the base weights
    difference = np.abs(with_lora.output.frames - without.output.frames).max()
    assert difference > 1e-3, difference


def test_i2v_fetch_takes_the_lightx2v_lora_from_modelscope_first(models_dir, tmp_path, monkeypatch):
    built = models_dir / "tiny-lightx2v-wan2.1-i2v" / "tiny_wan2.1_i2v_lora_lightx2v.safetensors"
    asset = ASSETS["lightx2v-wan2.1-i2v-4step"]
    files = {
        WAN21_I2V_4STEP: built.read_bytes(),
        "wan2.1_t2v_14b_lora_rank64_lightx2v_4step.safetensors": b"\0" * 64,  # another file of the repo
        "README.md": b"# distill loras\n",
    }
    for name in ("HF_TOKEN", "HF_ENDPOINT", "MODELSCOPE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with FakeHub() as hub:
        hub.add_repo(asset.modelscope_id, files)
        monkeypatch.setenv("MODELSCOPE_DOMAIN", hub.url)
        result = fetch(asset, source="auto", models_dir=tmp_path, offline=False)
        assert any(
            r.path.startswith(f"/api/v1/models/{asset.modelscope_id}/repo/files") for r in hub.requests
        )
        assert not any("t2v" in r.path or "README" in r.path for r in hub.requests if "FilePath=" in r.path)
    manifest = read_manifest(result.folder)
    assert manifest.source == "modelscope" and [f.path for f in manifest.files] == [WAN21_I2V_4STEP]
    assert (result.folder / WAN21_I2V_4STEP).read_bytes() == built.read_bytes()
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    request = resolve(spec, "fast", models_dir=tmp_path)
    assert request.steps == 4 and request.preset_loras[0].path == str(result.folder / WAN21_I2V_4STEP)


def test_ltx2_fast_runs_its_distilled_mode(tmp_path):
    spec = catalogue.get("ltx-2")
    folder = tmp_path / "ltx-2"
    (folder / "latent_upsampler").mkdir(parents=True)
    (folder / "latent_upsampler" / "config.json").write_text("{}")
    assert resolve(spec, "fast", models_dir=tmp_path).mode == "one-stage"  # no distilled weights: fallback
    (folder / "ltx-2-19b-distilled-lora-384.safetensors").write_bytes(b"stand-in")
    request = resolve(spec, "fast", models_dir=tmp_path)
    assert request.mode == "distilled" and not request.notes
    assert plan(spec, request, H100).denoiser_calls == 8 + 3  # no guidance: one call a step
