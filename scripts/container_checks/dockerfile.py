"""Dockerfiles read as data: instructions with continuations joined, stages, the external base images."""

from __future__ import annotations

import re
from pathlib import Path

from .runner import ROOT

DOCKERFILES = {"cuda": ROOT / "docker/Dockerfile.cuda", "cann": ROOT / "docker/Dockerfile.cann"}
STAGES = ("base", "deps", "app", "weights", "runtime", "test")
# docker-bake.hcl's cpu target: Dockerfile.cuda on plain Ubuntu (tests/test_compose_files.py keeps them equal).
CPU_BASE = "ubuntu:22.04"


def joined_lines(dockerfile: Path) -> list[str]:
    out, current = [], ""
    for raw in dockerfile.read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        if raw.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        current += raw.rstrip("\\").rstrip() + " " if raw.rstrip().endswith("\\") else raw
        if not raw.rstrip().endswith("\\"):
            out.append(current.strip())
            current = ""
    return [line for line in out if line]


def stages(dockerfile: Path) -> dict[str, list[str]]:
    """Stage name -> its instructions after FROM (global ARGs before the first FROM under "")."""
    found: dict[str, list[str]] = {"": []}
    current = ""
    for line in joined_lines(dockerfile):
        words = line.split()
        if words[0].upper() == "FROM":
            rest = [w for w in words[1:] if not w.startswith("--")]
            current = rest[2] if len(rest) >= 3 and rest[1].lower() == "as" else f"stage{len(found)}"
            found[current] = [line]
        else:
            found[current].append(line)
    return found


def final_stage(dockerfile: Path, name: str = "runtime") -> list[str]:
    """What ships: the `runtime` stage (the build target of bake, compose and the Makefile)."""
    return stages(dockerfile)[name]


def base_images(dockerfile: Path, args: dict[str, str] | None = None) -> list[str]:
    """External images the FROM lines name, global ARG defaults (and `args`) substituted."""
    values: dict[str, str] = {}
    known: set[str] = set()
    images: list[str] = []

    def expand(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), ""), text)

    seen_from = False
    for line in joined_lines(dockerfile):
        parts = line.split()
        word = parts[0].upper()
        if word == "ARG" and not seen_from:
            name, _, default = parts[1].partition("=")
            values[name] = (args or {}).get(name, expand(default.strip('"')))
        elif word == "FROM":
            seen_from = True
            words = [p for p in parts[1:] if not p.startswith("--")]
            image = expand(words[0])
            if len(words) >= 3 and words[1].lower() == "as":
                known.add(words[2])
            if image not in known and image != "scratch" and image not in images:
                images.append(image)
    return images
