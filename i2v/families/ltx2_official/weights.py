"""Which files each mode reads, where they come from, and where they lie on disk. Torch-free.

Hub ids (ModelScope and Hugging Face use the same ones; the hubs are not reachable from here, so
the names are the ones the seed fetched and LTX2-OFFICIAL.md lists, not a listing we made):

- ``Lightricks/LTX-2.3``: the single-file checkpoints (transformer, video VAE, audio VAE, vocoder
  and text projection in one ``.safetensors`` with a ``"config"`` metadata key), the distilled
  LoRA and the x2 spatial upsampler (its own file and config). The x1.5 upsampler does not fit the
  two-stage pipelines (seed problem 5), so only x2 is listed.
- ``google/gemma-3-12b-it-qat-q4_0-unquantized``: the whole repository, in a folder of its own
  (the package finds the Gemma root's files by name: ``tokenizer.model``,
  ``preprocessor_config.json``, ``model*.safetensors``).

`files_for(mode)` is what ``i2v fetch ltx-2.3 --mode M`` needs; `ModelFiles.locate(folder)` finds
them under one models folder laid out as ``<folder>/LTX-2.3/<file>`` and
``<folder>/gemma-3-12b-it-qat-q4_0-unquantized/`` (the fetch layout; the tiny set uses it too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from .modes import MODE_NAMES, ModeName, WeightRole, get

if TYPE_CHECKING:
    from i2v.catalogue.assets import Asset

LTX_REPO = "Lightricks/LTX-2.3"
GEMMA_REPO = "google/gemma-3-12b-it-qat-q4_0-unquantized"
LTX_FOLDER = "LTX-2.3"
GEMMA_FOLDER = "gemma-3-12b-it-qat-q4_0-unquantized"


@dataclass(frozen=True)
class WeightFile:
    """One thing to fetch: a file of a repository, or (``filename=None``) the whole repository."""

    role: WeightRole
    repo: str
    filename: str | None
    folder: str  # sub-folder of the models folder it goes to (sizes: arch.py)

    @property
    def allow_patterns(self) -> tuple[str, ...]:
        """Patterns for snapshot_download-style fetchers (the whole repo when filename is None)."""
        return ("*",) if self.filename is None else (self.filename,)


WEIGHT_FILES: Mapping[WeightRole, WeightFile] = MappingProxyType(
    {
        "dev": WeightFile("dev", LTX_REPO, "ltx-2.3-22b-dev.safetensors", LTX_FOLDER),
        "distilled": WeightFile("distilled", LTX_REPO, "ltx-2.3-22b-distilled-1.1.safetensors", LTX_FOLDER),
        "distilled-lora": WeightFile(
            "distilled-lora", LTX_REPO, "ltx-2.3-22b-distilled-lora-384-1.1.safetensors", LTX_FOLDER
        ),
        "upsampler-x2": WeightFile(
            "upsampler-x2", LTX_REPO, "ltx-2.3-spatial-upscaler-x2-1.1.safetensors", LTX_FOLDER
        ),
        "gemma": WeightFile("gemma", GEMMA_REPO, None, GEMMA_FOLDER),
    }
)


# The Gemma root, whole: weights (safetensors only), configs, tokenizer, image processor; never code.
GEMMA_PATTERNS = (
    "*.safetensors",
    "*.safetensors.index.json",
    "*.json",
    "tokenizer.model",
    "*.txt",
    "*.jinja",
)


def fetch_parts(model_id: str, modes: tuple[str, ...]) -> tuple[Asset, ...]:
    """What ``i2v fetch <model_id> [--mode M ...]`` brings: the single files ``modes`` read from
    Lightricks/LTX-2.3 into ``<model>/LTX-2.3/``, and the Gemma root into ``<model>/gemma-.../``, each
    with its own manifest. ModelScope uses the same ids for both (the Gemma id there is not checked
    against the live hub; the fetch falls back to the Hugging Face mirror and hub, where it is gated:
    HF_TOKEN)."""
    from i2v.catalogue.assets import Asset

    names = tuple(
        sorted({w.filename for mode in modes for w in files_for(mode) if w.repo == LTX_REPO and w.filename})
    )
    flags = "".join(f" --mode {m}" for m in modes) if set(modes) != set(MODE_NAMES) else ""
    return (
        Asset(
            f"{model_id}/{LTX_FOLDER}",
            "LTX-2.3 single-file checkpoints, distilled LoRA and x2 upsampler",
            LTX_REPO,
            LTX_REPO,
            names,
            fetch_as=model_id + flags,
        ),
        Asset(
            f"{model_id}/{GEMMA_FOLDER}",
            "Gemma 3 12B (LTX-2.3's text encoder root)",
            GEMMA_REPO,
            GEMMA_REPO,
            (),
            patterns=GEMMA_PATTERNS,
            fetch_as=model_id + flags,
        ),
    )


def files_for(mode: ModeName | str) -> tuple[WeightFile, ...]:
    """The files `mode` reads, in the mode table's order (IC-LoRAs come with the request)."""
    return tuple(WEIGHT_FILES[role] for role in get(mode).weights)


class MissingWeightsError(FileNotFoundError):
    """A mode needs a file the models folder does not have; the message names it and its repo."""


@dataclass(frozen=True)
class ModelFiles:
    """Paths of one LTX-2.3 model set on disk; None where a file is absent."""

    dev: Path | None
    distilled: Path | None
    distilled_lora: Path | None
    upsampler_x2: Path | None
    gemma_root: Path | None

    @classmethod
    def locate(cls, folder: str | Path) -> ModelFiles:
        folder = Path(folder)

        def file(role: WeightRole) -> Path | None:
            spec = WEIGHT_FILES[role]
            path = folder / spec.folder / spec.filename  # type: ignore[operator]
            return path if path.is_file() else None

        gemma = folder / GEMMA_FOLDER
        return cls(
            dev=file("dev"),
            distilled=file("distilled"),
            distilled_lora=file("distilled-lora"),
            upsampler_x2=file("upsampler-x2"),
            gemma_root=gemma if _is_gemma_root(gemma) else None,
        )

    def path(self, role: WeightRole) -> Path | None:
        return {
            "dev": self.dev,
            "distilled": self.distilled,
            "distilled-lora": self.distilled_lora,
            "upsampler-x2": self.upsampler_x2,
            "gemma": self.gemma_root,
        }[role]

    def require(self, mode: ModeName | str) -> None:
        """Raise `MissingWeightsError` naming every file `mode` needs and this set lacks."""
        missing = [WEIGHT_FILES[role] for role in get(mode).weights if self.path(role) is None]
        if missing:
            what = "; ".join(
                f"{w.filename or 'the whole repository'} from {w.repo} (into {w.folder}/)" for w in missing
            )
            raise MissingWeightsError(f"mode {mode!r} needs {what}")


def _is_gemma_root(folder: Path) -> bool:
    """The files ltx-core 1.0.0 looks the Gemma root up by (base_encoder.module_ops_from_gemma_root,
    model_ledger.build_model_builders): a tokenizer, the image processor config, model weights."""
    if not folder.is_dir():
        return False
    return all(
        any(folder.rglob(pattern))
        for pattern in ("tokenizer.model", "preprocessor_config.json", "model*.safetensors")
    )
