"""LoRA files for the pipelines that take them (diffusers' ``load_lora_weights``: LTX-Video, LTX-2, Wan).

Import-safe and torch-free at import: `LoraRef` / `parse_lora` / `check` are used by request
validation; `activate` touches the pipeline.

`activate(pipe, loras)` makes exactly ``loras`` active on a warm pipeline, whatever the previous
request left there. Adapters are never fused: un-fusing subtracts the delta again in floating
point and does not give back the base weights bit for bit, so a fused LoRA would leak into the
next request. Instead each file is loaded as a peft adapter named after the file's identity
(resolved path, size, mtime), selected with ``set_adapters`` at its scale, and

- a request with no LoRAs calls ``unload_lora_weights()``: the peft layers are removed and the
  modules are the loaded checkpoint's again, so the output equals the no-LoRA baseline exactly;
- adapters a request does not name are deleted (``delete_adapters``), unless the caller asks to
  ``keep`` them (the LTX-2 stage-2 distilled LoRA between the two stages of one run): a kept
  adapter is only deactivated, and peft's layers then return ``base_layer(x)`` unchanged.

Unfused adapters cost one extra low-rank matmul per adapted linear layer per step.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2v.request import InvalidRequestError

SUFFIX = ".safetensors"
MAX_ABS_SCALE = 10.0


# Denoisers a LoRA can go into: the pipeline's main one, or Wan 2.2 A14B's low-noise expert (diffusers'
# `load_lora_weights(..., load_into_transformer_2=True)`).
TARGETS = ("transformer", "transformer_2")


@dataclass(frozen=True)
class LoraRef:
    """One LoRA file, the scale it is applied at, and the denoiser it goes into."""

    path: str
    scale: float = 1.0
    target: str = "transformer"

    def __str__(self) -> str:
        text = f"{self.path}:{self.scale:g}"
        return text if self.target == "transformer" else f"{text} ({self.target})"


def parse_lora(text: str) -> LoraRef:
    """``"style.safetensors"`` -> scale 1.0; ``"style.safetensors:0.8"`` -> scale 0.8.

    Only a suffix that parses as a number is a scale, so paths with colons stay whole.
    """
    path, sep, tail = str(text).rpartition(":")
    if sep and path:
        try:
            return LoraRef(path, float(tail))
        except ValueError:
            pass
    return LoraRef(str(text), 1.0)


def coerce(value: Any) -> LoraRef:
    """A `LoraRef` from ``"PATH[:SCALE]"``, ``{"path": ..., "scale": ...}``, ``(path, scale)`` or a `LoraRef`."""
    if isinstance(value, LoraRef):
        return value
    if isinstance(value, (str, os.PathLike)):
        return parse_lora(os.fspath(value))
    if isinstance(value, dict):
        return LoraRef(str(value["path"]), value.get("scale", 1.0), str(value.get("target", "transformer")))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return LoraRef(str(value[0]), value[1])
    raise TypeError(f"a LoRA is 'PATH[:SCALE]' or {{'path': ..., 'scale': ...}}, got {value!r}")


def check(ref: LoraRef) -> str | None:
    """Why ``ref`` cannot be used, or None (torch-free: suffix, file, scale)."""
    if not ref.path.endswith(SUFFIX):
        return f"LoRA files must be {SUFFIX} (pickled .bin/.pt/.ckpt files are not loaded)"
    if not Path(ref.path).is_file():
        return "no such file"
    if ref.target not in TARGETS:
        return f"the target must be one of {', '.join(TARGETS)}"
    scale = ref.scale
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float))
        or not math.isfinite(scale)
        or abs(scale) > MAX_ABS_SCALE
    ):
        return f"the scale must be a number in -{MAX_ABS_SCALE:g}..{MAX_ABS_SCALE:g}"
    return None


def takes_lora(pipe: Any) -> bool:
    return callable(getattr(pipe, "load_lora_weights", None))


def adapter_name(ref: LoraRef) -> str:
    """A stable adapter name for the file's current contents and its target (a rewritten file gets a new
    name; the same file in both of A14B's experts gets two)."""
    path = Path(ref.path).resolve()
    stat = path.stat()
    digest = hashlib.sha1(f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{ref.target}".encode()).hexdigest()[:12]
    return f"i2v_{digest}"


def loaded_adapters(pipe: Any) -> set[str]:
    """Adapter names present on any of the pipeline's LoRA-loadable components."""
    if not takes_lora(pipe):
        return set()
    names: set[str] = set()
    for component in getattr(pipe, "_lora_loadable_modules", ()):
        model = getattr(pipe, component, None)
        config = getattr(model, "peft_config", None)
        if config:
            names.update(config)
    return names


class LoraLoadError(InvalidRequestError):
    """A LoRA the pipeline cannot take: no LoRA support, a duplicate, or a file that does not fit it."""

    def __init__(self, path: str, rule: str):
        super().__init__("lora", path, rule)


def activate(pipe: Any, loras: Sequence[LoraRef], keep: Iterable[LoraRef] = ()) -> list[str]:
    """Make exactly ``loras`` active at their scales; returns the active adapter names.

    Loaded adapters that are neither requested nor in ``keep`` are deleted; with nothing requested
    or kept, all LoRA layers are unloaded. Raises `LoraLoadError` for a pipeline without LoRA
    support or a file that does not fit it (and then leaves no LoRA loaded).
    """
    loras = list(loras)
    if not takes_lora(pipe):
        if loras:
            raise LoraLoadError(
                loras[0].path, f"{type(pipe).__name__} takes no LoRAs (it has no load_lora_weights)"
            )
        return []
    import torch

    # The engine runs under inference_mode; adapter weights made there would be inference tensors
    # that later in-place module surgery (delete, unload) cannot touch.
    with torch.inference_mode(False), warnings.catch_warnings():
        # peft's notes on adding a second adapter / deleting the active one: expected here.
        warnings.filterwarnings("ignore", message=r"Already found a `peft_config`", category=UserWarning)
        warnings.filterwarnings(
            "ignore", message=r"Adapter .* was active which is now deleted", category=UserWarning
        )
        return _activate(pipe, loras, keep)


def _activate(pipe: Any, loras: list[LoraRef], keep: Iterable[LoraRef]) -> list[str]:
    wanted: dict[str, LoraRef] = {}
    for ref in loras:
        name = adapter_name(ref)
        if name in wanted:
            raise LoraLoadError(ref.path, "given twice; give it once with the scale you want")
        wanted[name] = ref
    kept = {adapter_name(ref) for ref in keep}
    loaded = loaded_adapters(pipe)
    if not wanted and not (loaded & kept):
        if loaded:
            pipe.unload_lora_weights()
        return []
    stale = sorted(loaded - set(wanted) - kept)
    if stale:
        pipe.delete_adapters(stale)
    for name, ref in wanted.items():
        if name not in loaded:
            # Wan 2.2 A14B's low-noise expert: diffusers' WanLoraLoaderMixin loads into transformer_2.
            into = {"load_into_transformer_2": True} if ref.target == "transformer_2" else {}
            try:
                pipe.load_lora_weights(ref.path, adapter_name=name, **into)
            except Exception as exc:  # noqa: BLE001 - re-raised with the file named
                pipe.unload_lora_weights()
                detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
                raise LoraLoadError(
                    ref.path, f"could not be loaded into {type(pipe).__name__}: {detail[:400]}"
                ) from exc
    if wanted:
        pipe.enable_lora()
        pipe.set_adapters(list(wanted), [float(ref.scale) for ref in wanted.values()])
    else:
        pipe.disable_lora()
    return list(wanted)


__all__ = [
    "TARGETS",
    "LoraLoadError",
    "LoraRef",
    "activate",
    "adapter_name",
    "check",
    "coerce",
    "loaded_adapters",
    "parse_lora",
    "takes_lora",
]
