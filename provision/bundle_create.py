"""`make bundle MODEL=...`: write the air-gapped bundle (provision/bundle_format.py) on a host with network.

The image must be present locally (`make up` or `make build-*` first); its platform and id go into
the bundle. The model folder must hold the model's i2v-manifest.json (`i2v fetch` writes it). The tar is
written as `<out>.part` beside `<out>` and renamed when complete: nothing half-written under the name.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from provision.bundle_format import (
    COMPOSE,
    FORMAT,
    IMAGE,
    META,
    MODELS,
    SUMS,
    BundleError,
    BundleMeta,
    render_sums,
    sha256_file,
)

MANIFEST = "i2v-manifest.json"


@dataclass(frozen=True)
class Created:
    path: Path
    size_bytes: int
    meta: BundleMeta
    files: int


def inspect_image(image: str, docker: str = "docker") -> tuple[str, str]:
    """(platform, id) of a local image, or BundleError saying how to get it."""
    done = subprocess.run(
        [docker, "image", "inspect", "--format", "{{.Os}}/{{.Architecture}} {{.Id}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise BundleError(
            f"image {image} is not here ({why}); build or pull it first (make up, or make build-cpu / "
            "build-cuda / build-cann)"
        )
    platform, image_id = done.stdout.split()
    return platform, image_id


def model_files(models_dir: Path, model: str) -> list[Path]:
    folder = models_dir / model
    if not (folder / MANIFEST).is_file():
        raise BundleError(
            f"{folder / MANIFEST} is missing: the bundle carries a fetched model with its manifest; "
            f"run: i2v fetch {model} --dir {models_dir}"
        )
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise BundleError(f"{path}: only regular files and folders go into a bundle")
        if path.is_file():
            files.append(path)
    return files


def create(
    *, image: str, model: str, models_dir: Path, compose: Path, out: Path, docker: str = "docker"
) -> Created:
    platform, image_id = inspect_image(image, docker)
    model_files(models_dir, model)  # refuse before the (long) docker save
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".i2v-bundle-", dir=out.parent) as tmp:
        saved = Path(tmp) / IMAGE
        done = subprocess.run(
            [docker, "save", "-o", str(saved), image], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BundleError(f"docker save {image} failed: {done.stderr.strip()}")
        meta = BundleMeta(
            FORMAT,
            image,
            image_id,
            platform,
            model,
            datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        )
        return write_bundle(meta, image_tar=saved, compose=compose, models_dir=models_dir, out=out)


def write_bundle(meta: BundleMeta, *, image_tar: Path, compose: Path, models_dir: Path, out: Path) -> Created:
    """The tar itself, from a saved image: `<out>.part`, then renamed."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    models = model_files(models_dir, meta.model)
    with tempfile.TemporaryDirectory(prefix=".i2v-bundle-", dir=out.parent) as tmp:
        meta_file = Path(tmp) / META
        meta_file.write_text(meta.to_json())
        members: dict[str, Path] = {META: meta_file, IMAGE: image_tar, COMPOSE: compose}
        for path in models:
            members[f"{MODELS}/{meta.model}/{path.relative_to(models_dir / meta.model).as_posix()}"] = path
        sums_file = Path(tmp) / SUMS
        sums_file.write_text(render_sums({name: sha256_file(path) for name, path in members.items()}))
        part = out.with_name(out.name + ".part")
        try:
            with tarfile.open(part, "w", format=tarfile.PAX_FORMAT) as tar:
                tar.add(meta_file, arcname=META, recursive=False, filter=_plain)
                tar.add(sums_file, arcname=SUMS, recursive=False, filter=_plain)
                for name, path in members.items():
                    if name != META:
                        tar.add(path, arcname=name, recursive=False, filter=_plain)
            os.replace(part, out)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise BundleError(f"cannot write {out}: {exc.strerror or exc}; nothing was written") from exc
    return Created(out, out.stat().st_size, meta, len(members) + 1)


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Members owned by root, no user names: the loading host's users differ."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def default_out(image: str, model: str, folder: Path = Path("dist")) -> Path:
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else "latest"
    return folder / f"i2v-bundle-{tag}-{model}.tar"


__all__ = ["Created", "create", "default_out", "inspect_image", "model_files", "write_bundle"]
