"""A random LoRA for a tiny model, written in the diffusers LoRA format (no peft, no download).

Keys are what ``save_lora_weights`` writes and ``load_lora_weights`` reads:
``{prefix}.{module}.lora_A.weight`` (rank x in) and ``{prefix}.{module}.lora_B.weight`` (out x rank)
for every attention projection; with no alpha in the file diffusers takes alpha = rank (scale 1).
Both matrices are random (peft would start B at zero, a LoRA that changes nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def random_lora_state(
    model: Any, rank: int = 4, seed: int = 0, std: float = 0.1, prefix: str = "transformer"
) -> dict[str, Any]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and any(name == t or name.endswith("." + t) for t in TARGETS):
            state[f"{prefix}.{name}.lora_A.weight"] = (
                torch.randn(rank, module.in_features, generator=generator) * std
            )
            state[f"{prefix}.{name}.lora_B.weight"] = (
                torch.randn(module.out_features, rank, generator=generator) * std
            )
    if not state:
        raise ValueError(f"{type(model).__name__} has no attention projections named {', '.join(TARGETS)}")
    return state


def write_random_lora(
    model: Any,
    dest: Path,
    rank: int = 4,
    seed: int = 0,
    std: float = 0.1,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a random LoRA for ``model`` (a pipeline's transformer) to ``dest`` (.safetensors)."""
    from safetensors.torch import save_file

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        random_lora_state(model, rank, seed, std), str(dest), metadata={"format": "pt", **(metadata or {})}
    )
    return dest


__all__ = ["random_lora_state", "write_random_lora"]


# --- LightX2V's key format ------------------------------------------------------------------------
# LightX2V writes Wan LoRAs in Wan's original module names under ``diffusion_model.``: low-rank pairs
# ``<module>.lora_down.weight`` (rank x in) / ``.lora_up.weight`` (out x rank) for large matrices, and
# plain deltas for the rest (``.diff`` weights, ``.diff_b`` biases, ``.diff_m`` the block modulation;
# LightX2V's tools/extract/lora_extractor.py). diffusers' `_convert_non_diffusers_wan_lora_to_diffusers`
# maps them back (``diff_b`` -> a lora_B bias; norm ``.diff`` and ``diff_m`` are dropped).
_WAN_ORIGINAL_NAMES = {
    "attn1.to_q": "self_attn.q",
    "attn1.to_k": "self_attn.k",
    "attn1.to_v": "self_attn.v",
    "attn1.to_out.0": "self_attn.o",
    "attn2.to_q": "cross_attn.q",
    "attn2.to_k": "cross_attn.k",
    "attn2.to_v": "cross_attn.v",
    "attn2.to_out.0": "cross_attn.o",
    "attn2.add_k_proj": "cross_attn.k_img",
    "attn2.add_v_proj": "cross_attn.v_img",
    "ffn.net.0.proj": "ffn.0",
    "ffn.net.2": "ffn.2",
}


def lightx2v_lora_state(transformer: Any, rank: int = 4, seed: int = 0, std: float = 0.05) -> dict[str, Any]:
    """A random LoRA for a diffusers `WanTransformer3DModel`, keyed as LightX2V's Wan LoRAs are."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {}
    for index, block in enumerate(transformer.blocks):
        prefix = f"diffusion_model.blocks.{index}"
        for ours, theirs in _WAN_ORIGINAL_NAMES.items():
            try:
                module = block.get_submodule(ours)
            except AttributeError:  # Wan 2.2 has no image projections (add_k_proj is None)
                continue
            state[f"{prefix}.{theirs}.lora_down.weight"] = (
                torch.randn(rank, module.in_features, generator=generator) * std
            )
            state[f"{prefix}.{theirs}.lora_up.weight"] = (
                torch.randn(module.out_features, rank, generator=generator) * std
            )
            if module.bias is not None:
                state[f"{prefix}.{theirs}.diff_b"] = (
                    torch.randn(module.out_features, generator=generator) * std
                )
        state[f"{prefix}.self_attn.norm_q.diff"] = torch.zeros(block.attn1.norm_q.weight.shape)
        state[f"{prefix}.diff_m"] = (
            torch.randn(tuple(block.scale_shift_table.shape), generator=generator) * std
        )
    return state


def build_asset(asset_id: str, folder: Path) -> list[Path]:
    """Write a tiny catalogue asset's LoRA files (one per target denoiser) into ``folder``."""
    import torch
    from safetensors.torch import save_file

    from i2v import catalogue
    from i2v.catalogue.assets import TINY_ASSET_MODELS, get_asset
    from i2v.tiny.build import instantiate

    asset = get_asset(asset_id)
    model_id, targets = TINY_ASSET_MODELS[asset_id]
    arch = catalogue.get(model_id).architecture
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for seed, (name, target) in enumerate(zip(asset.files, targets, strict=True)):
        torch.manual_seed(seed)
        transformer = instantiate(arch.component(target))
        dest = folder / name
        tmp = dest.with_name(f".{dest.name}.tmp")
        save_file(lightx2v_lora_state(transformer, seed=seed), str(tmp), metadata={"format": "pt"})
        tmp.replace(dest)
        written.append(dest)
    return written


__all__ += ["build_asset", "lightx2v_lora_state"]
