"""Plan how a request runs on a device, or refuse with what would fit. Pure and torch-free.

(spec, request, device budget) -> `Plan`. The ladder goes from fastest to leanest:

    resident -> resident + VAE tiling -> resident + forward chunking
             -> model offload -> group offload (block streaming) -> sequential offload

and within each rung the largest VAE decode chunk that fits (up to what pays off) is taken. The
first rung whose predicted peak fits `headroom x free memory` wins. A request that fits nowhere
raises `PlanRefusedError` listing smaller requests that would fit.

One job over several cards (`layout`, i2v.parallel): every card holds all the weights (context
parallelism splits the sequence, not the model) and its share of the denoiser's activations: the
latent tokens over the context-parallel degree, and one of the two CFG passes under CFG parallel.
Each card decodes the whole video. Such a job runs all-resident, with no cache hooks (a cache that
skips a step on one card and not another would leave the others waiting in a collective) and no
compile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from i2v.catalogue.spec import ModelSpec
from i2v.parallel.layout import Layout
from i2v.request import GenerationRequest, resolve

MIB = 1024 * 1024
DType = Literal["float16", "bfloat16", "float32"]
Strategy = Literal["resident", "model-offload", "group-offload", "sequential-offload"]
STRATEGIES: tuple[str, ...] = ("resident", "model-offload", "group-offload", "sequential-offload")
DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}
DTYPES: tuple[str, ...] = ("auto", *DTYPE_BYTES)

# Relative step time of each strategy against all-resident (estimates until `i2v bench` measures them).
SLOWDOWN = {"resident": 1.0, "model-offload": 1.1, "group-offload": 1.4, "sequential-offload": 6.0}
# Decoding more frames at once than this buys nothing (H100: 16 at once = 1 at a time, 12.0 vs 12.1 s).
DECODE_CHUNK_CAP = 8


@dataclass(frozen=True)
class DeviceBudget:
    """What the planner knows about the device: torch-free, built from a probe or a live query."""

    kind: Literal["cuda", "npu", "cpu"]
    name: str
    total_mib: int
    free_mib: int
    host_ram_mib: int
    compute_capability: str | None = None
    chip: str | None = None

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
    cards: int = 1
    layout: str = "1 card"  # Layout.describe() of the cards one job runs on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        levers = [self.dtype, self.strategy, f"decode {self.decode_chunk} frame(s) at a time"]
        if self.vae_tiling:
            levers.append("VAE tiling")
        if self.forward_chunking:
            levers.append("forward chunking")
        if self.cache:
            levers.append(f"cache {self.cache}")
        if self.compile != "none":
            levers.append(f"compile {self.compile}")
        if self.cards > 1:
            levers.append(self.layout)
        per = " a card" if self.cards > 1 else ""
        return (
            f"{self.model} on {self.device}: "
            + ", ".join(levers)
            + f"; predicted peak{per} {self.predicted_peak_mib / 1024:.1f} GiB of {self.budget_mib / 1024:.1f} GiB"
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


def weights_mib(spec: ModelSpec, dtype: str) -> dict[str, float]:
    per = DTYPE_BYTES[dtype] / MIB
    return {name: params * per for name, params in spec.weights_params().items()}


def _component_kinds(spec: ModelSpec) -> dict[str, str]:
    return {c.name: c.kind for c in spec.architecture.components if c.params}


def resident_weights_mib(spec: ModelSpec, dtype: str, strategy: str) -> float:
    weights = weights_mib(spec, dtype)
    if not weights:
        return 0.0
    if strategy == "resident":
        return sum(weights.values())
    if strategy == "model-offload":
        # one component on the device at a time (accelerate's cpu offload hooks)
        return max(weights.values())
    kinds = _component_kinds(spec)
    vae = sum(w for n, w in weights.items() if kinds.get(n) in ("vae", "audio_vae", "vocoder"))
    largest = max(weights.values())
    if strategy == "group-offload":
        # block-level groups: the group computing plus the one being prefetched on the side stream
        return vae + 2 * largest / max(spec.denoiser_blocks, 1)
    return vae + 0.03 * largest  # sequential: one leaf module at a time


def activations_mib(
    spec: ModelSpec,
    request: GenerationRequest,
    dtype: str,
    *,
    decode_chunk: int,
    vae_tiling: bool,
    forward_chunking: bool,
    layout: Layout | None = None,
) -> tuple[float, float]:
    """(denoise, decode) activations of one card in MiB."""
    m = spec.memory
    scale = DTYPE_BYTES[dtype] / 2
    denoise = m.denoise_mib_per_mtoken * latent_tokens(spec, request) / 1e6 * spec.cfg_batch
    if layout is not None:
        denoise /= layout.context * layout.cfg
    if forward_chunking:
        denoise *= m.forward_chunking_factor
    mpixels = request.height * request.width / 1e6
    if vae_tiling:
        mpixels = min(mpixels, m.tile_mpixels)
    decode = m.decode_base_mib + m.decode_mib_per_mpixel_frame * mpixels * decode_chunk
    return denoise * scale, decode * scale


def predict_peak_mib(
    spec: ModelSpec,
    request: GenerationRequest,
    dtype: str,
    strategy: str,
    *,
    decode_chunk: int,
    vae_tiling: bool = False,
    forward_chunking: bool = False,
    layout: Layout | None = None,
) -> float:
    denoise, decode = activations_mib(
        spec,
        request,
        dtype,
        decode_chunk=decode_chunk,
        vae_tiling=vae_tiling,
        forward_chunking=forward_chunking,
        layout=layout,
    )
    return resident_weights_mib(spec, dtype, strategy) + max(denoise, decode) + spec.memory.overhead_mib


# --- the ladder -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rung:
    strategy: str
    vae_tiling: bool = False
    forward_chunking: bool = False


def _rungs(spec: ModelSpec, strategy: str) -> list[_Rung]:
    levers = spec.adapter.levers
    rungs = [_Rung("resident")]
    if levers.vae_tiling:
        rungs.append(_Rung("resident", vae_tiling=True))
    if levers.forward_chunking:
        rungs.append(_Rung("resident", vae_tiling=levers.vae_tiling, forward_chunking=True))
    if levers.offload:
        for s in STRATEGIES[1:]:
            rungs.append(_Rung(s, vae_tiling=levers.vae_tiling, forward_chunking=levers.forward_chunking))
    if strategy != "auto":
        rungs = [r for r in rungs if r.strategy == strategy]
    return rungs


def _rungs_for(spec: ModelSpec, strategy: str, budget: DeviceBudget, cards: int = 1) -> list[_Rung]:
    # On the CPU the "device" is host memory: offloading to it again saves nothing. A job over several
    # cards runs resident (offload hooks under context-parallel hooks are not something diffusers tests).
    rungs = _rungs(spec, strategy)
    return [r for r in rungs if r.strategy == "resident"] if budget.kind == "cpu" or cards > 1 else rungs


def _decode_chunks(frames: int) -> list[int]:
    cap = min(frames, DECODE_CHUNK_CAP)
    chunks = [cap] + [c for c in (8, 4, 2, 1) if c < cap]
    return chunks


def _placement(spec: ModelSpec, strategy: str) -> dict[str, str]:
    where = {
        "resident": "device",
        "model-offload": "cpu, moved to the device while it runs",
        "group-offload": "cpu, streamed to the device block by block",
        "sequential-offload": "cpu, streamed to the device layer by layer",
    }[strategy]
    return {name: where for name in spec.weights_params()}


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
    notes: list[str] = []
    for rung in _rungs_for(spec, strategy, budget, cards):
        if rung.strategy != "resident" and total_weights > budget.host_ram_mib * 0.9 and budget.kind != "cpu":
            notes.append(
                f"{rung.strategy} skipped: host RAM {budget.host_ram_mib} MiB cannot hold "
                f"{total_weights:.0f} MiB of weights"
            )
            continue
        for chunk in _decode_chunks(request.frames):
            peak = predict_peak_mib(
                spec,
                request,
                chosen,
                rung.strategy,
                decode_chunk=chunk,
                vae_tiling=rung.vae_tiling,
                forward_chunking=rung.forward_chunking,
                layout=layout,
            )
            if peak <= budget_mib:
                preset = spec.preset(request.preset)
                compiles = (
                    allow_compile and budget.kind == "cuda" and rung.strategy == "resident" and cards == 1
                )
                compile_mode = spec.adapter.levers.compile if compiles else "none"
                caches = spec.adapter.levers.cache_hooks and cards == 1
                return Plan(
                    model=spec.id,
                    device=f"{budget.kind}:{budget.name}",
                    dtype=chosen,
                    strategy=rung.strategy,  # type: ignore[arg-type]
                    placement=_placement(spec, rung.strategy),
                    vae_tiling=rung.vae_tiling,
                    decode_chunk=chunk,
                    forward_chunking=rung.forward_chunking,
                    cache=preset.cache if caches else None,
                    compile=compile_mode,
                    predicted_peak_mib=int(peak),
                    budget_mib=budget_mib,
                    weights_mib=int(resident_weights_mib(spec, chosen, rung.strategy)),
                    relative_time=SLOWDOWN[rung.strategy],
                    notes=tuple(notes),
                    cards=cards,
                    layout=layout.describe() if layout is not None else "1 card",
                )
    rungs = _rungs_for(spec, strategy, budget, cards) or _rungs(spec, strategy)
    leanest = min(
        predict_peak_mib(
            spec,
            request,
            chosen,
            r.strategy,
            decode_chunk=1,
            vae_tiling=r.vae_tiling,
            forward_chunking=r.forward_chunking,
            layout=layout,
        )
        for r in rungs
    )
    message = (
        f"{spec.id} at {request.height}x{request.width}, {request.frames} frames does not fit "
        f"{budget.name}: {budget_mib / 1024:.1f} GiB usable ({budget.free_mib} MiB free x {headroom})"
    )
    ram_blocked = [n for n in notes if "host RAM" in n]
    if ram_blocked:
        resident = (
            min(
                predict_peak_mib(
                    spec,
                    request,
                    chosen,
                    r.strategy,
                    decode_chunk=1,
                    vae_tiling=r.vae_tiling,
                    forward_chunking=r.forward_chunking,
                    layout=layout,
                )
                for r in rungs
                if r.strategy == "resident"
            )
            if any(r.strategy == "resident" for r in rungs)
            else leanest
        )
        message += (
            f"; all-resident needs {resident / 1024:.1f} GiB, and offloading needs host RAM for "
            f"{total_weights / 1024:.1f} GiB of weights but the host has {budget.host_ram_mib / 1024:.1f} GiB"
        )
    else:
        message += f"; even the leanest strategy needs {leanest / 1024:.1f} GiB ({chosen})"
    if cards > 1:
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
