"""The air-gapped bundle's checks (provision/bundle_load.py) on real tar files made by the real writer.

The image member here is a small stand-in file (these tests never reach `docker load`: each is about a
bundle refused before it); the bundle round trip with a real `docker save` / `docker load`, the tiny model
and a job is in the container checks (tests/test_containers.py). `make up`'s image step is at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from provision import bundle_create, bundle_load
from provision import image as image_mod
from provision.bundle_format import FORMAT, BundleError, BundleMeta, host_platform

ROOT = Path(__file__).resolve().parents[1]
MODEL = "tiny-i2vgen-xl"


@pytest.fixture
def made(tmp_path) -> tuple[Path, BundleMeta]:
    models = tmp_path / "src-models"
    folder = models / MODEL
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(os.urandom(300_000))
    (folder / "model_index.json").write_text('{"_class_name": "I2VGenXLPipeline"}\n')
    (folder / "i2v-manifest.json").write_text('{"files": []}\n')
    image_tar = tmp_path / "saved-image.tar"
    image_tar.write_bytes(os.urandom(2_000_000))
    meta = BundleMeta(
        FORMAT,
        "docker.io/i2vdeploy/i2v-deploy:0.1.0-cpu",
        "sha256:" + "ab" * 32,
        host_platform(),
        MODEL,
        "2026-12-01T00:00:00+00:00",
    )
    created = bundle_create.write_bundle(
        meta,
        image_tar=image_tar,
        compose=ROOT / "compose.yaml",
        models_dir=models,
        out=tmp_path / "out" / "bundle.tar",
    )
    assert created.path.exists() and not created.path.with_name("bundle.tar.part").exists()
    return created.path, meta


def staging_dirs(parent: Path) -> list[Path]:
    return list(parent.glob(".i2v-load-*")) if parent.exists() else []


def test_a_complete_bundle_passes_every_check(made, tmp_path):
    path, meta = made
    checked = bundle_load.check(path, tmp_path / "deploy")
    assert checked.meta == meta
    assert (
        checked.staging / "models" / MODEL / "unet" / "diffusion_pytorch_model.safetensors"
    ).stat().st_size == 300_000
    assert set(checked.sums) == {
        "i2v-bundle.json",
        "image.tar",
        "compose.yaml",
        f"models/{MODEL}/model_index.json",
        f"models/{MODEL}/i2v-manifest.json",
        f"models/{MODEL}/unet/diffusion_pytorch_model.safetensors",
    }
    with tarfile.open(path) as tar:  # the small members first: platform refused before the image is read
        assert tar.getnames()[:2] == ["i2v-bundle.json", "SHA256SUMS"]
    # SHA256SUMS is the plain `sha256sum` format: coreutils verifies the extracted members with it too
    with tarfile.open(path) as tar:
        (checked.staging / "SHA256SUMS").write_bytes(tar.extractfile("SHA256SUMS").read())
    sums = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=checked.staging, capture_output=True, text=True
    )
    assert sums.returncode == 0 and sums.stdout.count(": OK") == 6, sums.stdout + sums.stderr


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_a_truncated_bundle_is_refused_naming_the_member_it_cuts(made, tmp_path, keep):
    path, _ = made
    data = path.read_bytes()
    image_at = data.index(b"image.tar")  # inside the image member's data: cut there
    cut = int(image_at + (len(data) - image_at) * keep) if keep < 0.9 else image_at + 1_000_000
    path.write_bytes(data[:cut])
    with pytest.raises(BundleError, match=r"is truncated: image\.tar has [\d,]+ of its 2,000,000 bytes"):
        bundle_load.check(path, tmp_path / "deploy")
    assert staging_dirs(tmp_path / "deploy") == []


def test_a_tampered_model_file_is_refused_naming_it(made, tmp_path):
    path, _ = made
    with tarfile.open(path) as tar:
        member = tar.getmember(f"models/{MODEL}/unet/diffusion_pytorch_model.safetensors")
    with open(path, "r+b") as handle:  # one byte inside that member's data, size unchanged
        handle.seek(member.offset_data + 1234)
        byte = handle.read(1)
        handle.seek(member.offset_data + 1234)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BundleError) as caught:
        bundle_load.check(path, tmp_path / "deploy")
    assert f"models/{MODEL}/unet/diffusion_pytorch_model.safetensors has sha256" in str(caught.value)
    assert "the bundle was changed or damaged; nothing was loaded" in str(caught.value)
    assert staging_dirs(tmp_path / "deploy") == []


def test_a_bundle_for_the_other_architecture_is_refused_before_loading(made, tmp_path):
    path, meta = made
    other = "linux/arm64" if host_platform() == "linux/amd64" else "linux/amd64"
    with pytest.raises(BundleError) as caught:
        bundle_load.load(
            path,
            env_file=tmp_path / ".env",
            models_dir=tmp_path / "models",
            docker=str(tmp_path / "no-docker-here"),
            platform=other,
        )
    assert f"holds {meta.image} for {meta.platform}; this host is {other}" in str(caught.value)
    assert not (tmp_path / "models").exists() and not (tmp_path / ".env").exists()


def test_a_member_not_in_the_checksum_list_is_refused(made, tmp_path):
    path, _ = made
    extra = tmp_path / "evil.sh"
    extra.write_text("echo hi\n")
    with tarfile.open(path, "a") as tar:
        tar.add(extra, arcname=f"models/{MODEL}/evil.sh")
    with pytest.raises(BundleError, match=rf"models/{MODEL}/evil\.sh is in the bundle but not in SHA256SUMS"):
        bundle_load.check(path, tmp_path / "deploy")


def test_a_member_outside_the_folder_is_refused(made, tmp_path):
    path, _ = made
    extra = tmp_path / "x"
    extra.write_text("x\n")
    with tarfile.open(path, "a") as tar:
        tar.add(extra, arcname="../escape")
    with pytest.raises(BundleError, match=r"member '\.\./escape' would be written outside"):
        bundle_load.check(path, tmp_path / "deploy")


def test_not_a_bundle_at_all(tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar file" * 100)
    with pytest.raises(BundleError, match="junk.tar is not a tar file"):
        bundle_load.check(junk, tmp_path)


def test_the_loader_runs_on_the_standard_library_alone(made, tmp_path):
    """`make load` on a host without .venv: python -S -m provision.bundle_load, no site-packages at all."""
    path, _ = made
    done = subprocess.run(
        [
            sys.executable,
            "-S",
            "-m",
            "provision.bundle_load",
            str(path),
            "--env-file",
            str(tmp_path / ".env"),
            "--models-dir",
            str(tmp_path / "m"),
            "--docker",
            str(tmp_path / "no-docker"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    # every check passed with the standard library; it stops only at docker load (no docker binary here)
    assert done.returncode == 6 and "docker" in done.stderr and "Traceback" not in done.stderr, done.stderr


# ---------------------------------------------------------------------------------------------- make up


@pytest.mark.parametrize(
    ("image", "target"),
    [
        ("docker.io/i2vdeploy/i2v-deploy:0.1.0-cpu", "build-cpu"),
        ("registry.cn-hangzhou.aliyuncs.com/i2vdeploy/i2v-deploy:0.1.0-cuda12.6", "build-cuda"),
        ("docker.io/i2vdeploy/i2v-deploy:0.1.0-cann9.0.0-910b-openeuler24.03", "build-cann"),
    ],
)
def test_each_image_names_the_make_verb_that_builds_it(image, target):
    assert image_mod.build_target(image) == target


def test_an_image_no_target_builds_is_named():
    with pytest.raises(
        image_mod.ImageUnavailableError, match=r"I2V_IMAGE = 'docker.io/x/y:1.0': its tag names no variant"
    ):
        image_mod.build_target("docker.io/x/y:1.0")


class Engine:
    """What ensure() asks, answered from a table, with the pulls it was asked for recorded: the real docker
    CLI and engine answer these in the container checks (make up against no registry, make up offline)."""

    def __init__(self, present: bool, pull_error: str | None = None):
        self.present, self.pull_error, self.pulls = present, pull_error, []

    def inspect(self, image):
        return subprocess.CompletedProcess(
            [],
            0 if self.present else 1,
            "sha256:abc" if self.present else "",
            "" if self.present else f"Error: No such image: {image}",
        )

    def pull(self, image):
        self.pulls.append(image)
        return subprocess.CompletedProcess([], 1 if self.pull_error else 0, "", self.pull_error or "")


IMAGE = "docker.io/i2vdeploy/i2v-deploy:0.1.0-cpu"
NO_REGISTRY = 'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: no such host'


@pytest.mark.parametrize("policy", list(image_mod.PullPolicy))
def test_offline_never_pulls(policy):
    engine = Engine(present=False, pull_error=NO_REGISTRY)
    with pytest.raises(image_mod.ImageUnavailableError) as caught:
        image_mod.ensure(IMAGE, policy, offline=True, docker=engine)
    assert engine.pulls == [] and caught.value.exit_code == 11
    assert "is not loaded here and I2V_OFFLINE=1 forbids a pull: load the bundle" in str(caught.value)


def test_a_present_image_is_used_as_is_even_offline():
    engine = Engine(present=True)
    assert (
        image_mod.ensure(IMAGE, image_mod.PullPolicy.AUTO, offline=True, docker=engine).outcome.value
        == "present"
    )
    assert engine.pulls == []


def test_a_tag_in_no_registry_is_said_then_built_or_stopped():
    auto = image_mod.ensure(
        IMAGE, image_mod.PullPolicy.AUTO, docker=Engine(False, NO_REGISTRY), env_file="e/.env"
    )
    assert (
        auto.outcome.value == "build" and "Building it here: make build-cpu ENV_FILE=e/.env" in auto.message
    )
    assert NO_REGISTRY in auto.message and "no i2v-deploy image has been published yet" in auto.message
    with pytest.raises(image_mod.ImageUnavailableError) as caught:
        image_mod.ensure(IMAGE, image_mod.PullPolicy.ONLY, docker=Engine(False, NO_REGISTRY))
    assert caught.value.exit_code == 12 and str(caught.value).endswith(
        "Build it here: make build-cpu ENV_FILE=.env"
    )


def test_provision_image_without_an_engine_says_so(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("I2V_IMAGE=docker.io/i2vdeploy/i2v-deploy:0.1.0-cpu\n")
    done = subprocess.run(
        [sys.executable, "-m", "provision", "image", "--env-file", str(env_file), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"},
    )
    assert done.returncode == 13 and "Docker engine not reachable" in done.stderr, done.stderr


def test_bundle_metadata_round_trips_and_refuses_another_format():
    meta = BundleMeta(FORMAT, "i", "sha256:x", "linux/amd64", MODEL, "t")
    assert BundleMeta.from_json(meta.to_json(), "b.tar") == meta
    with pytest.raises(BundleError, match="has format 99; this checkout reads format 1"):
        BundleMeta.from_json(json.dumps({**json.loads(meta.to_json()), "format": 99}), "b.tar")
