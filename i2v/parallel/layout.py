"""How one job spreads over N cards, and the rule that chooses N. Pure data, torch-free.

A layout is `cfg x ring x ulysses = cards`:

- CFG parallel (`cfg` = 2): the conditional and the unconditional pass run on different cards and
  swap results once a step. It applies where the family runs CFG as two passes (Wan: two batch-1
  forwards) or as one forward whose batch is the pair (LTX-Video: batch 2, split in halves). It is
  taken first: one exchange a step costs far less than the attention exchanges below.
- Context parallel over the rest (diffusers' `ContextParallelConfig`): the latent sequence is split
  across cards. Ulysses (all-to-all over heads) takes the largest part of the degree that divides the
  head count; ring attention takes what is left, where the attention backend returns the
  log-sum-exp that ring needs (diffusers 0.42.1: CUDA flash / cuDNN / Sage; not the native SDPA
  backend the CPU uses, not `_native_npu`). Where ring is unavailable and the heads do not divide,
  diffusers' "Ulysses anything" pads the heads (correct, some cards idle part of the time), which
  needs at least as many heads as cards.

`auto` (I2V_CARDS_PER_JOB=auto) favours latency where it pays and throughput where it does not: a
job is split only when every card still gets `MIN_TOKENS_PER_CARD` latent tokens (below that the
exchanges cost more than the attention they save), and then over as many cards as the family can use;
the cards left over serve other jobs in groups of the same size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import gcd
from typing import Any, Literal

CardsSetting = Literal["auto", "1", "2", "4", "8"]
CARD_COUNTS: tuple[int, ...] = (1, 2, 4, 8)
# How a family's CFG pair splits over two cards (`FamilyAdapter.cfg_split`, from `Levers.cfg`): two forwards a step,
# one forward on the pair as a batch, or a form one card runs whole.
CfgSplit = Literal["separate", "batched", "none"]
# Attention in a Wan 480p/81-frame step: 32,760 tokens. Below ~4k tokens a card, all-to-all and
# ring exchanges take a larger share of the step than the attention they split (peers' 8-card runs
# split 480p Wan, none split small clips).
MIN_TOKENS_PER_CARD = 4096


class LayoutError(ValueError):
    """The family cannot split a job over that many cards."""


@dataclass(frozen=True)
class Layout:
    cards: int
    cfg: int = 1
    ulysses: int = 1
    ring: int = 1
    ulysses_anything: bool = False  # heads padded to a multiple of the Ulysses degree

    @property
    def context(self) -> int:
        """Cards one CFG pass is split over (the sequence-parallel degree)."""
        return self.ulysses * self.ring

    def describe(self) -> str:
        if self.cards == 1:
            return "1 card"
        parts = []
        if self.cfg > 1:
            parts.append(f"cfg {self.cfg}")
        if self.ulysses > 1:
            parts.append(f"ulysses {self.ulysses}" + (" (heads padded)" if self.ulysses_anything else ""))
        if self.ring > 1:
            parts.append(f"ring {self.ring}")
        return f"{self.cards} cards: " + " x ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Layout:
        return cls(**{k: data[k] for k in ("cards", "cfg", "ulysses", "ring", "ulysses_anything")})


def parse_cards(value: str | int) -> int | None:
    """ "auto" -> None; "1" / 2 / ... -> the count; anything else names the valid values."""
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if text.isdigit() and int(text) in CARD_COUNTS:
        return int(text)
    raise LayoutError(f"cards per job {value!r} is not one of auto, {', '.join(map(str, CARD_COUNTS))}")


def choose_layout(
    cards: int, *, heads: int, cfg_split: CfgSplit, context_parallel: bool, ring_available: bool
) -> Layout:
    """The layout of one job over `cards` cards, or `LayoutError` saying why it cannot be split so."""
    if cards not in CARD_COUNTS:
        raise LayoutError(f"cards per job must be one of {', '.join(map(str, CARD_COUNTS))}, got {cards}")
    if cards == 1:
        return Layout(1)
    cfg = 2 if cfg_split != "none" else 1
    rest = cards // cfg
    if rest == 1:
        return Layout(cards, cfg=cfg)
    if not context_parallel:
        if cfg == 2:
            raise LayoutError(
                "its family splits only the CFG pair (no context-parallel plan); use 2 cards per job"
            )
        raise LayoutError(
            "its family has neither a context-parallel plan nor a CFG pair to split; use 1 card per job"
        )
    ulysses = gcd(heads, rest)
    if ulysses == rest:
        return Layout(cards, cfg=cfg, ulysses=rest)
    if ring_available:
        return Layout(cards, cfg=cfg, ulysses=ulysses, ring=rest // ulysses)
    if heads >= rest:
        return Layout(cards, cfg=cfg, ulysses=rest, ulysses_anything=True)
    raise LayoutError(
        f"{heads} attention heads cannot be split over {rest} cards without ring attention, which this "
        f"device's attention backend does not offer; use {cfg * max(ulysses, 1)} card(s) per job"
    )


def usable_cards(
    available: int,
    tokens: int,
    *,
    heads: int,
    cfg_split: CfgSplit,
    context_parallel: bool,
    ring_available: bool,
) -> int:
    """What `auto` picks: the most cards (of 1, 2, 4, 8, at most `available`) one job can use while each
    card keeps `MIN_TOKENS_PER_CARD` latent tokens of its pass (CFG parallel keeps all of them)."""
    best = 1
    for cards in CARD_COUNTS[1:]:
        if cards > available:
            break
        try:
            layout = choose_layout(
                cards,
                heads=heads,
                cfg_split=cfg_split,
                context_parallel=context_parallel,
                ring_available=ring_available,
            )
        except LayoutError:
            continue
        if layout.context == 1 or tokens // layout.context >= MIN_TOKENS_PER_CARD:
            best = cards
    return best


def _heads(spec: Any) -> int:
    adapter = spec.adapter  # families without context parallelism need not describe their attention
    return adapter.attention_heads(spec) if adapter.levers.context_parallel else 1


def layout_for(spec: Any, cards: int, *, ring_available: bool) -> Layout:
    """`choose_layout` with what the model's family adapter says (heads, CFG split, context parallel)."""
    adapter = spec.adapter
    try:
        return choose_layout(
            cards,
            heads=_heads(spec),
            cfg_split=adapter.cfg_split,
            context_parallel=adapter.levers.context_parallel,
            ring_available=ring_available,
        )
    except LayoutError as exc:
        raise LayoutError(f"{spec.id} cannot run one job on {cards} cards: {exc}") from None


def auto_cards(spec: Any, request: Any, available: int, *, ring_available: bool) -> int:
    """What I2V_CARDS_PER_JOB=auto means for `spec` at `request` with `available` cards (module docstring)."""
    from i2v.planner import latent_tokens

    adapter = spec.adapter
    return usable_cards(
        available,
        latent_tokens(spec, request),
        heads=_heads(spec),
        cfg_split=adapter.cfg_split,
        context_parallel=adapter.levers.context_parallel,
        ring_available=ring_available,
    )


def cards_for(
    setting: str | int, spec: Any, request: Any, *, kind: str, available: int, ring_available: bool
) -> int:
    """Cards one job of `spec` runs on: the setting, or `auto` (the CPU has no cards: 1)."""
    cards = parse_cards(setting)
    if cards is None:
        return 1 if kind == "cpu" else auto_cards(spec, request, available, ring_available=ring_available)
    if kind != "cpu" and cards > available:
        raise LayoutError(
            f"cards per job {cards} is more than the {available} {kind} card(s) this process sees"
        )
    return cards
