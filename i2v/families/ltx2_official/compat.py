"""Every patch i2v applies to ``ltx-core==1.0.0`` / ``ltx-pipelines==1.0.0``, in one module.

Nothing is forked or vendored: each patch replaces one module attribute (or wraps one method)
from outside, after checking that what it replaces still is what 1.0.0 ships - the object's
identity where another module re-exports it, and a hash of its source (`source_sha`: the text
``inspect.getsource`` returns, so it is the same on every Python version). A mismatch raises
`PatchDriftError` naming the patch: a new package version must be re-read, not patched blindly.
`install()` checks all patches before it applies any, and is idempotent.

Outside a `scope.run_scope` every patched function does what 1.0.0 does; inside one it follows the
run's device (i2v.devices.Device) and ticks the run's progress.

| patch | what and why | upstream fix it mirrors |
| --- | --- | --- |
| gemma-transformers-5 | transformers 5 flattened ``vision_tower.vision_model`` and moved RoPE to per-layer-type buffers: the Gemma key map and the meta-model populator of 1.0.0 fail (``'SiglipVisionModel' object has no attribute 'vision_model'``) | 1.1.4 (Lightricks/LTX-2 #220, 2026-05-28): ``_build_gemma_llm_key_ops(transformers_v5=True)``, ``_populate_rotary_v5`` |
| gemma-config-from-root | 1.0.0 hard-codes Gemma 3 12B (``GEMMA3_CONFIG_FOR_LTX``) and ignores the root's config.json; a root whose config.json has other dimensions (the tiny test model) is built from its own config, the real 12B root keeps the hard-coded one | 1.2.0 (2026-08-11): "Gemma configuration is now loaded from the model root through ``gemma_model_config()``" |
| device-sync | every pipeline calls ``torch.cuda.synchronize()`` and ``cleanup_memory()`` (``gc.collect()``, ``torch.cuda.empty_cache()``, ``synchronize()``) unconditionally: an AssertionError without CUDA; routed to the run's Device (without the collection, see ``cleanup_memory``) | 1.2.0: ``ltx_core.devices.synchronize_device`` / ``cleanup_accelerator_memory`` |
| step-progress | the denoising loops' only per-step hook is ``tqdm``; within a run it ticks the run's progress instead of printing a bar | none (upstream prints tqdm bars) |
| res2s-float32 | the res2s sampler (two-stage-hq) computes in float64 on the device; on a device without float64 (NPU) a float32 variant of that loop, compiled from 1.0.0's own source with ``.double()`` / ``torch.float64`` replaced | 1.2.0: ``highest_precision_float(device)`` in ``utils/samplers.py``; seed problem 7 |
| mel-on-host | torchaudio's MelSpectrogram makes complex64 STFTs (audio-to-video, retake): on a device without complex dtypes it runs through ``Device.run_complex_step`` on the CPU | none upstream; seed problem 8 |
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import inspect
import json
import re
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from importlib import import_module, metadata
from pathlib import Path
from typing import Any

from . import scope

PINNED = {"ltx-core": "1.0.0", "ltx-pipelines": "1.0.0"}
PIPELINE_MODULES = (
    "ti2vid_two_stages",
    "ti2vid_two_stages_hq",
    "ti2vid_one_stage",
    "distilled",
    "keyframe_interpolation",
    "a2vid_two_stage",
    "retake",
    "ic_lora",
)
_ENCODER_CONFIGURATOR = "ltx_core.text_encoders.gemma.encoders.encoder_configurator"
# Modules that import GEMMA_MODEL_OPS / GEMMA_LLM_KEY_OPS by name (and so hold their own reference).
_GEMMA_OPS_HOLDERS = (
    _ENCODER_CONFIGURATOR,
    "ltx_core.text_encoders.gemma",
    "ltx_pipelines.utils.model_ledger",
)
_CUDA_CALLS_ROUTED = frozenset({"synchronize", "empty_cache"})

# sha256[:16] of inspect.getsource(...) in the pinned 1.0.0 wheels.
EXPECTED_SOURCE = {
    "create_and_populate": "c8b966223389d010",
    "GemmaTextEncoderConfigurator": "bb6a790ca0011cf3",
    "_create_feature_extractor": "bf435206886280f2",
    "cleanup_memory": "24981fcf0deaf26a",
    "euler_denoising_loop": "412bc300eb5f7dc6",
    "res2s_audio_video_denoising_loop": "db03ef5d154b0c49",
    "_inject_sde_noise": "96df8a269aee68c6",
    "_get_new_noise": "f9260f2192bd737a",
    "waveform_to_mel": "8aff764f5b6e129a",
}
# res2s-float32: (function, source text, occurrences in 1.0.0, replacement)
RES2S_EDITS = (
    ("_get_new_noise", "dtype=torch.float64", 1, "dtype=_HIGH_PRECISION"),
    ("_inject_sde_noise", ".double()", 4, ".to(_HIGH_PRECISION)"),
    ("res2s_audio_video_denoising_loop", ".double()", 14, ".to(_HIGH_PRECISION)"),
)

Targets = dict[str, Any]


class PatchDriftError(RuntimeError):
    """The installed ltx package no longer looks like what a patch was written against."""

    def __init__(self, patch: str, detail: str) -> None:
        self.patch = patch
        super().__init__(
            f"compat patch {patch!r}: {detail}. The pinned ltx-core/ltx-pipelines "
            f"({', '.join(f'{k}=={v}' for k, v in PINNED.items())}) changed under it: "
            f"re-read the new version and re-derive the patch"
        )


@dataclass(frozen=True)
class Patch:
    """One patch: `targets()` gathers what it replaces, `check(targets)` raises `PatchDriftError`
    unless they are what 1.0.0 ships, `apply(targets)` installs the replacement."""

    name: str
    targets: Callable[[], Targets]
    check: Callable[[Targets], None]
    apply: Callable[[Targets], None]


def _mod(name: str) -> types.ModuleType:
    return import_module(name)


def source_sha(obj: Any) -> str:
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def _expect_source(patch: str, targets: Targets, *keys: str) -> None:
    for key in keys:
        found = source_sha(targets[key])
        if found != EXPECTED_SOURCE[key]:
            raise PatchDriftError(patch, f"{key} has source hash {found}, expected {EXPECTED_SOURCE[key]}")


def check_versions(version: Callable[[str], str] = metadata.version) -> None:
    for dist, pinned in PINNED.items():
        found = version(dist)
        if found != pinned:
            raise PatchDriftError("versions", f"{dist} is {found}, not {pinned}")


# -- gemma-transformers-5 ------------------------------------------------------------------------
LEGACY_VISION = ("vision_tower.", "model.model.vision_tower.")
# transformers 5 has no `vision_model` level inside the SigLIP tower; the checkpoints keep it.
V5_VISION = ("vision_tower.vision_model.", "model.model.vision_tower.")


def _replacements(sd_ops: Any) -> list[tuple[str, str]]:
    return [(m.content, m.replacement) for m in sd_ops.mapping if hasattr(m, "replacement")]


def populate_gemma_v5(module: Any) -> Any:
    """Fill the non-persistent buffers a meta-built transformers-5 Gemma 3 needs (nothing in the
    checkpoint holds them): RoPE tables per layer type, the SigLIP position ids, the embed scale."""
    import torch

    model = module.model
    language = model.model.language_model
    text_config = model.config.text_config
    # A fresh rotary module computes every layer type's tables itself, as from_pretrained does.
    language.rotary_emb = type(language.rotary_emb)(config=text_config, device="cpu")
    embeddings = model.model.vision_tower.embeddings
    count = embeddings.position_ids.shape[-1]
    embeddings.register_buffer(
        "position_ids", torch.arange(count, dtype=torch.long).unsqueeze(0), persistent=False
    )
    language.embed_tokens.register_buffer(
        "embed_scale", torch.tensor(text_config.hidden_size**0.5), persistent=False
    )
    return module


def _gemma_ops_targets() -> Targets:
    import transformers

    ec = _mod(_ENCODER_CONFIGURATOR)
    return {
        "transformers": transformers.__version__,
        "create_and_populate": ec.create_and_populate,
        "GEMMA_MODEL_OPS": ec.GEMMA_MODEL_OPS,
        "GEMMA_LLM_KEY_OPS": ec.GEMMA_LLM_KEY_OPS,
        "holders": {h: (_mod(h).GEMMA_MODEL_OPS, _mod(h).GEMMA_LLM_KEY_OPS) for h in _GEMMA_OPS_HOLDERS},
    }


def _check_gemma_ops(t: Targets) -> None:
    name = "gemma-transformers-5"
    if int(t["transformers"].split(".")[0]) != 5:
        raise PatchDriftError(name, f"written for transformers 5, found {t['transformers']}")
    if t["GEMMA_MODEL_OPS"].mutator is not t["create_and_populate"]:
        raise PatchDriftError(name, "GEMMA_MODEL_OPS.mutator is not create_and_populate")
    _expect_source(name, t, "create_and_populate")
    if LEGACY_VISION not in _replacements(t["GEMMA_LLM_KEY_OPS"]):
        raise PatchDriftError(name, f"GEMMA_LLM_KEY_OPS has no {LEGACY_VISION} replacement")
    for holder, ops in t["holders"].items():
        if ops != (t["GEMMA_MODEL_OPS"], t["GEMMA_LLM_KEY_OPS"]):
            raise PatchDriftError(name, f"{holder} no longer holds encoder_configurator's Gemma ops")


def _apply_gemma_ops(t: Targets) -> None:
    from ltx_core.loader.sd_ops import ContentReplacement

    old = t["GEMMA_LLM_KEY_OPS"]
    mapping = tuple(
        ContentReplacement(*V5_VISION)
        if (getattr(m, "content", None), getattr(m, "replacement", None)) == LEGACY_VISION
        else m
        for m in old.mapping
    )
    key_ops, model_ops = (
        replace(old, mapping=mapping),
        t["GEMMA_MODEL_OPS"]._replace(mutator=populate_gemma_v5),
    )
    for holder in t["holders"]:
        _mod(holder).GEMMA_LLM_KEY_OPS, _mod(holder).GEMMA_MODEL_OPS = key_ops, model_ops


# -- gemma-config-from-root ----------------------------------------------------------------------
# Dimensions that decide the Gemma model's shape (and the LTX feature extractor's input width).
_TEXT_DIMS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
)
_VISION_DIMS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "image_size",
    "patch_size",
)
_GEMMA_CONFIG: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "ltx2_official_gemma_config", default=None
)


class RootGemmaConfig:
    """Quacks like 1.0.0's Gemma3ConfigData for its two readers: ``.to_dict()`` and ``.text_config``."""

    def __init__(self, data: dict) -> None:
        self._data = data
        self.text_config = types.SimpleNamespace(**data["text_config"])

    def to_dict(self) -> dict:
        return json.loads(json.dumps(self._data))


class GemmaConfigSwitch:
    """Stands in for ``GEMMA3_CONFIG_FOR_LTX``: the hard-coded 12B config, unless a build runs
    inside `gemma_config_for(root)` for a root whose config.json has other dimensions."""

    def __init__(self, hard_coded: Any) -> None:
        self.hard_coded = hard_coded

    def _current(self) -> Any:
        return _GEMMA_CONFIG.get() or self.hard_coded

    def to_dict(self) -> dict:
        return self._current().to_dict()

    @property
    def text_config(self) -> Any:
        return self._current().text_config


def root_gemma_config(gemma_root: str | Path) -> RootGemmaConfig | None:
    """The root's own config when its dimensions differ from 1.0.0's hard-coded Gemma 3 12B; None
    when they match (or the root has no config.json), so the real root builds exactly as upstream."""
    path = Path(gemma_root) / "config.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    ref = _mod("ltx_core.text_encoders.gemma.config").GEMMA3_CONFIG_FOR_LTX.to_dict()
    same = all(data.get("text_config", {}).get(k) == ref["text_config"][k] for k in _TEXT_DIMS) and all(
        data.get("vision_config", {}).get(k) == ref["vision_config"][k] for k in _VISION_DIMS
    )
    return None if same else RootGemmaConfig(data)


@contextlib.contextmanager
def gemma_config_for(gemma_root: str | Path | None) -> Iterator[bool]:
    """Builds inside use the root's own Gemma config where it differs; yields whether it does."""
    config = root_gemma_config(gemma_root) if gemma_root is not None else None
    token = _GEMMA_CONFIG.set(config)
    try:
        yield config is not None
    finally:
        _GEMMA_CONFIG.reset(token)


def _gemma_config_targets() -> Targets:
    ec = _mod(_ENCODER_CONFIGURATOR)
    return {
        "held": ec.GEMMA3_CONFIG_FOR_LTX,
        "defined": _mod("ltx_core.text_encoders.gemma.config").GEMMA3_CONFIG_FOR_LTX,
        "GemmaTextEncoderConfigurator": ec.GemmaTextEncoderConfigurator,
        "_create_feature_extractor": ec._create_feature_extractor,
    }


def _check_gemma_config(t: Targets) -> None:
    name = "gemma-config-from-root"
    if t["held"] is not t["defined"]:
        raise PatchDriftError(name, "encoder_configurator.GEMMA3_CONFIG_FOR_LTX is not the config module's")
    _expect_source(name, t, "GemmaTextEncoderConfigurator", "_create_feature_extractor")


def _apply_gemma_config(t: Targets) -> None:
    _mod(_ENCODER_CONFIGURATOR).GEMMA3_CONFIG_FOR_LTX = GemmaConfigSwitch(t["defined"])


# -- device-sync ---------------------------------------------------------------------------------
class _RoutedCuda(types.ModuleType):
    """``torch.cuda`` for the pipeline modules: synchronize/empty_cache go to the run's Device."""

    def __init__(self, cuda: types.ModuleType) -> None:
        super().__init__("torch.cuda")
        self._cuda = cuda

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cuda, name)

    def synchronize(self, *args: Any, **kwargs: Any) -> None:
        run = scope.active()
        if run is None:
            return self._cuda.synchronize(*args, **kwargs)
        run.device.synchronize()

    def empty_cache(self) -> None:
        run = scope.active()
        if run is None:
            return self._cuda.empty_cache()
        run.device.empty_cache()


class TorchWithRoutedCuda(types.ModuleType):
    """The ``torch`` name inside the pipeline modules: torch itself, except ``.cuda``."""

    def __init__(self, torch: types.ModuleType) -> None:
        super().__init__("torch")
        self._torch = torch
        self.cuda = _RoutedCuda(torch.cuda)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)


def _sync_targets() -> Targets:
    import torch

    names = [f"ltx_pipelines.{name}" for name in PIPELINE_MODULES] + ["ltx_pipelines.utils.helpers"]
    return {
        "torch": torch,
        "cleanup_memory": _mod("ltx_pipelines.utils.helpers").cleanup_memory,
        "modules": {n: (_mod(n).torch, inspect.getsource(_mod(n)), _mod(n).cleanup_memory) for n in names},
    }


def _check_device_sync(t: Targets) -> None:
    name = "device-sync"
    _expect_source(name, t, "cleanup_memory")
    for module, (held_torch, source, cleanup) in t["modules"].items():
        if held_torch is not t["torch"]:
            raise PatchDriftError(name, f"{module}.torch is not the torch module")
        if cleanup is not t["cleanup_memory"]:
            raise PatchDriftError(name, f"{module}.cleanup_memory is not helpers.cleanup_memory")
        calls = set(re.findall(r"torch\.cuda\.(\w+)\(", source)) - {"is_available"}
        if not calls <= _CUDA_CALLS_ROUTED:
            raise PatchDriftError(name, f"{module} calls torch.cuda.{sorted(calls - _CUDA_CALLS_ROUTED)}")


def _apply_device_sync(t: Targets) -> None:
    routed, package_cleanup = TorchWithRoutedCuda(t["torch"]), t["cleanup_memory"]

    def cleanup_memory() -> None:
        """1.0.0's gc.collect() + empty_cache() + synchronize(); inside a run the device's two calls
        only: the models a collection would free are the ones the warm cache keeps on purpose, and
        in a large process each collection costs 0.2-0.6 s (6-8 of them a run)."""
        run = scope.active()
        if run is None:
            return package_cleanup()
        run.device.empty_cache()
        run.device.synchronize()

    for module in t["modules"]:
        _mod(module).torch, _mod(module).cleanup_memory = routed, cleanup_memory


# -- step-progress -------------------------------------------------------------------------------
def _ticking(iterable: Iterable[Any], ticker: scope.StepTicker) -> Iterator[Any]:
    for item in iterable:
        yield item
        ticker.tick()  # the loop body, one denoising step, has finished


def _progress_targets() -> Targets:
    import tqdm

    samplers = _mod("ltx_pipelines.utils.samplers")
    return {
        "held": samplers.tqdm,
        "tqdm": tqdm.tqdm,
        "euler_denoising_loop": samplers.euler_denoising_loop,
        "res2s_audio_video_denoising_loop": samplers.res2s_audio_video_denoising_loop,
    }


def _check_progress(t: Targets) -> None:
    name = "step-progress"
    if t["held"] is not t["tqdm"]:
        raise PatchDriftError(name, "ltx_pipelines.utils.samplers.tqdm is not tqdm.tqdm")
    _expect_source(name, t, "euler_denoising_loop", "res2s_audio_video_denoising_loop")


def _apply_progress(t: Targets) -> None:
    console_bar = t["tqdm"]

    def tqdm_or_ticker(iterable: Iterable[Any], *args: Any, **kwargs: Any) -> Iterable[Any]:
        run = scope.active()
        if run is None or run.ticker is None:
            return console_bar(iterable, *args, **kwargs)
        return _ticking(iterable, run.ticker)

    _mod("ltx_pipelines.utils.samplers").tqdm = tqdm_or_ticker


# -- res2s-float32 -------------------------------------------------------------------------------
def _res2s_targets() -> Targets:
    samplers = _mod("ltx_pipelines.utils.samplers")
    return {
        "held": _mod("ltx_pipelines.ti2vid_two_stages_hq").res2s_audio_video_denoising_loop,
        **{function: getattr(samplers, function) for function, *_ in RES2S_EDITS},
    }


def _check_res2s(t: Targets) -> None:
    name = "res2s-float32"
    for function, text, count, _ in RES2S_EDITS:
        _expect_source(name, t, function)
        found = inspect.getsource(t[function]).count(text)
        if found != count:
            raise PatchDriftError(name, f"samplers.{function} has {found} x {text!r}, expected {count}")
    if t["held"] is not t["res2s_audio_video_denoising_loop"]:
        raise PatchDriftError(name, "ti2vid_two_stages_hq no longer imports samplers' res2s loop")


def float32_res2s_loop(t: Targets) -> Callable[..., Any]:
    """1.0.0's res2s loop with its float64 maths in float32: the three functions recompiled from the
    pinned source with the `RES2S_EDITS` substitutions, in a copy of the samplers' globals (so the
    loop's default ``new_noise_fn`` and its ``_inject_sde_noise`` are the float32 ones too)."""
    import torch

    namespace = dict(vars(_mod("ltx_pipelines.utils.samplers")))  # after step-progress: ticking tqdm
    namespace["_HIGH_PRECISION"] = torch.float32
    for function, text, _, new in RES2S_EDITS:
        source = inspect.getsource(t[function]).replace(text, new)
        exec(compile(source, f"<compat res2s-float32: samplers.{function}>", "exec"), namespace)  # noqa: S102
    return namespace["res2s_audio_video_denoising_loop"]


def _apply_res2s(t: Targets) -> None:
    float64_loop, float32_loop = t["held"], float32_res2s_loop(t)

    def res2s_for_device(*args: Any, **kwargs: Any) -> Any:
        run = scope.active()
        loop = float32_loop if run is not None and not run.device.allow_float64 else float64_loop
        return loop(*args, **kwargs)

    _mod("ltx_pipelines.ti2vid_two_stages_hq").res2s_audio_video_denoising_loop = res2s_for_device


# -- mel-on-host ---------------------------------------------------------------------------------
def _mel_targets() -> Targets:
    return {"waveform_to_mel": _mod("ltx_core.model.audio_vae.ops").AudioProcessor.waveform_to_mel}


def _check_mel(t: Targets) -> None:
    name = "mel-on-host"
    _expect_source(name, t, "waveform_to_mel")
    if inspect.getsource(t["waveform_to_mel"]).count("self.mel_transform(waveform)") != 1:
        raise PatchDriftError(name, "waveform_to_mel no longer calls self.mel_transform(waveform) once")


def _apply_mel(t: Targets) -> None:
    from .npu import mel_on_host

    original = t["waveform_to_mel"]

    def waveform_to_mel(self: Any, audio: Any) -> Any:
        run = scope.active()
        if run is None or not run.device.complex_on_cpu:
            return original(self, audio)
        with mel_on_host(self, run.device):
            return original(self, audio)

    _mod("ltx_core.model.audio_vae.ops").AudioProcessor.waveform_to_mel = waveform_to_mel


# Order matters once: res2s-float32 copies the samplers' globals after step-progress replaced tqdm.
PATCHES: tuple[Patch, ...] = (
    Patch("gemma-transformers-5", _gemma_ops_targets, _check_gemma_ops, _apply_gemma_ops),
    Patch("gemma-config-from-root", _gemma_config_targets, _check_gemma_config, _apply_gemma_config),
    Patch("device-sync", _sync_targets, _check_device_sync, _apply_device_sync),
    Patch("step-progress", _progress_targets, _check_progress, _apply_progress),
    Patch("res2s-float32", _res2s_targets, _check_res2s, _apply_res2s),
    Patch("mel-on-host", _mel_targets, _check_mel, _apply_mel),
)
_PRISTINE: dict[str, Targets] = {}
_LOCK = threading.Lock()


def install() -> None:
    """Check every patch against the installed package, then apply them all (once per process)."""
    with _LOCK:
        if _PRISTINE:
            return
        check_versions()
        gathered = {patch.name: patch.targets() for patch in PATCHES}
        for patch in PATCHES:
            patch.check(gathered[patch.name])
        for patch in PATCHES:
            patch.apply(gathered[patch.name])
        _PRISTINE.update(gathered)


def pristine_targets(name: str) -> Targets:
    """What patch `name` replaced (or would replace, before `install`), as the package shipped it."""
    if name in _PRISTINE:
        return dict(_PRISTINE[name])
    return next(p for p in PATCHES if p.name == name).targets()
