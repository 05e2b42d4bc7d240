"""Warm components: the models ltx-pipelines builds, kept between requests in one process.

ltx-pipelines 1.0.0 rebuilds every model from disk on every call (``utils/model_ledger.py``: "Models
are **not cached**"), which at full size is ~44 GB of checkpoint plus ~24 GB of Gemma read per
request. `WarmComponents` keeps what it builds:

- Each pipeline object is built once per (mode, LoRAs) and its ``ModelLedger`` attributes are
  replaced by `WarmLedger`, a ModelLedger subclass whose model methods ask a shared
  `ComponentCache` first. The pipeline's own code runs unchanged; it just gets the same module
  object back on the second request. Keys are what a model is built from: kind, files, fused LoRAs
  (path, strength), quantization. So the stage-2 transformer with the distilled LoRA fused at 0.8
  is its own entry, and the Gemma encoder is shared by the dev and distilled checkpoints.
- Every builder reads through a `CountingLoader` (the package's safetensors loader, counted), so
  `LoadStats` says how many models were built and how many bytes of weights were read.
- Residency (`WarmPolicy`): "device" keeps a model on the compute device between requests;
  "host" (for the big ones only: Gemma, the text projection, the transformers) keeps it in host
  RAM and moves it to the device when a pipeline asks for it, moving the previous big model back. That relies on
  what every 1.0.0 pipeline does: it drops its text encoder before asking for a transformer and
  its stage-1 transformer before asking for the stage-2 one (the peak-memory design they document).
  Byte budgets drop the least recently used entries when the warm set outgrows them.

Weights the builder cannot find are an error here (`MissingWeightsError`), not 1.0.0's silent
meta-device model with a log warning.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from ltx_core.loader.sft_loader import SafetensorsModelStateDictLoader
from ltx_pipelines.utils.model_ledger import ModelLedger

from . import compat
from .weights import MissingWeightsError

ComponentKind = Literal[
    "transformer",
    "video_encoder",
    "video_decoder",
    "audio_encoder",
    "audio_decoder",
    "vocoder",
    "text_encoder",
    "embeddings_processor",
    "upsampler",
]
Residency = Literal["device", "host"]
# The big models, each alive in its own phase only (phases.py): Gemma, the text projection and
# connectors (3.2B), the transformers.
HOST_CAPABLE: frozenset[ComponentKind] = frozenset({"transformer", "text_encoder", "embeddings_processor"})
# ModelLedger attribute holding each kind's builder (model_ledger.py build_model_builders).
_BUILDERS: dict[ComponentKind, str] = {
    "transformer": "transformer_builder",
    "video_encoder": "vae_encoder_builder",
    "video_decoder": "vae_decoder_builder",
    "audio_encoder": "audio_encoder_builder",
    "audio_decoder": "audio_decoder_builder",
    "vocoder": "vocoder_builder",
    "text_encoder": "text_encoder_builder",
    "embeddings_processor": "embeddings_processor_builder",
    "upsampler": "upsampler_builder",
}


@dataclass(frozen=True)
class WarmPolicy:
    """Where warm models wait between requests, and how much they may take (None: no limit)."""

    text: Residency = "device"  # Gemma and the text projection / connectors
    transformer: Residency = "device"
    device_budget_bytes: int | None = None
    host_budget_bytes: int | None = None

    def residency(self, kind: ComponentKind) -> Residency:
        if kind in ("text_encoder", "embeddings_processor"):
            return self.text
        return self.transformer if kind == "transformer" else "device"


@dataclass(frozen=True)
class ComponentKey:
    kind: ComponentKind
    source: tuple[str, ...]  # the files it is built from
    loras: tuple[tuple[str, float], ...] = ()  # fused LoRAs: (path, strength)
    quantization: str | None = None


@dataclass
class LoadStats:
    """Counters since the components were created (`snapshot()` for a frozen copy)."""

    builds: Counter = field(default_factory=Counter)  # kind -> models built (cache misses)
    hits: Counter = field(default_factory=Counter)  # kind -> served warm
    state_dict_loads: int = 0
    bytes_read: int = 0  # tensor bytes read from safetensors files
    load_seconds: float = 0.0  # wall time inside model builds

    def snapshot(self) -> LoadStats:
        return LoadStats(
            Counter(self.builds),
            Counter(self.hits),
            self.state_dict_loads,
            self.bytes_read,
            self.load_seconds,
        )


class CountingLoader:
    """The package's ``SafetensorsModelStateDictLoader`` (``StateDictLoader`` protocol), counted."""

    def __init__(self, stats: LoadStats) -> None:
        self._inner = SafetensorsModelStateDictLoader()
        self._stats = stats

    def metadata(self, path: str) -> dict:
        return self._inner.metadata(path)

    def load(self, path: str | list[str], sd_ops: Any = None, device: torch.device | None = None) -> Any:
        state_dict = self._inner.load(path, sd_ops, device)
        self._stats.state_dict_loads += 1
        self._stats.bytes_read += state_dict.size
        return state_dict


@dataclass
class _Entry:
    module: torch.nn.Module
    residency: Residency
    nbytes: int
    on_device: bool = True


def module_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


class ComponentCache:
    """Built models by `ComponentKey`, placed by a `WarmPolicy`. Not thread-safe: one run at a time
    (`WarmComponents.lock`)."""

    def __init__(self, device: Any, torch_device: torch.device, policy: WarmPolicy) -> None:
        self.device, self.torch_device, self.policy = device, torch_device, policy
        self.stats = LoadStats()
        self.loader = CountingLoader(self.stats)
        self._entries: OrderedDict[ComponentKey, _Entry] = OrderedDict()

    def get(self, key: ComponentKey, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
        entry = self._entries.get(key)
        if entry is None:
            if self.policy.residency(key.kind) == "host":
                self._park_big(keep=None)  # room on the device before it is built there
            start = time.perf_counter()
            module = build()
            self.stats.load_seconds += time.perf_counter() - start
            self.stats.builds[key.kind] += 1
            _require_materialized(module, key)
            entry = _Entry(module, self.policy.residency(key.kind), module_bytes(module))
            self._entries[key] = entry
            self._enforce_budgets(keep=key)
        else:
            self.stats.hits[key.kind] += 1
            self._entries.move_to_end(key)
            if entry.residency == "host" and not entry.on_device:
                self._park_big(keep=key)
                entry.module.to(self.torch_device)
                entry.on_device = True
        return entry.module

    def _park_big(self, keep: ComponentKey | None) -> None:
        """Move host-resident models off the device (the pipeline has dropped them; see module doc)."""
        moved = False
        for key, entry in self._entries.items():
            if key != keep and entry.residency == "host" and entry.on_device:
                entry.module.to("cpu")
                entry.on_device = False
                moved = True
        if moved:
            self.device.empty_cache()

    def park(self) -> None:
        """End of a run: every host-resident model back to host RAM."""
        self._park_big(keep=None)

    def _enforce_budgets(self, keep: ComponentKey) -> None:
        for residency, budget in (
            ("device", self.policy.device_budget_bytes),
            ("host", self.policy.host_budget_bytes),
        ):
            while budget is not None:
                entries = [(k, e) for k, e in self._entries.items() if e.residency == residency and k != keep]
                if (
                    sum(e.nbytes for _, e in entries)
                    + self._entries[keep].nbytes * (self._entries[keep].residency == residency)
                    <= budget
                    or not entries
                ):
                    break
                del self._entries[entries[0][0]]  # least recently used first

    def resident(self) -> list[tuple[ComponentKey, Residency, bool, int]]:
        """(key, residency, on the device now, bytes) per warm model, least recently used first."""
        return [(k, e.residency, e.on_device, e.nbytes) for k, e in self._entries.items()]

    def clear(self) -> None:
        self._entries.clear()


def _require_materialized(module: torch.nn.Module, key: ComponentKey) -> None:
    missing = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.device.type == "meta"]
    if missing:
        raise MissingWeightsError(
            f"{key.kind} from {', '.join(key.source)}: {len(missing)} tensors are not in the file(s), e.g. "
            f"{', '.join(missing[:3])} (ltx-core would return a meta-device model and only log a warning)"
        )


class WarmLedger(ModelLedger):
    """A ``ModelLedger`` whose models come from a `ComponentCache` (built on a miss by the base class)."""

    def __init__(
        self,
        cache: ComponentCache,
        *,
        dtype: torch.dtype,
        device: torch.device,
        checkpoint_path: str | None,
        gemma_root_path: str | None,
        spatial_upsampler_path: str | None,
        loras: tuple,
        quantization: Any,
    ) -> None:
        self._cache = cache  # before super().__init__, which calls build_model_builders
        super().__init__(
            dtype=dtype,
            device=device,
            checkpoint_path=checkpoint_path,
            gemma_root_path=gemma_root_path,
            spatial_upsampler_path=spatial_upsampler_path,
            loras=tuple(loras),
            quantization=quantization,
        )

    @classmethod
    def adopt(cls, ledger: ModelLedger, cache: ComponentCache) -> WarmLedger:
        return cls(
            cache,
            dtype=ledger.dtype,
            device=ledger.device,
            checkpoint_path=ledger.checkpoint_path,
            gemma_root_path=ledger.gemma_root_path,
            spatial_upsampler_path=ledger.spatial_upsampler_path,
            loras=ledger.loras,
            quantization=ledger.quantization,
        )

    def build_model_builders(self) -> None:
        super().build_model_builders()
        for attr in _BUILDERS.values():
            if hasattr(self, attr):
                setattr(self, attr, replace(getattr(self, attr), model_loader=self._cache.loader))

    def with_loras(self, loras: tuple) -> WarmLedger:
        return WarmLedger(
            self._cache,
            dtype=self.dtype,
            device=self.device,
            checkpoint_path=self.checkpoint_path,
            gemma_root_path=self.gemma_root_path,
            spatial_upsampler_path=self.spatial_upsampler_path,
            loras=loras,
            quantization=self.quantization,
        )

    def _key(self, kind: ComponentKind, *source: str | None, fused: bool = False) -> ComponentKey:
        loras = tuple((str(Path(x.path).resolve()), float(x.strength)) for x in self.loras) if fused else ()
        quant = None
        if fused and self.quantization is not None:  # fp8-cast and fp8-scaled-mm differ in their ops
            ops = [
                getattr(self.quantization.sd_ops, "name", ""),
                *(m.name for m in self.quantization.module_ops),
            ]
            quant = "+".join(ops)
        return ComponentKey(kind, tuple(str(Path(s).resolve()) for s in source if s), loras, quant)

    def _get(self, kind: ComponentKind, key: ComponentKey, build: Callable[[], Any]) -> Any:
        if not hasattr(self, _BUILDERS[kind]):
            return build()  # the base class raises its own "not initialized" ValueError
        return self._cache.get(key, build)

    def transformer(self) -> Any:
        return self._get(
            "transformer", self._key("transformer", self.checkpoint_path, fused=True), super().transformer
        )

    def video_encoder(self) -> Any:
        return self._get(
            "video_encoder", self._key("video_encoder", self.checkpoint_path), super().video_encoder
        )

    def video_decoder(self) -> Any:
        return self._get(
            "video_decoder", self._key("video_decoder", self.checkpoint_path), super().video_decoder
        )

    def audio_encoder(self) -> Any:
        return self._get(
            "audio_encoder", self._key("audio_encoder", self.checkpoint_path), super().audio_encoder
        )

    def audio_decoder(self) -> Any:
        return self._get(
            "audio_decoder", self._key("audio_decoder", self.checkpoint_path), super().audio_decoder
        )

    def vocoder(self) -> Any:
        return self._get("vocoder", self._key("vocoder", self.checkpoint_path), super().vocoder)

    def spatial_upsampler(self) -> Any:
        return self._get(
            "upsampler", self._key("upsampler", self.spatial_upsampler_path), super().spatial_upsampler
        )

    def text_encoder(self) -> Any:
        def build() -> Any:
            with compat.gemma_config_for(self.gemma_root_path):
                return ModelLedger.text_encoder(self)

        return self._get("text_encoder", self._key("text_encoder", self.gemma_root_path), build)

    def gemma_embeddings_processor(self) -> Any:
        # Its feature extractor's input width is Gemma's hidden size x (layers + 1).
        def build() -> Any:
            with compat.gemma_config_for(self.gemma_root_path):
                return ModelLedger.gemma_embeddings_processor(self)

        key = self._key("embeddings_processor", self.checkpoint_path, self.gemma_root_path)
        return self._get("embeddings_processor", key, build)


def adopt_ledgers(pipeline: Any, cache: ComponentCache) -> tuple[str, ...]:
    """Replace every ``ModelLedger`` attribute of a freshly built pipeline by a `WarmLedger`."""
    names = tuple(name for name, value in vars(pipeline).items() if type(value) is ModelLedger)
    if not names:
        raise compat.PatchDriftError(
            "warm-ledgers", f"{type(pipeline).__name__} holds no ModelLedger attribute"
        )
    for name in names:
        setattr(pipeline, name, WarmLedger.adopt(getattr(pipeline, name), cache))
    return names


__all__ = [
    "HOST_CAPABLE",
    "ComponentCache",
    "ComponentKey",
    "ComponentKind",
    "CountingLoader",
    "LoadStats",
    "Residency",
    "WarmLedger",
    "WarmPolicy",
    "adopt_ledgers",
    "module_bytes",
]
