"""One job across several cards: the layout (torch-free) and the mechanism (imported when used).

- `i2v.parallel.layout`: `Layout` (CFG x ring x Ulysses), `choose_layout`, the `auto` rule. Torch-free:
  the planner, `provision plan` and the API read it.
- `i2v.parallel.group`: the process group of one job's cards (NCCL / HCCL / gloo), the control channel
  rank 0 drives the others with, collective timeouts.
- `i2v.parallel.shard`: diffusers' context parallelism on a family's denoisers, CFG parallel around them.
- `i2v.parallel.follower`: what ranks 1..N-1 run (for worker groups and `i2v generate --cards N`).

The single-card path never imports anything here but the layout.
"""

from __future__ import annotations

from i2v.parallel.layout import (
    CARD_COUNTS,
    MIN_TOKENS_PER_CARD,
    CardsSetting,
    CfgSplit,
    Layout,
    LayoutError,
    auto_cards,
    cards_for,
    choose_layout,
    layout_for,
    parse_cards,
    usable_cards,
)

__all__ = [
    "CARD_COUNTS",
    "MIN_TOKENS_PER_CARD",
    "CardsSetting",
    "CfgSplit",
    "Layout",
    "LayoutError",
    "auto_cards",
    "cards_for",
    "choose_layout",
    "layout_for",
    "parse_cards",
    "usable_cards",
]
