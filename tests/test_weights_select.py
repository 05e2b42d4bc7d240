"""Which files a fetch takes from a repo listing: the catalogue's patterns, one variant, no pickle, no code."""

from __future__ import annotations

import pytest

from i2v import catalogue
from i2v.weights.errors import NotAPipelineError, PickleOnlyError
from i2v.weights.select import RemoteFile, select_files, weight_variant

CONFIGS = [
    "model_index.json",
    "unet/config.json",
    "vae/config.json",
    "text_encoder/config.json",
    "tokenizer/spiece.model",
    "tokenizer/tokenizer_config.json",
    "scheduler/scheduler_config.json",
]


def listing(*paths: str) -> list[RemoteFile]:
    return [RemoteFile(p, 10) for p in (*CONFIGS, *paths)]


def chosen(spec_id: str, *paths: str) -> set[str]:
    spec = catalogue.get(spec_id)
    return {
        f.path for f in select_files("org/repo", listing(*paths), spec.allow_patterns, spec.variant).files
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("diffusion_pytorch_model.safetensors", (True, None)),
        ("diffusion_pytorch_model.fp16.safetensors", (True, "fp16")),
        ("diffusion_pytorch_model-00001-of-00003.safetensors", (True, None)),
        ("diffusion_pytorch_model.fp16-00001-of-00002.safetensors", (True, "fp16")),
        ("model.safetensors.index.json", (True, None)),
        ("diffusion_pytorch_model.safetensors.index.bf16.json", (True, "bf16")),
        ("wan2.1_vae.safetensors", (True, None)),  # a dot in the name is not a variant
        ("config.json", (False, None)),
    ],
)
def test_weight_variant_follows_diffusers_naming(name, expected):
    assert weight_variant(name) == expected


def test_fp16_spec_takes_the_fp16_files_and_leaves_the_default_ones():
    got = chosen(
        "i2vgen-xl",
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.fp16.safetensors",
    )
    assert (
        "unet/diffusion_pytorch_model.fp16.safetensors" in got
        and "vae/diffusion_pytorch_model.fp16.safetensors" in got
    )
    assert (
        "unet/diffusion_pytorch_model.safetensors" not in got
        and "vae/diffusion_pytorch_model.safetensors" not in got
    )


def test_a_component_without_the_variant_falls_back_to_its_default_files_as_diffusers_does():
    patterns = ("model_index.json", "*/*.json", "*/*.safetensors")  # patterns that take both
    files = listing(
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    )
    got = {f.path for f in select_files("org/repo", files, patterns, "fp16").files}
    assert {"unet/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.safetensors"} <= got
    assert "unet/diffusion_pytorch_model.safetensors" not in got


def test_weights_the_catalogue_patterns_do_not_take_are_an_error_not_a_silent_gap():
    spec = catalogue.get("i2vgen-xl")  # fp16 only
    files = listing(
        "unet/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.safetensors"
    )
    with pytest.raises(
        NotAPipelineError,
        match=r"`vae` has no fp16 safetensors weights the catalogue's patterns "
        r"take \(it has: default\)",
    ):
        select_files("ali-vilab/i2vgen-xl", files, spec.allow_patterns, spec.variant)


def test_default_variant_spec_leaves_other_variants_and_keeps_shards_with_their_index():
    shards = [f"transformer/diffusion_pytorch_model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    got = chosen(
        "wan2.1-i2v-14b-480p",
        *shards,
        "transformer/diffusion_pytorch_model.safetensors.index.json",
        "transformer/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
        "transformer/diffusion_pytorch_model.safetensors.index.fp16.json",
    )
    assert set(shards) <= got and "transformer/diffusion_pytorch_model.safetensors.index.json" in got
    assert not any(".fp16" in p for p in got)


def test_pickles_code_docs_and_root_checkpoints_are_never_taken():
    got = chosen(
        "ltx-video",
        "transformer/diffusion_pytorch_model.safetensors",
        "transformer/diffusion_pytorch_model.bin",
        "ltx-video-2b-v0.9.safetensors",
        "pipeline.py",
        "transformer/modeling.py",
        "README.md",
        "vae/diffusion_pytorch_model.safetensors",
    )
    assert got == {
        *CONFIGS,
        "transformer/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    }


def test_a_pickle_only_component_is_refused_by_name():
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    files = listing("transformer/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.bin")
    with pytest.raises(
        PickleOnlyError,
        match=r"component `vae` has only pickle weights "
        r"\(vae/diffusion_pytorch_model\.bin\) and no \.safetensors; refused",
    ):
        select_files("Wan-AI/x", files, spec.allow_patterns, spec.variant)


def test_a_repo_without_model_index_is_not_a_pipeline():
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    with pytest.raises(NotAPipelineError, match="no model_index.json"):
        select_files("Wan-AI/x", [RemoteFile("wan.safetensors", 1)], spec.allow_patterns, spec.variant)


def test_a_component_with_only_another_variant_says_what_it_has():
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    files = listing("transformer/diffusion_pytorch_model.bf16.safetensors")
    with pytest.raises(
        NotAPipelineError, match=r"`transformer` has no default safetensors weights \(it has: bf16\)"
    ):
        select_files("Wan-AI/x", files, spec.allow_patterns, spec.variant)


def test_paths_that_leave_the_repo_are_refused():
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    with pytest.raises(NotAPipelineError, match=r"lists paths outside the repo \(vae/\.\./\.\./evil\.json\)"):
        select_files("x/y", listing("vae/../../evil.json"), spec.allow_patterns, spec.variant)
