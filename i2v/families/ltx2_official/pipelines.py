"""`WarmComponents`: one model set on one device, with its pipeline objects and warm models.

The ltx_pipelines classes are built here, one per (mode, LoRAs), with explicit arguments: the
device is always passed (1.0.0's default is ``get_device()``, CUDA or CPU only), and user LoRAs
and the distilled LoRA go in as ``LoraPathStrengthAndSDOps`` with the package's ComfyUI key map,
as its CLI's ``LoraAction`` builds them. After construction their ModelLedgers are swapped for
`components.WarmLedger` (see components.py), so the models are built on first use and kept.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import torch
from ltx_core.loader import LTXV_LORA_COMFY_RENAMING_MAP, LoraPathStrengthAndSDOps

from i2v.lora import LoraRef

from . import compat
from .components import ComponentCache, LoadStats, WarmPolicy, adopt_ledgers
from .modes import HQ_LORA_SCALE_STAGE_1, HQ_LORA_SCALE_STAGE_2, ModeName, get
from .npu import Quantization
from .weights import ModelFiles


def _lora(path: str, strength: float) -> LoraPathStrengthAndSDOps:
    return LoraPathStrengthAndSDOps(str(path), float(strength), LTXV_LORA_COMFY_RENAMING_MAP)


@dataclass(frozen=True)
class PipelineKey:
    mode: ModeName
    loras: tuple[LoraRef, ...]
    distilled_lora_scale: float | None = None  # None: the mode's (0.8 for two-stage)
    quantization: Quantization | None = None


def quantization_policy(name: Quantization | None) -> Any:
    """1.0.0's ``QuantizationPolicy`` for a name (what its CLI's ``QuantizationAction`` builds)."""
    if name is None:
        return None
    from ltx_core.quantization import QuantizationPolicy

    return QuantizationPolicy.fp8_cast() if name == "fp8-cast" else QuantizationPolicy.fp8_scaled_mm()


def build_pipeline(key: PipelineKey, files: ModelFiles, device: torch.device) -> Any:
    """The 1.0.0 pipeline object of `key.mode`, constructed as its CLI ``main()`` does."""
    files.require(key.mode)
    spec = get(key.mode)
    cls = getattr(import_module(f"ltx_pipelines.{spec.module}"), spec.cls)
    loras = [_lora(ref.path, ref.scale) for ref in key.loras]
    quant = quantization_policy(key.quantization)
    gemma, up = str(files.gemma_root), str(files.upsampler_x2)
    dev, distilled = str(files.dev), str(files.distilled)
    if key.mode in ("two-stage", "keyframes", "audio-to-video"):
        scale = (
            spec.stages[1].distilled_lora_scale
            if key.distilled_lora_scale is None
            else key.distilled_lora_scale
        )
        return cls(
            checkpoint_path=dev,
            distilled_lora=[_lora(str(files.distilled_lora), scale)],
            spatial_upsampler_path=up,
            gemma_root=gemma,
            loras=loras,
            device=device,
            quantization=quant,
        )
    if key.mode == "two-stage-hq":
        return cls(
            checkpoint_path=dev,
            distilled_lora=[_lora(str(files.distilled_lora), 1.0)],
            distilled_lora_strength_stage_1=HQ_LORA_SCALE_STAGE_1,
            distilled_lora_strength_stage_2=HQ_LORA_SCALE_STAGE_2,
            spatial_upsampler_path=up,
            gemma_root=gemma,
            loras=tuple(loras),
            device=device,
            quantization=quant,
        )
    if key.mode in ("one-stage", "retake"):
        return cls(checkpoint_path=dev, gemma_root=gemma, loras=loras, device=device, quantization=quant)
    if key.mode == "distilled":
        return cls(
            distilled_checkpoint_path=distilled,
            gemma_root=gemma,
            spatial_upsampler_path=up,
            loras=loras,
            device=device,
            quantization=quant,
        )
    if key.mode == "ic-lora":
        return cls(
            distilled_checkpoint_path=distilled,
            spatial_upsampler_path=up,
            gemma_root=gemma,
            loras=loras,
            device=device,
            quantization=quant,
        )
    raise AssertionError(f"no constructor for mode {key.mode!r}")


class WarmComponents:
    """Everything one worker keeps warm for one model set on one device.

    `device` is the i2v Device (policy, synchronize, empty_cache); `torch_device` the torch device
    the models live on (``device.torch_device()`` unless a test computes elsewhere). Runs take
    `lock`; `runner.run` does.
    """

    def __init__(
        self,
        files: ModelFiles,
        device: Any,
        torch_device: torch.device | None = None,
        policy: WarmPolicy | None = None,
    ) -> None:
        compat.install()
        self.files = files
        self.device = device
        self.torch_device = torch_device if torch_device is not None else device.torch_device()
        self.cache = ComponentCache(device, self.torch_device, policy or WarmPolicy())
        self.lock = threading.Lock()
        self._pipelines: dict[PipelineKey, Any] = {}

    @property
    def stats(self) -> LoadStats:
        return self.cache.stats

    def pipeline(
        self,
        mode: ModeName,
        loras: tuple[LoraRef, ...] = (),
        distilled_lora_scale: float | None = None,
        quantization: Quantization | None = None,
    ) -> Any:
        """The warm pipeline object for `mode` with `loras` (built, and its ledgers adopted, once).
        `quantization` must have passed `npu.check_quantization` (FP8 is CUDA-only)."""
        key = PipelineKey(mode, tuple(loras), distilled_lora_scale, quantization)
        pipe = self._pipelines.get(key)
        if pipe is None:
            pipe = build_pipeline(key, self.files, self.torch_device)
            adopt_ledgers(pipe, self.cache)
            self._pipelines[key] = pipe
        return pipe

    def park(self) -> None:
        self.cache.park()

    def clear(self) -> None:
        """Drop every warm model and pipeline (the next run reads the weights again)."""
        self._pipelines.clear()
        self.cache.clear()
        self.device.empty_cache()
