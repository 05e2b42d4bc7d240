"""The warm component cache's placement rules, on small modules (no model files needed).

On CPU the compute device and host RAM are the same memory, so these check the bookkeeping that
decides what moves where (and that the device's empty_cache follows a move); test_ltx23_e2e.py
runs the same cache through real pipelines.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from i2v.devices import CpuDevice  # noqa: E402
from i2v.families.ltx2_official.compat import PatchDriftError  # noqa: E402
from i2v.families.ltx2_official.components import (  # noqa: E402
    ComponentCache,
    ComponentKey,
    WarmPolicy,
    adopt_ledgers,
    module_bytes,
)
from i2v.families.ltx2_official.weights import MissingWeightsError  # noqa: E402


class CountingCpu(CpuDevice):
    def __init__(self) -> None:
        self.emptied = 0

    def empty_cache(self) -> None:
        self.emptied += 1


def cache(policy: WarmPolicy) -> tuple[ComponentCache, CountingCpu]:
    device = CountingCpu()
    return ComponentCache(device, torch.device("cpu"), policy), device


def key(kind: str, name: str = "a") -> ComponentKey:
    return ComponentKey(kind, (f"/models/{name}.safetensors",))  # type: ignore[arg-type]


def on_device(c: ComponentCache) -> dict[str, bool]:
    return {f"{k.kind}:{k.source[0]}": here for k, _, here, _ in c.resident()}


def test_a_warm_hit_returns_the_same_module_without_building():
    c, _ = cache(WarmPolicy())
    built = []
    module = c.get(key("vocoder"), lambda: built.append(1) or torch.nn.Linear(2, 2))
    assert c.get(key("vocoder"), lambda: built.append(1) or torch.nn.Linear(2, 2)) is module
    assert built == [1] and c.stats.builds["vocoder"] == 1 and c.stats.hits["vocoder"] == 1


def test_host_residency_keeps_one_big_model_on_the_device_at_a_time():
    c, device = cache(WarmPolicy(text="host", transformer="host"))
    c.get(key("text_encoder"), lambda: torch.nn.Linear(4, 4))
    c.get(key("video_encoder"), lambda: torch.nn.Linear(4, 4))
    assert on_device(c) == {
        "text_encoder:/models/a.safetensors": True,
        "video_encoder:/models/a.safetensors": True,
    }
    c.get(key("transformer"), lambda: torch.nn.Linear(4, 4))  # the pipeline has dropped Gemma by now
    assert on_device(c)["text_encoder:/models/a.safetensors"] is False and device.emptied == 1
    c.get(key("transformer", "b"), lambda: torch.nn.Linear(4, 4))  # the LoRA-fused stage-2 variant
    assert on_device(c)["transformer:/models/a.safetensors"] is False
    c.get(key("text_encoder"), lambda: torch.nn.Linear(4, 4))  # next request: Gemma back, warm
    assert on_device(c)["text_encoder:/models/a.safetensors"] is True and c.stats.builds["text_encoder"] == 1
    c.park()
    assert on_device(c) == {
        "video_encoder:/models/a.safetensors": True,
        "transformer:/models/a.safetensors": False,
        "transformer:/models/b.safetensors": False,
        "text_encoder:/models/a.safetensors": False,
    }


def test_device_residency_never_parks_and_budgets_drop_the_least_recently_used():
    size = module_bytes(torch.nn.Linear(8, 8))
    c, _ = cache(WarmPolicy(device_budget_bytes=int(2.5 * size)))
    for name in ("a", "b", "c"):
        c.get(key("transformer", name), lambda: torch.nn.Linear(8, 8))
    c.get(key("transformer", "a"), lambda: torch.nn.Linear(8, 8))  # a was dropped: rebuilt
    assert c.stats.builds["transformer"] == 4
    assert [k.source[0] for k, *_ in c.resident()] == ["/models/c.safetensors", "/models/a.safetensors"]
    c.park()  # device-resident: stays put
    assert all(here for _, _, here, _ in c.resident())


def test_a_model_with_weights_missing_from_the_file_is_an_error():
    c, _ = cache(WarmPolicy())

    def half_loaded():
        with torch.device("meta"):
            module = torch.nn.Linear(2, 2)
        module.weight = torch.nn.Parameter(torch.zeros(2, 2))  # the bias never arrived
        return module

    with pytest.raises(MissingWeightsError, match=r"upsampler from /models/a.safetensors: 1 tensors.*bias"):
        c.get(key("upsampler"), half_loaded)
    assert c.resident() == []


def test_adopting_ledgers_of_an_object_without_any_fails_loudly():
    class NotAPipeline:
        model = object()

    with pytest.raises(PatchDriftError, match="holds no ModelLedger"):
        adopt_ledgers(NotAPipeline(), cache(WarmPolicy())[0])
