"""How one job spreads over cards (torch-free): the layout rule, `auto`, and the planner's per-card share."""

from __future__ import annotations

import pytest

from i2v import catalogue
from i2v.parallel import (
    MIN_TOKENS_PER_CARD,
    Layout,
    LayoutError,
    auto_cards,
    cards_for,
    choose_layout,
    layout_for,
    parse_cards,
)
from i2v.planner import DeviceBudget, latent_tokens, phase_peaks, plan, predict_peak_mib
from i2v.request import resolve


def layout(cards, heads=40, cfg_split="separate", context_parallel=True, ring_available=False):
    return choose_layout(
        cards,
        heads=heads,
        cfg_split=cfg_split,
        context_parallel=context_parallel,
        ring_available=ring_available,
    )


def test_cfg_pair_first_then_ulysses_over_the_rest():
    assert layout(1) == Layout(1)
    assert layout(2) == Layout(2, cfg=2)
    assert layout(4) == Layout(4, cfg=2, ulysses=2)
    assert layout(8) == Layout(8, cfg=2, ulysses=4)  # MindIE-SD's Wan2.1 14B layout on an 800I A2
    assert layout(8, cfg_split="none").describe() == "8 cards: ulysses 8"
    assert layout(8, cfg_split="batched") == Layout(8, cfg=2, ulysses=4)


def test_heads_that_do_not_divide_go_to_ring_else_padded_ulysses_else_refused():
    # 12 heads over 8 cards: Ulysses takes 4 (the largest divisor), ring the other 2.
    assert layout(8, heads=12, cfg_split="none", ring_available=True) == Layout(8, ulysses=4, ring=2)
    # No ring on this backend (CPU native SDPA, NPU `_native_npu`): diffusers pads 12 heads to 16.
    assert layout(8, heads=12, cfg_split="none") == Layout(8, ulysses=8, ulysses_anything=True)
    # The tiny models' 2 heads over 4 cards: ring where it exists, else nothing diffusers can do.
    assert layout(4, heads=2, cfg_split="none", ring_available=True) == Layout(4, ulysses=2, ring=2)
    with pytest.raises(LayoutError, match="2 attention heads cannot be split over 4 cards"):
        layout(4, heads=2, cfg_split="none")


def test_families_without_a_split_refuse_more_cards_by_name():
    for model in ("tiny-i2vgen-xl", "tiny-svd", "tiny-ltx-2"):
        spec = catalogue.get(model)
        assert layout_for(spec, 1, ring_available=False) == Layout(1)
        with pytest.raises(LayoutError, match=f"{model} cannot run one job on 2 cards"):
            layout_for(spec, 2, ring_available=False)
    with pytest.raises(LayoutError, match="one of auto, 1, 2, 4, 8"):
        parse_cards("3")


def test_adapters_declare_the_split_their_pipeline_has():
    wan, ltx = catalogue.get("wan2.1-i2v-14b-480p"), catalogue.get("ltx-video")
    assert (wan.adapter.cfg_split, wan.adapter.attention_heads(wan)) == ("separate", 40)
    assert (ltx.adapter.cfg_split, ltx.adapter.attention_heads(ltx)) == ("batched", 32)
    assert layout_for(catalogue.get("tiny-wan2.1-i2v"), 4, ring_available=False).describe() == (
        "4 cards: cfg 2 x ulysses 2"
    )


@pytest.mark.parametrize(
    "model", ["wan2.1-i2v-14b-480p", "wan2.1-i2v-14b-720p", "ltx-video", "tiny-wan2.1-i2v"]
)
@pytest.mark.parametrize("available", [1, 2, 4, 8])
def test_auto_takes_the_most_cards_that_keep_enough_tokens_each(model, available):
    spec = catalogue.get(model)
    request = resolve(spec, "standard")
    tokens = latent_tokens(spec, request)
    chosen = auto_cards(spec, request, available, ring_available=True)
    assert chosen <= available
    share = layout_for(spec, chosen, ring_available=True)
    assert share.context == 1 or tokens // share.context >= MIN_TOKENS_PER_CARD
    for more in (2, 4, 8):  # any bigger layout would have split the sequence too thin
        if chosen < more <= available:
            bigger = layout_for(spec, more, ring_available=True)
            assert bigger.context > 1 and tokens // bigger.context < MIN_TOKENS_PER_CARD


def test_auto_is_one_card_on_the_cpu_and_a_setting_wins():
    spec = catalogue.get("tiny-wan2.1-i2v")
    request = resolve(spec, "standard")
    assert cards_for("auto", spec, request, kind="cpu", available=1, ring_available=False) == 1
    assert cards_for("4", spec, request, kind="cpu", available=1, ring_available=False) == 4
    wan = catalogue.get("wan2.1-i2v-14b-480p")
    assert (
        cards_for("auto", wan, resolve(wan, "standard"), kind="cuda", available=8, ring_available=True) == 8
    )
    with pytest.raises(LayoutError, match="more than the 4 cuda card"):
        cards_for("8", wan, resolve(wan, "standard"), kind="cuda", available=4, ring_available=True)


def test_planner_counts_one_cards_share_of_the_activations():
    # 161 frames at 720p: the denoiser's activations outgrow the tiled decode and the conditioning (at
    # 81 frames those, which every card runs whole, set the peak, and sharing the denoiser changes nothing).
    spec = catalogue.get("wan2.1-i2v-14b-720p")
    request = resolve(spec, "standard", frames=161)
    eight = layout_for(spec, 8, ring_available=True)
    one = predict_peak_mib(spec, request, "bfloat16", "resident", decode_chunk=0, vae_tiling=True)
    each = predict_peak_mib(
        spec, request, "bfloat16", "resident", decode_chunk=0, vae_tiling=True, layout=eight
    )
    alone_phases = {p.name: p for p in phase_peaks(spec, request, "bfloat16", "resident", decode_chunk=0)}
    card_phases = {
        p.name: p for p in phase_peaks(spec, request, "bfloat16", "resident", decode_chunk=0, layout=eight)
    }
    # one eighth of the denoiser's activations (CFG 2 x Ulysses 4); the other phases run whole on each card
    assert abs(card_phases["denoise"].activations_mib - alone_phases["denoise"].activations_mib / 8) <= 1
    assert all(card_phases[n] == alone_phases[n] for n in alone_phases if not n.startswith("denoise"))
    weights = sum(spec.weights_params().values()) * 2 / 2**20
    assert each < one and each > weights  # every card still holds all the weights
    # A card just too small for 720p alone holds its share of it over 8 cards, all resident.
    budget = DeviceBudget("npu", "Ascend910B3", 65536, int(one / 0.9) - 512, 1_500_000, chip="910B3")
    alone = plan(spec, request, budget)
    shared = plan(spec, request, budget, layout=eight)
    assert alone.strategy == "model-offload"  # alone it must stream the components in and out
    assert (shared.strategy, shared.cards, shared.layout) == ("resident", 8, "8 cards: cfg 2 x ulysses 4")
    assert shared.predicted_peak_mib == int(
        predict_peak_mib(
            spec, request, "bfloat16", "resident", decode_chunk=0, vae_tiling=shared.vae_tiling, layout=eight
        )
    )


def test_a_job_over_cards_runs_resident_without_cache_hooks_or_compile():
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    request = resolve(spec, "fast")  # the fast preset turns FirstBlockCache on for one card
    budget = DeviceBudget("cuda", "NVIDIA H100", 81559, 80000, 1_000_000, compute_capability="9.0")
    single = plan(spec, request, budget, allow_compile=True)
    group = plan(spec, request, budget, allow_compile=True, layout=layout_for(spec, 4, ring_available=True))
    assert single.cache is not None and single.compile != "none"
    assert (group.cache, group.compile, group.strategy) == (None, "none", "resident")
    assert "4 cards: cfg 2 x ulysses 2" in group.summary()
