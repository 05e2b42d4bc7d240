"""Which of a repo's files a pipeline needs: the catalogue's patterns, one precision variant, safetensors only.

Pure functions over a listing (`RemoteFile`s), no I/O, so every hub gets the same choice:

1. the catalogue's `allow_patterns` (fnmatch, as both hub clients match them);
2. per component folder, one weight variant: the spec's (`fp16`) where the folder has it, else the
   default files - which is what diffusers' `from_pretrained(variant=...)` loads; other variants
   (`*.fp16.safetensors` next to the default files, say) are left out;
3. a component with pickle weights (.bin/.pt/.ckpt/...) and no safetensors is refused
   (`PickleOnlyError`): the runtime loads with `use_safetensors=True` and never runs pickle code.
   Code files (*.py) are never fetched, so nothing needs `trust_remote_code`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from i2v.weights.errors import NotAPipelineError, PickleOnlyError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# Weight variants diffusers and transformers write as `name.<variant>.safetensors`.
KNOWN_VARIANTS = frozenset(
    {"fp16", "bf16", "fp32", "fp8", "fp8_e4m3fn", "fp8_e5m2", "int8", "ema", "non_ema"}
)
_SHARD = re.compile(r"-\d{5}-of-\d{5}$")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a hub listing: what the hub says it is (sha256 where it publishes one)."""

    path: str
    size: int
    sha256: str | None = None  # ModelScope lists it for every file, Hugging Face for LFS files
    git_oid: str | None = None  # Hugging Face's git blob id (sha1) for small non-LFS files


@dataclass(frozen=True)
class Selection:
    files: tuple[RemoteFile, ...]  # what to fetch
    excluded: tuple[str, ...]  # matched the catalogue's patterns but left out (other variants)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def weight_variant(name: str) -> tuple[bool, str | None]:
    """(is a safetensors weight or index file, its variant) for a file name (no folder)."""
    if name.endswith(".safetensors"):
        stem = _SHARD.sub("", name[: -len(".safetensors")])
        head, _, last = stem.rpartition(".")
        return True, last if head and last in KNOWN_VARIANTS else None
    match = re.fullmatch(r".+\.safetensors\.index(?:\.([\w]+))?\.json", name)
    if match:
        return True, match.group(1)
    return False, None


def matches(path: str, patterns: tuple[str, ...] | list[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in patterns)


def select_files(
    repo: str, listing: list[RemoteFile], allow_patterns: tuple[str, ...], variant: str | None
) -> Selection:
    """The files of `listing` a pipeline needs; raises `PickleOnlyError` / `NotAPipelineError`."""
    paths = {f.path for f in listing}
    unsafe = sorted(p for p in paths if p.startswith("/") or "\\" in p or ".." in p.split("/"))
    if unsafe:
        raise NotAPipelineError(f"`{repo}` lists paths outside the repo ({', '.join(unsafe[:3])}); refused")
    if "model_index.json" not in paths:
        raise NotAPipelineError(
            f"`{repo}` has no model_index.json at its root: not a diffusers pipeline repo"
        )
    allowed = [f for f in listing if matches(f.path, allow_patterns) and not f.path.endswith(".py")]
    components = {f.path.rpartition("/")[0] for f in allowed} - {""}
    _refuse_pickle_only(repo, listing, components)
    by_component: dict[str, dict[str | None, list[RemoteFile]]] = {}
    chosen: list[RemoteFile] = []
    for f in allowed:
        folder, _, name = f.path.rpartition("/")
        is_weight, file_variant = weight_variant(name)
        if is_weight:
            by_component.setdefault(folder, {}).setdefault(file_variant, []).append(f)
        else:
            chosen.append(f)
    excluded: list[str] = []
    for folder, groups in sorted(by_component.items()):
        pick = variant if variant in groups else None if None in groups else ""
        if pick == "":
            raise NotAPipelineError(
                f"`{repo}`: component `{folder}` has no {variant or 'default'} safetensors "
                f"weights (it has: {_variants(groups)})"
            )
        for label, files in groups.items():
            if label == pick:
                chosen.extend(files)
            else:
                excluded.extend(f.path for f in files)
    _refuse_missing_weights(repo, listing, components, set(by_component), variant)
    chosen.sort(key=lambda f: f.path)
    return Selection(files=tuple(chosen), excluded=tuple(sorted(excluded)))


def select_named(repo: str, listing: list[RemoteFile], names: tuple[str, ...]) -> Selection:
    """Exactly the named files of ``listing`` (a catalogue asset: LoRA files at a repo's root)."""
    by_path = {f.path: f for f in listing}
    missing = [n for n in names if n not in by_path]
    if missing:
        have = ", ".join(sorted(p for p in by_path if p.endswith(".safetensors"))[:6]) or "no safetensors"
        raise NotAPipelineError(f"`{repo}` has no {', '.join(missing)} (it has: {have})")
    unsafe = [n for n in names if not n.endswith(".safetensors")]
    if unsafe:
        raise NotAPipelineError(f"`{repo}`: {', '.join(unsafe)} is not a safetensors file; refused")
    return Selection(files=tuple(by_path[n] for n in names), excluded=())


def select_patterns(repo: str, listing: list[RemoteFile], patterns: tuple[str, ...]) -> Selection:
    """Every file of ``listing`` the patterns match (a whole model root), never code; refuses pickle
    weights without safetensors beside them (`PickleOnlyError`)."""
    unsafe = sorted(
        f.path for f in listing if f.path.startswith("/") or "\\" in f.path or ".." in f.path.split("/")
    )
    if unsafe:
        raise NotAPipelineError(f"`{repo}` lists paths outside the repo ({', '.join(unsafe[:3])}); refused")
    chosen = [f for f in listing if matches(f.path, patterns) and not f.path.endswith(".py")]
    if not any(f.path.endswith(".safetensors") for f in chosen):
        pickles = sorted(f.path for f in listing if f.path.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise PickleOnlyError(repo, ".", pickles)
        raise NotAPipelineError(f"`{repo}` has no safetensors weights matching {', '.join(patterns)}")
    chosen = [f for f in chosen if not f.path.endswith(PICKLE_SUFFIXES)]
    return Selection(files=tuple(sorted(chosen, key=lambda f: f.path)), excluded=())


def _variants(groups: dict[str | None, list[RemoteFile]] | set[str | None]) -> str:
    return ", ".join(sorted(v or "default" for v in groups))


def _refuse_missing_weights(
    repo: str, listing: list[RemoteFile], components: set[str], served: set[str], variant: str | None
) -> None:
    """A component with safetensors in the repo none of which the catalogue's patterns take."""
    for folder in sorted(components - served):
        present = {
            weight_variant(f.path.rpartition("/")[2])[1]
            for f in listing
            if f.path.rpartition("/")[0] == folder and f.path.endswith(".safetensors")
        }
        if present:
            raise NotAPipelineError(
                f"`{repo}`: component `{folder}` has no {variant or 'default'} safetensors "
                f"weights the catalogue's patterns take (it has: {_variants(present)})"
            )


def _refuse_pickle_only(repo: str, listing: list[RemoteFile], components: set[str]) -> None:
    """A component folder (one the patterns take files from) with pickle weights and no safetensors."""
    pickles: dict[str, list[str]] = {}
    safetensors: set[str] = set()
    for f in listing:
        folder, _, name = f.path.rpartition("/")
        if name.endswith(".safetensors"):
            safetensors.add(folder)
        elif name.endswith(PICKLE_SUFFIXES):
            pickles.setdefault(folder, []).append(f.path)
    for folder in sorted(pickles):
        if folder in components and folder not in safetensors:
            raise PickleOnlyError(repo, folder, sorted(pickles[folder]))
