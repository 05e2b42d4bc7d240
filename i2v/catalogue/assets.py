"""Files a preset needs besides the model's own repo: step-distillation LoRAs. Torch-free data.

An asset is fetched like a model (`i2v fetch`, ModelScope first, then the Hugging Face mirror and hub)
into ``<models_dir>/<asset id>/`` with its own manifest; only the named files are taken.

Sources (checked 2026-12 against the hubs' public listings; ModelScope ids are LightX2V's mirror
names, not checked against the live hub: fetch falls back to Hugging Face):

- lightx2v/Wan2.1-Distill-Loras: ``wan2.1_i2v_lora_rank64_lightx2v_4step.safetensors`` (739 MB), the
  4-step CFG-distilled I2V LoRA (LightX2V trained it on the 480P model; its docs pair it with both I2V
  sizes). Keys in Wan's original naming (``diffusion_model.blocks.N.self_attn.q.lora_down.weight``,
  ``.diff`` / ``.diff_b`` / ``.diff_m`` deltas), which diffusers' Wan loader converts.
- lightx2v/Wan2.2-Distill-Loras: the ``_1022`` rank-64 I2V A14B LoRAs, one per expert (high noise ->
  ``transformer``, low noise -> ``transformer_2``), 4 steps without CFG.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Asset:
    """Named files of a hub repo (duck-types the parts of a `ModelSpec` that `i2v.weights.fetch` reads).

    ``patterns`` instead of ``files``: every file of the repo they match (a whole text-encoder root),
    safetensors weights only. ``fetch_as``: the `i2v fetch` argument that brings it, when it is part of
    a model (LTX-2.3's single files and Gemma root: ``ltx-2.3``) rather than fetched by its own id."""

    id: str
    title: str
    modelscope_id: str | None
    hf_id: str | None
    files: tuple[str, ...]
    mib: tuple[float, ...] = ()  # each file's size as the hub lists it (the planner counts it unfused)
    variant: None = None
    tiny: bool = False
    patterns: tuple[str, ...] = ()
    fetch_as: str | None = None

    @property
    def allow_patterns(self) -> tuple[str, ...]:
        return self.patterns or self.files


WAN21_I2V_4STEP = "wan2.1_i2v_lora_rank64_lightx2v_4step.safetensors"
WAN22_A14B_HIGH = "wan2.2_i2v_A14b_high_noise_lora_rank64_lightx2v_4step_1022.safetensors"
WAN22_A14B_LOW = "wan2.2_i2v_A14b_low_noise_lora_rank64_lightx2v_4step_1022.safetensors"

ASSETS: dict[str, Asset] = {
    a.id: a
    for a in (
        Asset(
            "lightx2v-wan2.1-i2v-4step",
            "LightX2V 4-step distillation LoRA for Wan2.1 I2V 14B (rank 64)",
            "lightx2v/Wan2.1-Distill-Loras",
            "lightx2v/Wan2.1-Distill-Loras",
            (WAN21_I2V_4STEP,),
            (739e6 / 2**20,),
        ),
        Asset(
            "lightx2v-wan2.2-i2v-a14b-4step",
            "LightX2V 4-step distillation LoRAs for Wan2.2 I2V A14B (rank 64, one per expert)",
            "lightx2v/Wan2.2-Distill-Loras",
            "lightx2v/Wan2.2-Distill-Loras",
            (WAN22_A14B_HIGH, WAN22_A14B_LOW),
            (739e6 / 2**20, 739e6 / 2**20),
        ),
        # Made locally in LightX2V's key format for the tiny Wan models (i2v.tiny.lora).
        Asset(
            "tiny-lightx2v-wan2.1-i2v",
            "tiny LightX2V-format LoRA for tiny-wan2.1-i2v (tests)",
            None,
            None,
            ("tiny_wan2.1_i2v_lora_lightx2v.safetensors",),
            tiny=True,
        ),
        Asset(
            "tiny-lightx2v-wan2.2-i2v-a14b",
            "tiny LightX2V-format LoRAs for tiny-wan2.2-i2v-a14b, one per expert (tests)",
            None,
            None,
            (
                "tiny_wan2.2_high_noise_lora_lightx2v.safetensors",
                "tiny_wan2.2_low_noise_lora_lightx2v.safetensors",
            ),
            tiny=True,
        ),
    )
}
# Tiny assets: the tiny model whose transformer(s) each file fits, in file order.
TINY_ASSET_MODELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tiny-lightx2v-wan2.1-i2v": ("tiny-wan2.1-i2v", ("transformer",)),
    "tiny-lightx2v-wan2.2-i2v-a14b": ("tiny-wan2.2-i2v-a14b", ("transformer", "transformer_2")),
}


def lora_mib(path: str) -> float:
    """The listed size of an asset file, by file name (0 for files no asset lists)."""
    name = path.replace("\\", "/").rpartition("/")[2]
    for asset in ASSETS.values():
        if name in asset.files and asset.mib:
            return asset.mib[asset.files.index(name)]
    return 0.0


def get_asset(asset_id: str) -> Asset:
    try:
        return ASSETS[asset_id]
    except KeyError:
        raise KeyError(f"unknown asset {asset_id!r}; known: {', '.join(ASSETS)}") from None


__all__ = [
    "ASSETS",
    "TINY_ASSET_MODELS",
    "WAN21_I2V_4STEP",
    "WAN22_A14B_HIGH",
    "WAN22_A14B_LOW",
    "Asset",
    "get_asset",
    "lora_mib",
]
