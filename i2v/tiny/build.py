"""Build a tiny random-weight pipeline and save it in the hub layout, with no download.

``build_tiny(tiny_id, dest)`` seeds torch (``manual_seed(0)``), asks the family builder named in
`BUILDERS` for the pipeline object, and saves it with ``save_pretrained(safe_serialization=True)``
into a temporary sibling of ``dest`` that is renamed into place at the end, so ``dest`` is never
half-written. The result loads with ``PipelineClass.from_pretrained(dest, use_safetensors=True)``.

A family builder is ``def build(tiny_id: str) -> DiffusionPipeline``; most are
``assemble(TINY[tiny_id], PIPELINE_CONFIG.get(tiny_id, {}))`` over a catalogue entry. `BUILDERS`
names them as ``"module:function"`` strings so a family module (and its catalogue) is imported
only when one of its ids is built.

`instantiate` turns one catalogue `Component` into an object (a model on any device, ``meta``
included, a scheduler, a processor or a locally built tokenizer); the catalogue tests use it to
check parameter counts.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from i2v.catalogue.arch_types import Architecture, Component
from i2v.families.base import resolve_class as resolve
from i2v.tiny import gemma, tokenizers

# tiny id -> "module:function"; the function takes the tiny id and returns an unsaved pipeline.
BUILDERS: dict[str, str] = {
    "tiny-i2vgen-xl": "i2v.tiny.i2vgen:build",
    "tiny-svd": "i2v.tiny.svd:build",
    "tiny-wan2.1-i2v": "i2v.tiny.wan:build",
    "tiny-wan2.2-ti2v": "i2v.tiny.wan:build",
    "tiny-wan2.2-i2v-a14b": "i2v.tiny.wan:build",
    "tiny-ltx-video": "i2v.tiny.ltx:build",
    "tiny-ltx-2": "i2v.tiny.ltx:build",
}

# tiny id -> "module:function(dest)" for sets that are not one diffusers pipeline (Lightricks' own
# single-file layout): the function writes the whole folder itself, never half-written.
WRITERS: dict[str, str] = {
    "tiny-ltx-2.3": "i2v.tiny.ltx23:build",
}

# tiny id -> "module:function" writing files the hub keeps outside model_index.json (LTX-2's
# latent_upsampler/ and distilled weights); called as function(pipe, folder) before the rename.
EXTRAS: dict[str, str] = {
    "tiny-ltx-2": "i2v.tiny.ltx:write_extras",
}

# Tokenizer classes we can make locally, and the builder for each (its kwargs are the config).
TOKENIZER_BUILDERS: dict[str, Callable[..., Any]] = {
    "transformers.CLIPTokenizer": tokenizers.clip_tokenizer,
    "transformers.T5Tokenizer": tokenizers.t5_tokenizer,
    "transformers.T5TokenizerFast": tokenizers.t5_tokenizer,
    "transformers.GemmaTokenizerFast": gemma.gemma_tokenizer,
}


def instantiate(component: Component, device: str | torch.device | None = None) -> Any:
    """Build one component from its catalogue config, weights random (models) or none.

    ``device="meta"`` builds models without allocating their weights (for parameter counts of
    full-size configs); other kinds ignore ``device``.
    """
    if component.kind == "tokenizer":
        try:
            builder = TOKENIZER_BUILDERS[component.cls]
        except KeyError:
            raise ValueError(
                f"{component.name}: no local builder for tokenizer class {component.cls}; "
                f"have {sorted(TOKENIZER_BUILDERS)}"
            ) from None
        return builder(**component.config)
    cls = resolve(component.cls)
    if component.kind == "scheduler":
        return cls.from_config(dict(component.config))
    if component.kind == "processor":
        return cls(**component.config)
    with torch.device(device) if device is not None else contextlib.nullcontext():
        if component.cls.startswith("transformers."):
            return cls(cls.config_class(**component.config))
        return cls.from_config(dict(component.config))


def count_params(module: torch.nn.Module) -> int:
    """Parameters of a module, shared (tied) tensors counted once, as ``parameters()`` yields them."""
    return sum(p.numel() for p in module.parameters())


def assemble(
    arch: Architecture,
    pipeline_config: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
) -> Any:
    """Instantiate every component of ``arch`` in catalogue order and build the pipeline object.

    ``pipeline_config`` holds the pipeline's own registered options (Wan's ``boundary_ratio``,
    ``expand_timesteps``) that are not components. Optional components the architecture leaves
    out are passed as ``None`` by omission (the pipeline class defaults them). ``device`` builds
    the models there directly (full-size benchmarks build on the GPU, never in host memory).
    """
    pipeline_cls = resolve(arch.pipeline_cls)
    parts = {c.name: instantiate(c, device) for c in arch.components}
    pipe = pipeline_cls(**parts, **dict(pipeline_config or {}))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _builder(tiny_id: str) -> Callable[[str], Any]:
    try:
        target = BUILDERS[tiny_id]
    except KeyError:
        raise KeyError(f"unknown tiny model {tiny_id!r}; known: {sorted(BUILDERS)}") from None
    return _function(target)


def _function(target: str) -> Callable[..., Any]:
    module_name, _, func = target.partition(":")
    return getattr(importlib.import_module(module_name), func)


def build_pipeline(tiny_id: str, seed: int = 0) -> Any:
    """The tiny pipeline object, in memory, weights drawn after ``torch.manual_seed(seed)``."""
    builder = _builder(tiny_id)
    torch.manual_seed(seed)
    return builder(tiny_id)


def build_tiny(tiny_id: str, dest: Path) -> Path:
    """Build ``tiny_id`` and save it at ``dest`` (hub layout, safetensors, plus its `EXTRAS`);
    replaces an old ``dest``."""
    dest = Path(dest)
    if tiny_id in WRITERS:
        return Path(_function(WRITERS[tiny_id])(dest))
    pipe = build_pipeline(tiny_id)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}"
    old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        if tiny_id in EXTRAS:
            _function(EXTRAS[tiny_id])(pipe, tmp)
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not dest.exists():
            old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return dest


__all__ = [
    "BUILDERS",
    "EXTRAS",
    "WRITERS",
    "assemble",
    "build_pipeline",
    "build_tiny",
    "count_params",
    "instantiate",
    "resolve",
]
