"""The air-gapped round trip with the real tools: make bundle, remove the image and the models, make load,
make up offline (I2V_OFFLINE=1: no pull), one job; and a truncated / tampered copy refused by make load."""

from __future__ import annotations

import json
import shutil
import tarfile
import time

from .runner import DOCKER, Runner, env_value, tail
from .stack import MODEL, Stack


def bundle_round_trip(r: Runner, stack: Stack) -> None:
    image = env_value(stack.env_file, "I2V_IMAGE")
    bundle = r.work / "bundle" / f"i2v-bundle-cpu-{MODEL}.tar"
    shutil.rmtree(bundle.parent, ignore_errors=True)
    with r.check(f"make bundle MODEL={MODEL}: image, model folder, compose.yaml, SHA256SUMS in one tar") as c:
        stack.make("bundle", f"MODEL={MODEL}", f"OUT={bundle}", log="bundle")
        with tarfile.open(bundle) as tar:
            names = tar.getnames()
            meta = json.load(tar.extractfile("i2v-bundle.json"))
        assert (
            names[:2] == ["i2v-bundle.json", "SHA256SUMS"]
            and "image.tar" in names
            and "compose.yaml" in names
        )
        assert f"models/{MODEL}/i2v-manifest.json" in names and meta["image"] == image, (names[:6], meta)
        size = bundle.stat().st_size
        r.report.figures.update(bundle_bytes=size, bundle_files=len(names))
        c["detail"] = f"{size / 1e6:,.0f} MB, {len(names)} files, {meta['platform']}"
    for name, damage in (("truncated", truncate), ("tampered", tamper)):
        with r.check(f"make load refuses a {name} bundle, naming the file, before loading anything") as c:
            broken = bundle.with_name(f"{name}.tar")
            expected = damage(bundle, broken)
            done = stack.make("load", f"BUNDLE={broken}", log=f"load-{name}", check=False, timeout=600)
            text = (r.logs / f"load-{name}.log").read_text()
            assert done.returncode != 0 and expected in text, (
                f"expected {expected!r}:\n{tail(r.logs / f'load-{name}.log', 6)}"
            )
            broken.unlink()
            c["detail"] = next(line for line in text.splitlines() if expected in line)[:120]
    with r.check("remove the image and the models: the host has neither") as c:
        r.run([DOCKER, "rmi", "-f", image], "bundle")
        shutil.rmtree(stack.models / MODEL)
        assert r.run([DOCKER, "image", "inspect", image], "bundle", check=False).returncode != 0
        c["detail"] = f"{image} and {stack.models / MODEL} gone"
    try:
        with r.check("make load, then make up offline (no pull), then one job") as c:
            start = time.monotonic()
            stack.make("load", f"BUNDLE={bundle}", log="load")
            loaded = time.monotonic()
            assert env_value(stack.env_file, "I2V_OFFLINE") == "1"
            stack.make("up", log="up-offline", timeout=900)
            up_text = (r.logs / "up-offline.log").read_text()
            assert f"{image} is here" in up_text and "docker pull" not in up_text, tail(
                r.logs / "up-offline.log", 8
            )
            healthy = time.monotonic()
            took, summary = stack.job("offline")
            total = time.monotonic() - start
            r.report.figures.update(
                load_seconds=round(loaded - start, 1),
                load_to_healthy_seconds=round(healthy - start, 1),
                load_to_finished_job_seconds=round(total, 1),
            )
            c["detail"] = (
                f"load {loaded - start:.0f} s, healthy at {healthy - start:.0f} s, job done at {total:.0f} s "
                f"(make load -> finished job); {summary}"
            )
    finally:
        stack.down()


def truncate(bundle, broken) -> str:
    """The first half of the file: it cuts the image member."""
    with open(bundle, "rb") as source, open(broken, "wb") as out:
        out.write(source.read(bundle.stat().st_size // 2))
    return "is truncated: image.tar has"


def tamper(bundle, broken) -> str:
    """One byte flipped inside the model's manifest, the size unchanged."""
    shutil.copy(bundle, broken)
    name = f"models/{MODEL}/i2v-manifest.json"
    with tarfile.open(broken) as tar:
        member = tar.getmember(name)
    with open(broken, "r+b") as handle:
        handle.seek(member.offset_data + 2)
        byte = handle.read(1)
        handle.seek(member.offset_data + 2)
        handle.write(bytes([byte[0] ^ 0x20]))
    return f"{name} has sha256"
