import pytest

from i2v import catalogue
from i2v.request import InvalidRequestError, resolve


def test_defaults_then_preset_then_fields():
    spec = catalogue.get("i2vgen-xl")
    standard = resolve(spec, "standard")
    assert (standard.height, standard.width, standard.frames, standard.steps) == (512, 512, 16, 40)
    fast = resolve(spec, "fast")
    assert (fast.height, fast.frames, fast.steps) == (256, 8, 30)
    custom = resolve(spec, "fast", frames=12, seed=7)
    assert (custom.frames, custom.seed, custom.steps) == (12, 7, 30)


@pytest.mark.parametrize(
    ("model", "field", "value", "nearest", "rule_words"),
    [
        ("ltx-video", "frames", 100, 97, "8k+1"),
        ("ltx-2", "frames", 120, 121, "8k+1"),
        ("wan2.1-i2v-14b-480p", "frames", 80, 81, "4k+1"),
        ("wan2.1-i2v-14b-480p", "height", 470, 464, "multiple of 16"),
        ("ltx-video", "width", 700, 704, "multiple of 32"),
        ("i2vgen-xl", "height", 500, 512, "multiple of 64"),
    ],
)
def test_invalid_fields_name_field_value_rule_and_nearest(model, field, value, nearest, rule_words):
    spec = catalogue.get(model)
    with pytest.raises(InvalidRequestError) as info:
        resolve(spec, "standard", **{field: value})
    err = info.value
    assert (err.field, err.value, err.nearest) == (field, value, nearest)
    text = str(err)
    assert f"`{field}`" in text and str(value) in text and rule_words in text and str(nearest) in text
    # the suggested value is itself accepted
    resolve(spec, "standard", **{field: nearest})


@pytest.mark.parametrize(
    ("field", "value"),
    [("steps", 0), ("steps", 10_000), ("guidance", -1.0), ("fps", 0), ("seed", -3), ("frames", "many")],
)
def test_out_of_range_scalars(field, value):
    with pytest.raises(InvalidRequestError) as info:
        resolve(catalogue.get("svd-xt"), "standard", **{field: value})
    assert info.value.field == field


def test_unknown_preset_and_field():
    spec = catalogue.get("svd-xt")
    with pytest.raises(InvalidRequestError, match="preset"):
        resolve(spec, "ultra")
    with pytest.raises(InvalidRequestError, match="colour"):
        resolve(spec, "standard", colour=3)


def test_unknown_model_lists_valid_ids():
    with pytest.raises(catalogue.UnknownModelError) as info:
        catalogue.get("sora")
    text = str(info.value)
    assert "'sora'" in text
    for spec in catalogue.all_specs(include_tiny=False):
        assert spec.id in text


def test_every_preset_of_every_model_is_valid():
    for spec in catalogue.all_specs():
        for preset in ("fast", "standard", "hq"):
            resolve(spec, preset)
