"""Plan how a request runs on a device, or refuse with what would fit. Pure and torch-free.

(spec, request, device budget) -> `Plan`. A request runs in phases (text encode, conditioning,
denoise, decode; `FamilyAdapter.phases` lists them, by default from the catalogue's fitted
coefficients, `i2v.memory`), and its peak is the largest phase peak: the weights that phase needs on
the device under the rung's strategy, plus the phase's activations, times the device factor the
catalogue keeps for what fake tensors cannot see, plus overhead.

The ladder goes from fastest to leanest, each rung only with the levers the family's pipeline has
(`spec.adapter.levers`):

    resident -> + VAE tiling -> + forward chunking -> + FP8 weights
             -> model offload -> + FP8 weights -> group offload (block streaming) -> sequential offload

FP8 weight storage (diffusers' layerwise casting) is lossy: only on CUDA (torch_npu has no float8
storage) and where the preset allows it (fast, standard; never hq). Within a rung the largest VAE
decode chunk that fits (up to what pays off) is taken. The first rung whose predicted peak fits
`headroom x free memory` wins. A request that fits nowhere raises `PlanRefusedError` listing smaller
requests that would fit.

One job over several cards (`layout`, i2v.parallel): every card holds all the weights (context
parallelism splits the sequence, not the model) and its share of the denoising phases' activations:
the latent tokens over the context-parallel degree, and one of the two CFG passes under CFG parallel.
Each card encodes and decodes the whole video. Such a job runs all-resident, with no cache hooks (a
cache that skips a step on one card and not another would leave the others waiting in a collective)
and no compile.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from i2v.catalogue.spec import ModelSpec
from i2v.memory.model import PhaseEstimate
from i2v.memory.phases import DTYPE_BYTES, PhaseSetting
from i2v.parallel.layout import Layout
from i2v.request import GenerationRequest, resolve

MIB = 1024 * 1024
DType = Literal["float16", "bfloat16", "float32"]
Strategy = Literal["resident", "model-offload", "group-offload", "sequential-offload"]
STRATEGIES: tuple[str, ...] = ("resident", "model-offload", "group-offload", "sequential-offload")
DTYPES: tuple[str, ...] = ("auto", *DTYPE_BYTES)

# Relative step time of each strategy against all-resident (estimates until `i2v bench` measures them).
SLOWDOWN = {"resident": 1.0, "model-offload": 1.1, "group-offload": 1.4, "sequential-offload": 6.0}
FP8_SLOWDOWN = 1.05  # one upcast per layer per forward (estimate)
CHUNKING_SLOWDOWN = 1.05  # a few more, smaller matmuls per block (estimate)
# Decoding more frames at once than this buys nothing (H100: 16 at once = 1 at a time, 12.0 vs 12.1 s).
DECODE_CHUNK_CAP = 8
# FirstBlockCache skips blocks when consecutive steps barely differ: with a handful of steps there is
# nothing to skip (every step is far from the last), so cache hooks are left off below this many.
MIN_CACHE_STEPS = 8
# Weight kinds kept whole on the device by group offload (VAEs decode whole frames).
_WHOLE_KINDS = ("vae", "audio_vae", "vocoder")


@dataclass(frozen=True)
class DeviceBudget:
    """What the planner knows about the device: torch-free, built from a probe or a live query.

    ``attention_backends``: diffusers attention backends installed beyond torch's own (``sage``,
    ``flash``, ``_flash_3``); empty when unknown (a host probe), and then diffusers' default is kept."""

    kind: Literal["cuda", "npu", "cpu"]
    name: str
    total_mib: int
    free_mib: int
    host_ram_mib: int
    compute_capability: str | None = None
    chip: str | None = None
    attention_backends: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> DeviceBudget | None:
        """The budget a worker row holds (`to_json`); None when the row has none or it is not one."""
        try:
            fields = json.loads(text or "")
            fields["attention_backends"] = tuple(fields.get("attention_backends", ()))
            return cls(**fields)
        except (TypeError, ValueError):
            return None

    @property
    def supports_bf16(self) -> bool:
        if self.kind == "cuda":
            try:
                return float(self.compute_capability or "0") >= 8.0
            except ValueError:
                return False
        if self.kind == "npu":
            return not (self.chip or self.name).upper().replace("ASCEND", "").strip().startswith("310")
        return True

    def auto_dtype(self, preferred: str) -> DType:
        """bf16 where supported (fp16 for models shipped and tuned in fp16), fp16 on pre-Ampere GPUs
        and 310P, fp32 on CPU."""
        if self.kind == "cpu":
            return "float32"
        if preferred == "float16" or not self.supports_bf16:
            return "float16"
        return "bfloat16"


@dataclass(frozen=True)
class PhasePeak:
    """One phase's predicted peak and what it is made of (MiB)."""

    name: str
    peak_mib: int
    weights_mib: int
    activations_mib: int
    device_factor: float = 1.0


@dataclass(frozen=True)
class Plan:
    model: str
    device: str
    dtype: DType
    strategy: Strategy
    placement: dict[str, str]  # component -> "device" | "cpu->device on use" | "streamed" | ...
    vae_tiling: bool
    decode_chunk: int
    forward_chunking: bool
    cache: str | None
    compile: Literal["none", "regional", "whole"]
    predicted_peak_mib: int
    budget_mib: int
    weights_mib: int
    relative_time: float
    notes: tuple[str, ...] = field(default=())
    fp8_weights: bool = False
    attention: str | None = None  # diffusers attention backend for the denoisers (None: its default)
    denoiser_calls: int = 0  # denoiser forwards per video (steps x guidance passes)
    phases: tuple[PhasePeak, ...] = ()
    cards: int = 1
    layout: str = "1 card"  # Layout.describe() of the cards one job runs on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        levers = [self.dtype, self.strategy]
        if self.decode_chunk:
            levers.append(f"decode {self.decode_chunk} frame(s) at a time")
        if self.fp8_weights:
            levers.append("FP8 weights")
        if self.vae_tiling:
            levers.append("VAE tiling")
        if self.forward_chunking:
            levers.append("forward chunking")
        if self.cache:
            levers.append(f"cache {self.cache}")
        if self.compile != "none":
            levers.append(f"compile {self.compile}")
        if self.attention:
            levers.append(f"attention {self.attention}")
        if self.denoiser_calls:
            levers.append(f"{self.denoiser_calls} denoiser calls")
        if self.cards > 1:
            levers.append(self.layout)
        phases = ", ".join(f"{p.name} {p.peak_mib / 1024:.1f}" for p in self.phases)
        per = " a card" if self.cards > 1 else ""
        return (
            f"{self.model} on {self.device}: "
            + ", ".join(levers)
            + f"; predicted peak{per} {self.predicted_peak_mib / 1024:.1f} GiB of {self.budget_mib / 1024:.1f} GiB"
            + (f" (GiB per phase: {phases})" if phases else "")
        )


class PlanRefusedError(Exception):
    """The request cannot fit this device under any strategy."""

    def __init__(self, message: str, suggestions: list[str]):
        self.suggestions = suggestions
        text = message
        if suggestions:
            text += "; what would fit: " + "; ".join(suggestions)
        super().__init__(text)


# --- the memory model -------------------------------------------------------------------------------


def latent_tokens(spec: ModelSpec, request: GenerationRequest) -> int:
    spatial, temporal, patch = spec.latent
    frames = (request.frames - 1) // temporal + 1 if temporal > 1 else request.frames
    return frames * (request.height // spatial // patch) * (request.width // spatial // patch)


def weights_mib(spec: ModelSpec, dtype: str, fp8: bool = False) -> dict[str, float]:
    """Each weighted component's MiB in ``dtype``; with ``fp8`` the denoisers as float8 layerwise casting
    stores them (measured: `PhaseFits.fp8_weights_mib`; one byte a parameter where not measured)."""
    per = DTYPE_BYTES[dtype] / MIB
    weights = {name: params * per for name, params in spec.weights_params().items()}
    if fp8:
        for component in spec.architecture.components:
            if component.kind == "denoiser" and component.name in weights:
                weights[component.name] = spec.memory.fp8_weights_mib.get(
                    component.name, component.params / MIB
                )
    return weights


def _blocks(spec: ModelSpec, name: str) -> int:
    """How many groups block-level offload streams a component in (its repeated layers)."""
    component = spec.architecture.component(name)
    if component.kind == "denoiser":
        return max(spec.denoiser_blocks, 1)
    config = component.config
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    return max(
        int(
            config.get("num_layers") or config.get("num_hidden_layers") or text.get("num_hidden_layers") or 1
        ),
        1,
    )


def phase_weights_mib(
    spec: ModelSpec, phase: PhaseEstimate, weights: dict[str, float], strategy: str
) -> float:
    """The weights on the device while ``phase`` runs under ``strategy``."""
    if strategy == "resident":
        return sum(weights.values()) + phase.weights_extra_mib
    kinds = {c.name: c.kind for c in spec.architecture.components}
    present = [n for n in phase.components if n in weights]
    if not present:
        return phase.weights_extra_mib
    if strategy == "model-offload":
        # accelerate's hooks: one model on the device at a time, the one running
        return max(weights[n] for n in present) + phase.weights_extra_mib
    if strategy == "group-offload":
        # block-level groups: the group computing plus the one being prefetched on the side stream
        held = [
            weights[n] if kinds[n] in _WHOLE_KINDS else weights[n] * min(1.0, 2 / _blocks(spec, n))
            for n in present
        ]
        return max(held) + phase.weights_extra_mib
    held = [weights[n] if kinds[n] in _WHOLE_KINDS else 0.03 * weights[n] for n in present]
    return max(held) + phase.weights_extra_mib  # sequential: one leaf module at a time


@dataclass(frozen=True)
class _Rung:
    strategy: str
    vae_tiling: bool = False
    forward_chunking: bool = False
    fp8: bool = False


def phase_peaks(
    spec: ModelSpec,
    request: GenerationRequest,
    dtype: str,
    strategy: str,
    *,
    decode_chunk: int,
    vae_tiling: bool = False,
    forward_chunking: bool = False,
    fp8: bool = False,
    device_factors: bool = True,
    layout: Layout | None = None,
) -> tuple[PhasePeak, ...]:
    """Each phase's predicted peak (MiB) on one rung (one card's, over `layout`). ``device_factors=False``
    leaves out what only a real accelerator adds: the fake-tensor figure, which `i2v plan --measure` and
    the tests compare."""
    setting = PhaseSetting(dtype, decode_chunk, vae_tiling, forward_chunking, fp8)
    weights = weights_mib(spec, dtype, fp8)
    overhead = spec.memory.overhead_mib
    share = layout.context * layout.cfg if layout is not None else 1
    peaks = []
    for phase in spec.adapter.phases(spec, request, setting):
        resident = spec.adapter.phase_weights_mib(spec, request, phase, weights, strategy)
        factor = phase.device_factor if device_factors else 1.0
        activations = (
            phase.activations_mib / share if phase.name.startswith("denoise") else phase.activations_mib
        )
        peak = (resident + activations) * factor + overhead
        peaks.append(PhasePeak(phase.name, int(peak), int(resident), int(activations), factor))
    return tuple(peaks)


def predict_peak_mib(
    spec: ModelSpec,
    request: GenerationRequest,
    dtype: str,
    strategy: str,
    *,
    decode_chunk: int,
    vae_tiling: bool = False,
    forward_chunking: bool = False,
    fp8: bool = False,
    device_factors: bool = True,
    layout: Layout | None = None,
) -> float:
    """The request's predicted device peak (one card's, over `layout`): its largest phase."""
    peaks = phase_peaks(
        spec,
        request,
        dtype,
        strategy,
        decode_chunk=decode_chunk,
        vae_tiling=vae_tiling,
        forward_chunking=forward_chunking,
        fp8=fp8,
        device_factors=device_factors,
        layout=layout,
    )
    return float(max(p.peak_mib for p in peaks))


# --- the ladder -------------------------------------------------------------------------------------


def fp8_allowed(spec: ModelSpec, request: GenerationRequest, budget: DeviceBudget, dtype: str) -> bool:
    """FP8 weight storage: the family's denoiser takes layerwise casting, the preset allows lossy weights,
    on CUDA only (torch_npu 2.8-2.10 has no float8 storage dtype), computing in bf16/fp16."""
    return (
        spec.adapter.levers.fp8_weights
        and spec.running_preset(request).fp8_weights
        and budget.kind == "cuda"
        and dtype != "float32"
    )


def _rungs(spec: ModelSpec, strategy: str, fp8: bool) -> list[_Rung]:
    levers = spec.adapter.levers
    tiling, chunking = levers.vae_tiling, levers.forward_chunking
    rungs = [_Rung("resident")]
    if tiling:
        rungs.append(_Rung("resident", vae_tiling=True))
    if chunking:
        rungs.append(_Rung("resident", vae_tiling=tiling, forward_chunking=True))
    if fp8:
        rungs.append(_Rung("resident", vae_tiling=tiling, forward_chunking=chunking, fp8=True))
    if "model-offload" in levers.offload:
        rungs.append(_Rung("model-offload", tiling, chunking))
        if fp8:
            rungs.append(_Rung("model-offload", tiling, chunking, fp8=True))
    for s in STRATEGIES[2:]:
        if s in levers.offload:
            rungs.append(_Rung(s, vae_tiling=tiling, forward_chunking=chunking))
    if strategy != "auto":
        rungs = [r for r in rungs if r.strategy == strategy]
    return rungs


def _rungs_for(
    spec: ModelSpec, strategy: str, budget: DeviceBudget, fp8: bool, cards: int = 1
) -> list[_Rung]:
    # On the CPU the "device" is host memory: offloading to it again saves nothing. A job over several
    # cards runs resident (offload hooks under context-parallel hooks are not something diffusers tests).
    rungs = _rungs(spec, strategy, fp8)
    return [r for r in rungs if r.strategy == "resident"] if budget.kind == "cpu" or cards > 1 else rungs


def _decode_chunks(spec: ModelSpec, frames: int) -> list[int]:
    if not spec.adapter.levers.decode_chunk:
        return [0]  # the pipeline takes no decode chunk (0: none)
    cap = min(frames, DECODE_CHUNK_CAP)
    return [cap] + [c for c in (8, 4, 2, 1) if c < cap]


def _placement(spec: ModelSpec, strategy: str, fp8: bool) -> dict[str, str]:
    where = {
        "resident": "device",
        "model-offload": "cpu, moved to the device while it runs",
        "group-offload": "cpu, streamed to the device block by block",
        "sequential-offload": "cpu, streamed to the device layer by layer",
    }[strategy]
    kinds = {c.name: c.kind for c in spec.architecture.components}
    return {
        name: where + (" (float8 storage)" if fp8 and kinds.get(name) == "denoiser" else "")
        for name in spec.weights_params()
    }


def attention_backend(spec: ModelSpec, request: GenerationRequest, budget: DeviceBudget) -> str | None:
    """The denoisers' attention backend on CUDA: SageAttention (8-bit, lossy) for presets that allow it,
    FlashAttention where installed. None elsewhere: the device's own choice applies (the NPU's
    `_native_npu`, `Device.attention_backend`), or diffusers' default."""
    if spec.adapter.levers.attention != "backend" or budget.kind != "cuda":
        return None  # UNets: their attention processors ignore backends
    installed = budget.attention_backends
    if spec.running_preset(request).lossy_attention and "sage" in installed:
        return "sage"
    for exact in ("_flash_3", "flash"):
        if exact in installed:
            return exact
    return None


def plan(
    spec: ModelSpec,
    request: GenerationRequest,
    budget: DeviceBudget,
    *,
    dtype: str = "auto",
    strategy: str = "auto",
    headroom: float = 0.9,
    suggest: bool = True,
    allow_compile: bool = False,
    layout: Layout | None = None,
) -> Plan:
    """How `request` runs on one card of `budget` (one card's share when `layout` spans several)."""
    if layout is not None and layout.cards == 1:
        layout = None
    cards = layout.cards if layout is not None else 1
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if strategy != "auto" and strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is not one of auto, {', '.join(STRATEGIES)}")
    chosen: DType = budget.auto_dtype(spec.preferred_dtype) if dtype == "auto" else dtype  # type: ignore[assignment]
    if chosen == "bfloat16" and not budget.supports_bf16:
        raise ValueError(
            f"bfloat16 is not supported on {budget.name} (compute capability {budget.compute_capability}); "
            "use float16 instead"
        )
    budget_mib = int(budget.free_mib * headroom)
    total_weights = sum(weights_mib(spec, chosen).values())
    fp8 = fp8_allowed(spec, request, budget, chosen)
    notes: list[str] = list(request.notes)
    adapter = spec.adapter
    for rung in _rungs_for(spec, strategy, budget, fp8, cards):
        if rung.strategy != "resident" and total_weights > budget.host_ram_mib * 0.9 and budget.kind != "cpu":
            note = (
                f"{rung.strategy} skipped: host RAM {budget.host_ram_mib} MiB cannot hold "
                f"{total_weights:.0f} MiB of weights"
            )
            if note not in notes:
                notes.append(note)
            continue
        for chunk in _decode_chunks(spec, request.frames):
            peaks = phase_peaks(
                spec,
                request,
                chosen,
                rung.strategy,
                decode_chunk=chunk,
                vae_tiling=rung.vae_tiling,
                forward_chunking=rung.forward_chunking,
                fp8=rung.fp8,
                device_factors=budget.kind != "cpu",  # kernel workspaces of an accelerator
                layout=layout,
            )
            peak = max(p.peak_mib for p in peaks)
            if peak > budget_mib:
                continue
            preset = spec.running_preset(request)
            compiles = (
                allow_compile
                and budget.kind == "cuda"
                and rung.strategy == "resident"
                and not rung.fp8
                and cards == 1
            )
            caches = adapter.levers.cache_hooks and request.steps >= MIN_CACHE_STEPS and cards == 1
            cache = preset.cache if caches else None
            slowdown = SLOWDOWN[rung.strategy] * (FP8_SLOWDOWN if rung.fp8 else 1.0)
            slowdown *= CHUNKING_SLOWDOWN if rung.forward_chunking else 1.0
            return Plan(
                model=spec.id,
                device=f"{budget.kind}:{budget.name}",
                dtype=chosen,
                strategy=rung.strategy,  # type: ignore[arg-type]
                placement=_placement(spec, rung.strategy, rung.fp8),
                vae_tiling=rung.vae_tiling,
                decode_chunk=chunk,
                forward_chunking=rung.forward_chunking,
                cache=cache,
                compile=adapter.levers.compile if compiles else "none",
                predicted_peak_mib=int(peak),
                budget_mib=budget_mib,
                weights_mib=int(max(p.weights_mib for p in peaks)),  # what the strategy keeps on the device
                relative_time=round(slowdown, 3),
                notes=tuple(notes),
                fp8_weights=rung.fp8,
                attention=attention_backend(spec, request, budget),
                denoiser_calls=adapter.denoiser_calls(spec, request),
                phases=peaks,
                cards=cards,
                layout=layout.describe() if layout is not None else "1 card",
            )
    rungs = _rungs_for(spec, strategy, budget, fp8, cards) or _rungs(spec, strategy, fp8)

    def leanest_of(candidates: list[_Rung]) -> float:
        return min(
            predict_peak_mib(
                spec,
                request,
                chosen,
                r.strategy,
                decode_chunk=_decode_chunks(spec, request.frames)[-1],
                vae_tiling=r.vae_tiling,
                forward_chunking=r.forward_chunking,
                fp8=r.fp8,
                layout=layout,
            )
            for r in candidates
        )

    leanest = leanest_of(rungs)
    message = (
        f"{spec.id} at {request.height}x{request.width}, {request.frames} frames does not fit "
        f"{budget.name}: {budget_mib / 1024:.1f} GiB usable ({budget.free_mib} MiB free x {headroom})"
    )
    if any("host RAM" in n for n in notes):
        residents = [r for r in rungs if r.strategy == "resident"]
        resident = leanest_of(residents) if residents else leanest
        message += (
            f"; all-resident needs {resident / 1024:.1f} GiB, and offloading needs host RAM for "
            f"{total_weights / 1024:.1f} GiB of weights but the host has {budget.host_ram_mib / 1024:.1f} GiB"
        )
    else:
        message += f"; even the leanest strategy needs {leanest / 1024:.1f} GiB ({chosen})"
    if layout is not None:
        message += f" (a card's share over {layout.describe()})"
    suggestions = _suggestions(spec, request, budget, chosen, strategy, headroom, layout) if suggest else []
    raise PlanRefusedError(message, suggestions)


def plan_for(
    spec: ModelSpec,
    request: GenerationRequest,
    budget: DeviceBudget,
    settings: Any,
    layout: Layout | None = None,
) -> Plan:
    """The plan under the runtime's settings (dtype, strategy, headroom, compile): the one call the engine
    makes before it runs and the API makes before it admits, so the stored plan is the plan that runs."""
    return plan(
        spec,
        request,
        budget,
        dtype=settings.dtype,
        strategy=settings.strategy,
        headroom=settings.memory_headroom,
        allow_compile=settings.compile == "auto",
        layout=layout,
    )


def _suggestions(
    spec: ModelSpec,
    request: GenerationRequest,
    budget: DeviceBudget,
    dtype: str,
    strategy: str,
    headroom: float,
    layout: Layout | None = None,
) -> list[str]:
    """Smaller requests that fit: fewer frames, a smaller size, another preset."""
    c = spec.constraints
    candidates: list[tuple[str, GenerationRequest]] = []
    frames = request.frames
    while frames > c.min_frames:
        frames = c.nearest_frames(max(c.min_frames, frames // 2))
        candidates.append((f"--frames {frames}", request.with_(frames=frames)))
        if frames == c.min_frames:
            break
    h, w = request.height, request.width
    for scale in (0.75, 0.5, 0.375, 0.25):
        nh, nw = c.nearest_size(int(h * scale)), c.nearest_size(int(w * scale))
        if (nh, nw) != (h, w) and nh >= c.min_size and nw >= c.min_size:
            candidates.append((f"--height {nh} --width {nw}", request.with_(height=nh, width=nw)))
    for preset in ("standard", "fast"):
        if preset != request.preset:
            try:
                candidates.append((f"--preset {preset}", resolve(spec, preset, seed=request.seed)))
            except ValueError:
                pass
    found: list[str] = []
    for label, candidate in candidates:
        try:
            p = plan(
                spec,
                candidate,
                budget,
                dtype=dtype,
                strategy=strategy,
                headroom=headroom,
                suggest=False,
                layout=layout,
            )
        except (PlanRefusedError, ValueError):
            continue
        found.append(f"{label} ({p.strategy}, {p.predicted_peak_mib / 1024:.1f} GiB)")
        if len(found) == 3:
            break
    return found
