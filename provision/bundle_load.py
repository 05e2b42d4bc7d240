"""`make load BUNDLE=...`: check an air-gapped bundle, then load its image and place its model.

    python3 -m provision.bundle_load BUNDLE [--env-file .env] [--models-dir DIR]    # stdlib only

Nothing is loaded or placed until every check passed, in this order:
  1. every member lies wholly inside the file (a truncated copy is named with the member it cuts);
  2. i2v-bundle.json: a bundle for another platform (arm64 vs amd64) is refused before anything is read;
  3. SHA256SUMS lists exactly the members, each path stays inside the bundle's folder;
  4. every member is extracted to a staging folder beside the models folder, hashed on the way; one
     that differs from SHA256SUMS is named and the staging folder removed.
Then `docker load`, the image id checked, the model folder renamed into place (an older copy replaced),
and the env file told to run offline: I2V_OFFLINE=1, I2V_MODEL, I2V_MODELS_DIR (temp file + rename).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from provision.bundle_format import (
    CHUNK,
    COMPOSE,
    IMAGE,
    META,
    MODELS,
    SUMS,
    BundleError,
    BundleMeta,
    host_platform,
    parse_sums,
    safe_member,
)
from provision.envfile import Entry, render, write_atomic


@dataclass(frozen=True)
class Checked:
    meta: BundleMeta
    staging: Path  # extracted and verified members
    sums: dict[str, str]


def _members_within_file(tar: tarfile.TarFile, path: Path) -> list[tarfile.TarInfo]:
    size = path.stat().st_size
    members = []
    try:
        for member in tar:
            if member.offset_data + member.size > size:
                present = max(0, size - member.offset_data)
                raise BundleError(
                    f"{path} is truncated: {member.name} has {present:,} of its {member.size:,} bytes; "
                    "copy the bundle again"
                )
            members.append(member)
    except (tarfile.ReadError, EOFError) as exc:
        last = members[-1].name if members else "its first member"
        raise BundleError(
            f"{path} is truncated or not a tar: it ends after {last} ({exc}); copy the bundle again"
        ) from exc
    return members


def _read_small(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str, path: Path) -> str:
    if name not in members:
        raise BundleError(f"{path} has no {name}: not an i2v bundle (make one with make bundle MODEL=...)")
    handle = tar.extractfile(members[name])
    return handle.read().decode("utf-8") if handle else ""


def check(path: Path, staging_parent: Path, platform: str | None = None) -> Checked:
    """Every check of the module docstring; returns the verified members in a staging folder."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such bundle file")
    platform = platform or host_platform()
    try:
        tar = tarfile.open(path, "r:")
    except (tarfile.ReadError, EOFError) as exc:
        raise BundleError(
            f"{path} is not a tar file ({exc}); is it an i2v bundle, copied completely?"
        ) from exc
    with tar:
        members = {m.name: m for m in _members_within_file(tar, path)}
        meta = BundleMeta.from_json(_read_small(tar, members, META, path), str(path))
        if meta.platform != platform:
            raise BundleError(
                f"{path} holds {meta.image} for {meta.platform}; this host is {platform}: make the bundle "
                f"for {platform} (on such a host, or build that platform's image); nothing was loaded"
            )
        sums = parse_sums(_read_small(tar, members, SUMS, path), str(path))
        listed, present = set(sums), set(members) - {SUMS}
        for name in sorted(present | listed):
            safe_member(name, str(path))
        if listed - present:
            raise BundleError(f"{path}: {SUMS} lists {sorted(listed - present)[0]}, which the bundle lacks")
        if present - listed:
            raise BundleError(
                f"{path}: {sorted(present - listed)[0]} is in the bundle but not in {SUMS}; refused"
            )
        for name in (IMAGE, COMPOSE):
            if name not in present:
                raise BundleError(f"{path} has no {name}")
        staging_parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".i2v-load-", dir=staging_parent))
        try:
            for name in sorted(listed):
                _extract_checked(tar, members[name], staging / name, sums[name], path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return Checked(meta, staging, sums)


def _extract_checked(
    tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, want: str, path: Path
) -> None:
    if not member.isfile():
        raise BundleError(f"{path}: {member.name} is not a regular file; refused")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    source = tar.extractfile(member)
    with open(target, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != want:
        raise BundleError(
            f"{path}: {member.name} has sha256 {digest.hexdigest()[:16]}..., {SUMS} says "
            f"{want[:16]}...: the bundle was changed or damaged; nothing was loaded; make a new one"
        )


def docker_load(checked: Checked, docker: str = "docker") -> None:
    try:
        done = subprocess.run(
            [docker, "load", "-i", str(checked.staging / IMAGE)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise BundleError(
            f"{docker}: not found; the bundle checked out, but loading its image needs Docker Engine"
        ) from exc
    if done.returncode != 0:
        raise BundleError(f"docker load of {checked.meta.image} failed: {done.stderr.strip()}")
    found = subprocess.run(
        [docker, "image", "inspect", "--format", "{{.Id}}", checked.meta.image],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if found != checked.meta.image_id:
        raise BundleError(
            f"after docker load, {checked.meta.image} is {found or 'missing'}, not the bundle's "
            f"{checked.meta.image_id}"
        )


def place_model(checked: Checked, models_dir: Path) -> Path:
    """Rename the verified model folder into models_dir; an older copy is replaced, never merged."""
    model = checked.meta.model
    source, target = checked.staging / MODELS / model, models_dir / model
    models_dir.mkdir(parents=True, exist_ok=True)
    old = models_dir / f".{model}.replaced-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def mark_offline(env_file: Path, checked: Checked, models_dir: Path) -> None:
    old = env_file.read_text(encoding="utf-8") if env_file.exists() else None
    entries = [
        Entry("I2V_OFFLINE", "1", "loaded from an air-gapped bundle: never pull, never download (make load)"),
        Entry("I2V_MODEL", checked.meta.model, "Catalogue id of the model to serve (`i2v models`)."),
        Entry(
            "I2V_MODELS_DIR",
            str(models_dir),
            "host folder for model weights (mounted at /models in the containers)",
        ),
    ]
    write_atomic(env_file, render(entries, old))


def load(
    path: Path, *, env_file: Path, models_dir: Path, docker: str = "docker", platform: str | None = None
) -> tuple[Checked, Path]:
    checked = check(path, models_dir.parent if models_dir.parent != models_dir else models_dir, platform)
    try:
        docker_load(checked, docker)
        placed = place_model(checked, models_dir)
        mark_offline(env_file, checked, models_dir)
    finally:
        shutil.rmtree(checked.staging, ignore_errors=True)
    return checked, placed


def _env_value(env_file: Path, key: str) -> str | None:
    from provision.envfile import existing_values

    return existing_values(env_file).get(key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check an i2v bundle, load its image, place its model.")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--env-file", type=Path, default=Path(".env"))
    parser.add_argument(
        "--models-dir", type=Path, help="default: I2V_MODELS_DIR of the env file, else ./models"
    )
    parser.add_argument("--docker", default=os.environ.get("DOCKER", "docker"))
    args = parser.parse_args(argv)
    models_dir = (args.models_dir or Path(_env_value(args.env_file, "I2V_MODELS_DIR") or "models")).resolve()
    start = time.monotonic()
    try:
        checked, placed = load(args.bundle, env_file=args.env_file, models_dir=models_dir, docker=args.docker)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 6
    print(
        f"loaded {checked.meta.image} ({checked.meta.platform}); {checked.meta.model} -> {placed}; "
        f"{args.env_file}: I2V_OFFLINE=1 ({len(checked.sums)} files checked, {time.monotonic() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
