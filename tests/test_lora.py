"""LoRA files on a warm engine: they change the output, and a removed one leaves the exact baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from i2v import catalogue  # noqa: E402
from i2v.devices import CpuDevice  # noqa: E402
from i2v.engine import Engine  # noqa: E402
from i2v.lora import LoraLoadError, LoraRef, loaded_adapters, parse_lora  # noqa: E402
from i2v.request import InvalidRequestError, resolve  # noqa: E402
from i2v.settings import Settings  # noqa: E402

MODEL = "tiny-ltx-2"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    return Engine(Settings(models_dir=tmp_path_factory.mktemp("models"), device="cpu"), device=CpuDevice())


@pytest.fixture(scope="module")
def loras(tmp_path_factory) -> dict[str, Path]:
    """Two random LoRAs for the tiny transformer, in the keys diffusers' save_lora_weights writes."""
    from safetensors.torch import save_file

    from i2v.tiny.build import build_pipeline
    from i2v.tiny.lora import write_random_lora

    root = tmp_path_factory.mktemp("loras")
    transformer = build_pipeline(MODEL).transformer
    paths = {
        name: write_random_lora(transformer, root / f"{name}.safetensors", seed=seed)
        for name, seed in (("style", 11), ("other", 12))
    }
    paths["foreign"] = root / "foreign.safetensors"  # a LoRA for some other model
    save_file(
        {
            "transformer.no_such_block.to_q.lora_A.weight": torch.randn(4, 8),
            "transformer.no_such_block.to_q.lora_B.weight": torch.randn(8, 4),
        },
        str(paths["foreign"]),
    )
    paths["pickle"] = root / "style.bin"
    paths["pickle"].write_bytes(b"\x80\x04N.")
    return paths


@pytest.fixture(scope="module")
def image():
    from i2v.cli import demo_image

    return demo_image(64, 64)


def generate(engine, image, *loras: str) -> np.ndarray:
    request = resolve(catalogue.get(MODEL), "standard", prompt="a ball rolls", loras=list(loras) or None)
    return engine.generate(request, image).output.frames


def has_lora_layers(pipe) -> bool:
    return any("lora" in name for name, _ in pipe.transformer.named_modules())


def test_parse_path_and_scale():
    assert parse_lora("style.safetensors") == LoraRef("style.safetensors", 1.0)
    assert parse_lora("style.safetensors:0.8") == LoraRef("style.safetensors", 0.8)
    assert parse_lora("C:/loras/style.safetensors") == LoraRef("C:/loras/style.safetensors", 1.0)
    assert parse_lora("a:b/style.safetensors:-0.5") == LoraRef("a:b/style.safetensors", -0.5)


def test_lora_on_off_returns_to_the_exact_baseline(engine, image, loras):
    style = str(loras["style"])
    baseline = generate(engine, image)
    pipe = engine._pipe
    full = generate(engine, image, style)
    half = generate(engine, image, f"{style}:0.5")
    assert engine._pipe is pipe  # the same warm pipeline throughout
    again = generate(engine, image, style)
    removed = generate(engine, image)
    diff_full, diff_half = np.abs(full - baseline).max(), np.abs(half - baseline).max()
    print(f"max |frames - baseline|: LoRA at 1.0 {diff_full:.4f}, at 0.5 {diff_half:.4f}")
    assert diff_full > 1e-2 and diff_half > 1e-3 and np.abs(full - half).max() > 1e-3
    np.testing.assert_array_equal(again, full)  # reusing the loaded adapter: same frames
    np.testing.assert_array_equal(removed, baseline)  # bit for bit: nothing leaked
    assert loaded_adapters(pipe) == set() and not has_lora_layers(pipe)


def test_a_different_lora_replaces_the_previous_one(engine, image, loras):
    alone = generate(engine, image, str(loras["other"]))
    generate(engine, image, str(loras["style"]))
    after = generate(engine, image, str(loras["other"]))
    assert len(loaded_adapters(engine._pipe)) == 1
    np.testing.assert_array_equal(after, alone)
    both = generate(engine, image, str(loras["style"]), f"{loras['other']}:0.5")
    assert len(loaded_adapters(engine._pipe)) == 2 and np.abs(both - alone).max() > 1e-3
    generate(engine, image)
    assert loaded_adapters(engine._pipe) == set()


def test_a_lora_for_another_model_is_a_clear_error_and_leaves_nothing(engine, image, loras):
    baseline = generate(engine, image)
    with pytest.raises(LoraLoadError) as info:
        generate(engine, image, str(loras["foreign"]))
    assert info.value.field == "lora" and "could not be loaded into LTX2ImageToVideoPipeline" in str(
        info.value
    )
    assert "no_such_block" in str(info.value)
    assert loaded_adapters(engine._pipe) == set()
    np.testing.assert_array_equal(generate(engine, image), baseline)


def test_only_safetensors_files(loras):
    with pytest.raises(InvalidRequestError, match=r"`lora` = .*style.bin.* must be \.safetensors"):
        resolve(catalogue.get(MODEL), "standard", loras=[str(loras["pickle"])])
    with pytest.raises(InvalidRequestError, match="no such file"):
        resolve(catalogue.get(MODEL), "standard", loras=["missing.safetensors"])
    with pytest.raises(InvalidRequestError, match="scale must be a number"):
        resolve(catalogue.get(MODEL), "standard", loras=[f"{loras['style']}:inf"])


@pytest.mark.parametrize("model", ["tiny-i2vgen-xl", "tiny-svd", "i2vgen-xl", "svd-xt"])
def test_pipelines_without_lora_support_say_so(model, loras):
    with pytest.raises(InvalidRequestError) as info:
        resolve(catalogue.get(model), "standard", loras=[str(loras["style"])])
    assert info.value.field == "lora" and "takes no LoRAs" in str(info.value)


def test_lora_families_match_diffusers():
    from i2v.families import resolve_class

    for spec in catalogue.all_specs():
        if spec.backend != "diffusers":  # ltx-pipelines fuses LoRAs itself (its builders take them)
            continue
        pipeline = resolve_class(spec.pipeline_cls)
        assert spec.adapter.levers.lora == callable(getattr(pipeline, "load_lora_weights", None)), spec.id
