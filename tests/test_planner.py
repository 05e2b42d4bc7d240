"""The planner against the measured anchors (ARCHITECTURE.md) and the seeds' hardware tiers."""

import dataclasses
import subprocess
import sys

import pytest

from i2v import catalogue
from i2v.planner import DeviceBudget, PlanRefusedError, plan, predict_peak_mib
from i2v.request import resolve

GIB = 1024

RTX3060 = DeviceBudget("cuda", "NVIDIA GeForce RTX 3060", 12288, 12288, 32768, compute_capability="8.6")
RTX4090 = DeviceBudget("cuda", "NVIDIA GeForce RTX 4090", 24564, 24564, 65536, compute_capability="8.9")
H100 = DeviceBudget("cuda", "NVIDIA H100 80GB HBM3", 81559, 81559, 1_000_000, compute_capability="9.0")
T4 = DeviceBudget("cuda", "Tesla T4", 15360, 15360, 65536, compute_capability="7.5")
ASCEND_910B3 = DeviceBudget("npu", "Ascend 910B3", 65536, 65536, 1_500_000, chip="910B3")
ASCEND_310P = DeviceBudget("npu", "Ascend 310P3", 21527, 21527, 131072, chip="310P3")


def i2vgen(**fields):
    spec = catalogue.get("i2vgen-xl")
    return spec, resolve(spec, "standard", **fields)


@pytest.mark.parametrize(
    ("fields", "chunk", "dtype", "measured_gib"),
    [
        (dict(height=512, width=512, frames=16), 1, "float16", 7.3),
        (dict(height=512, width=512, frames=16), 16, "float16", 14.2),
        (dict(height=512, width=512, frames=16), 16, "float32", 28.4),
        (dict(height=704, width=1280, frames=16), 16, "float16", 31.4),
    ],
)
def test_memory_model_is_never_below_the_h100_anchors_and_at_most_12_percent_above(
    fields, chunk, dtype, measured_gib
):
    """The fake-tensor fits times the H100 decode factor (1.33, kept for the worst anchor; 1.24 at
    704x1280), plus the fits' 2% margin and the 0.5 GiB overhead no allocation holds."""
    spec, request = i2vgen(**fields)
    predicted = predict_peak_mib(spec, request, dtype, "resident", decode_chunk=chunk) / GIB
    assert measured_gib <= predicted <= measured_gib * 1.12, (predicted, measured_gib)


def test_seed_tier_512p_16_frames_fp16_fits_a_12gb_card_resident():
    spec, request = i2vgen(height=512, width=512, frames=16)
    p = plan(spec, request, RTX3060)
    assert p.dtype == "float16" and p.strategy == "resident"
    assert p.predicted_peak_mib <= p.budget_mib <= 12288


def test_seed_tier_768p_24_frames_fits_24gb():
    spec, request = i2vgen(height=768, width=768, frames=24)
    p = plan(spec, request, RTX4090)
    assert p.strategy == "resident" and not p.forward_chunking
    assert p.predicted_peak_mib <= 24564 * 0.9


def test_768p_24_frames_needs_13_4_gib_resident_and_fits_12gb_only_with_forward_chunking():
    """Measured with fake tensors (ARCHITECTURE.md): 13.4 GiB all resident decoding one frame at a time,
    so the seeds' "768p x 24 frames on a 12 GB card" needs forward chunking (4.2 instead of 8.9 GiB of
    denoise activations)."""
    spec, request = i2vgen(height=768, width=768, frames=24)
    resident = predict_peak_mib(spec, request, "float16", "resident", decode_chunk=1, device_factors=False)
    assert resident - spec.memory.overhead_mib >= 4748 + 8940  # weights + denoise, fake tensors
    p = plan(spec, request, RTX3060)
    assert (p.strategy, p.forward_chunking, p.dtype) == ("resident", True, "float16")
    denoise = next(x for x in p.phases if x.name == "denoise")
    assert denoise.activations_mib < 4.5 * GIB and p.predicted_peak_mib <= p.budget_mib


def test_wan_480p_on_a_24gb_4090_keeps_the_denoiser_on_the_card_in_fp8_instead_of_streaming_it():
    wan = catalogue.get("wan2.1-i2v-14b-480p")
    p = plan(wan, resolve(wan, "standard"), RTX4090)
    assert p.fp8_weights and p.strategy in ("resident", "model-offload"), p.summary()
    assert "float8" in p.placement["transformer"]
    # hq never stores weights lossily: it streams blocks instead
    hq = plan(wan, resolve(wan, "hq"), RTX4090)
    assert not hq.fp8_weights and hq.strategy == "group-offload", hq.summary()
    # the NPU has no float8 storage: the same card size streams
    npu = DeviceBudget("npu", "Ascend 910B4", 24564, 24564, 262144, chip="910B4")
    assert not plan(wan, resolve(wan, "standard"), npu).fp8_weights


def test_families_without_a_decode_chunk_argument_get_none():
    for model in ("wan2.1-i2v-14b-480p", "ltx-video", "ltx-2"):
        spec = catalogue.get(model)
        p = plan(spec, resolve(spec, "standard"), H100)
        assert p.decode_chunk == 0 and "frame(s) at a time" not in p.summary(), p.summary()
    spec, request = i2vgen()
    assert plan(spec, request, H100).decode_chunk == 8


def test_ltx2_peaks_while_stacking_gemmas_hidden_states_at_small_sizes():
    spec = catalogue.get("ltx-2")
    p = plan(spec, resolve(spec, "standard", height=384, width=576, frames=33), H100)
    phases = {x.name: x for x in p.phases}
    assert phases["text"].activations_mib > phases["denoise"].activations_mib > 0
    assert phases["text"].activations_mib > 4.5 * GIB  # Gemma 3's 49 hidden states stacked


def test_dtype_rules():
    wan = catalogue.get("wan2.1-i2v-14b-480p")
    assert H100.auto_dtype(wan.preferred_dtype) == "bfloat16"
    assert ASCEND_910B3.auto_dtype(wan.preferred_dtype) == "bfloat16"
    assert T4.auto_dtype(wan.preferred_dtype) == "float16"  # pre-Ampere: no bf16
    assert ASCEND_310P.auto_dtype(wan.preferred_dtype) == "float16"
    assert H100.auto_dtype("float16") == "float16"  # fp16-tuned models stay fp16
    cpu = DeviceBudget("cpu", "x86_64 CPU", 24000, 20000, 24000)
    assert cpu.auto_dtype("bfloat16") == "float32"
    spec, request = i2vgen()
    with pytest.raises(ValueError, match="bfloat16 is not supported on Tesla T4.*float16 instead"):
        plan(spec, request, T4, dtype="bfloat16")


def test_ladder_goes_down_as_memory_shrinks():
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    request = resolve(spec, "hq")  # no FP8 rung: the strategies alone
    strategies = []
    for total in (81559, 40960, 24564, 12288):
        budget = DeviceBudget("cuda", f"{total} MiB card", total, total, 256_000, compute_capability="9.0")
        p = plan(spec, request, budget)
        assert p.predicted_peak_mib <= p.budget_mib
        strategies.append(p.strategy)
    order = ["resident", "model-offload", "group-offload", "sequential-offload"]
    ranks = [order.index(s) for s in strategies]
    assert ranks == sorted(ranks) and ranks[0] == 0 and ranks[-1] >= 2, strategies


def test_decode_chunk_shrinks_before_leaving_resident():
    spec, request = i2vgen(height=704, width=1280, frames=16)
    roomy = plan(spec, request, H100)
    assert roomy.strategy == "resident" and roomy.decode_chunk == 8
    tight = plan(spec, request, DeviceBudget("cuda", "16G", 16384, 16384, 65536, compute_capability="8.9"))
    assert tight.strategy == "resident" and tight.decode_chunk < roomy.decode_chunk


def test_refusal_says_what_would_fit_and_the_suggestions_do_fit():
    spec, request = i2vgen(height=704, width=1280, frames=16)
    card = DeviceBudget("cuda", "10 GiB card", 10240, 10240, host_ram_mib=2048, compute_capability="8.6")
    with pytest.raises(PlanRefusedError) as info:
        plan(spec, request, card)
    err = info.value
    assert "i2vgen-xl" in str(err) and "10 GiB card" in str(err) and "what would fit" in str(err)
    assert err.suggestions
    for suggestion in err.suggestions:  # every suggestion really fits
        args = suggestion.split(" (")[0].split()
        changes = {args[i].lstrip("-"): args[i + 1] for i in range(0, len(args), 2)}
        if "preset" in changes:
            candidate = resolve(spec, changes["preset"])
        else:
            candidate = request.with_(**{k: int(v) for k, v in changes.items()})
        assert plan(spec, candidate, card).predicted_peak_mib <= card.free_mib * 0.9


def test_offload_needs_host_ram():
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    request = resolve(spec, "standard")
    roomy_ram = DeviceBudget("cuda", "24G", 24564, 24564, host_ram_mib=262144, compute_capability="8.9")
    assert plan(spec, request, roomy_ram).strategy != "resident"
    tiny_ram = DeviceBudget("cuda", "24G", 24564, 24564, host_ram_mib=8192, compute_capability="8.9")
    with pytest.raises(
        PlanRefusedError, match="offloading needs host RAM for .* GiB of weights but the host has 8.0 GiB"
    ):
        plan(spec, request, tiny_ram)


def test_cpu_plans_are_resident_only():
    spec = catalogue.get("tiny-i2vgen-xl")
    cpu = DeviceBudget("cpu", "x86_64 CPU", 24000, 20000, 24000)
    p = plan(spec, resolve(spec, "standard"), cpu)
    assert p.strategy == "resident" and p.dtype == "float32" and p.compile == "none"


def test_fast_preset_turns_on_lossy_cache_only_where_supported(tmp_path):
    wan = catalogue.get("wan2.1-i2v-14b-480p")
    # without the distillation LoRA, fast is the 20-step preview with FirstBlockCache
    assert plan(wan, resolve(wan, "fast", models_dir=tmp_path), H100).cache == "first-block-cache:0.05"
    # ... but not for a handful of steps, where there is nothing to skip
    assert plan(wan, resolve(wan, "fast", models_dir=tmp_path, steps=4), H100).cache is None
    assert plan(wan, resolve(wan, "standard"), H100).cache is None
    ltx2 = catalogue.get("ltx-2")
    assert plan(ltx2, resolve(ltx2, "fast"), H100).cache is None  # FirstBlockCache raises on LTX-2


def test_compile_only_resident_on_cuda_and_when_allowed():
    wan = catalogue.get("wan2.1-i2v-14b-480p")
    assert plan(wan, resolve(wan, "standard"), H100, allow_compile=True).compile == "regional"
    assert plan(wan, resolve(wan, "standard"), ASCEND_910B3, allow_compile=True).compile == "none"
    assert plan(wan, resolve(wan, "standard"), H100).compile == "none"  # off unless asked for


@pytest.mark.parametrize("compile_setting, expected", [("off", "none"), ("auto", "regional")])
def test_plan_for_follows_the_settings_the_engine_and_the_api_share(compile_setting, expected):
    from i2v.planner import plan_for
    from i2v.settings import Settings

    wan = catalogue.get("wan2.1-i2v-14b-480p")
    settings = Settings(compile=compile_setting)
    assert plan_for(wan, resolve(wan, "standard"), H100, settings).compile == expected


def test_planner_is_torch_free():
    code = (
        "import sys, i2v.planner, i2v.catalogue as c, i2v.request as r;"
        "s=c.get('wan2.2-i2v-a14b'); i2v.planner.predict_peak_mib(s, r.resolve(s), 'bfloat16', 'resident', "
        "decode_chunk=1); assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- LTX-2.3 on Lightricks' own pipelines: the backend's phases and residency -----------------------

H200 = DeviceBudget("cuda", "NVIDIA H200", 143771, 143771, 2_000_000, compute_capability="9.0")


def ltx23(mode: str, **fields):
    spec = catalogue.get("ltx-2.3")
    return spec, resolve(spec, "standard", mode=mode, prompt="a person dancing", **fields)


def test_ltx23_on_a_910b_keeps_its_big_models_in_host_ram_between_phases():
    """The seed's run: two-stage 1024x1536, 41 frames, on one 64 GB 910B without layer streaming."""
    spec, request = ltx23("two-stage", frames=41)
    p = plan(spec, request, ASCEND_910B3)
    assert p.strategy == "model-offload" and p.predicted_peak_mib <= p.budget_mib
    from i2v.planner import phase_peaks

    peaks = {ph.name: ph for ph in phase_peaks(spec, request, "bfloat16", "model-offload", decode_chunk=0)}
    transformer = spec.weights_params()["transformer"] * 2 / 2**20
    gemma = spec.weights_params()["text_encoder"] * 2 / 2**20
    # one big model at a time on the device: the transformer in its stages, Gemma while encoding
    assert transformer < peaks["stage-1"].weights_mib < transformer + 3 * 1024
    assert gemma < peaks["encode-prompt"].weights_mib < gemma + 3 * 1024
    assert max(peaks.values(), key=lambda ph: ph.peak_mib).name in ("stage-1", "stage-2")


def test_ltx23_resident_counts_the_stage_2_transformer_copy():
    spec, request = ltx23("two-stage", frames=41)
    two = plan(spec, request, H200)
    one = plan(spec, ltx23("distilled", frames=41)[1], H200)  # one transformer for both stages
    transformer = spec.weights_params()["transformer"] * 2 / 2**20
    assert two.strategy == one.strategy == "resident"
    assert abs((two.weights_mib - one.weights_mib) - transformer) < 1024  # the LoRA-fused second copy


def test_ltx23_that_fits_nowhere_is_refused_naming_its_leanest_need():
    """Its leanest rung is model offload (one big model on the card at a time): never group or sequential
    offload, which the package cannot do, so a 24 GB card is refused with what that needs."""
    import re

    spec, request = ltx23("two-stage", frames=121)
    roomy_host = dataclasses.replace(RTX4090, host_ram_mib=512 * 1024)
    with pytest.raises(PlanRefusedError) as info:
        plan(spec, request, roomy_host)
    from i2v.planner import predict_peak_mib

    leanest = float(re.search(r"even the leanest strategy needs ([0-9.]+) GiB", str(info.value)).group(1))
    offload = predict_peak_mib(spec, request, "bfloat16", "model-offload", decode_chunk=0) / 1024
    assert abs(leanest - offload) < 0.1  # model offload's figure: nothing leaner is proposed
    assert leanest > spec.weights_params()["transformer"] * 2 / 2**30  # the whole transformer on the card
