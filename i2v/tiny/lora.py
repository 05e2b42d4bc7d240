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
