"""The runtime's check before any loader runs: manifest sizes and hashes, the verified cache, offline mode."""

from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path

import pytest
from hub_server import TINY, UNET, VAE

from i2v import catalogue
from i2v.engine import Engine, WeightsMissingError, ensure_weights
from i2v.request import resolve
from i2v.settings import Settings
from i2v.weights import OfflineError, WeightsCorruptError, fetch, read_manifest, verify
from i2v.weights import manifest as manifest_module

SPEC = catalogue.get(TINY)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    models = tmp_path_factory.mktemp("built")
    return ensure_weights(SPEC, Settings(models_dir=models, device="cpu"))


@pytest.fixture
def models(built, tmp_path) -> Path:
    """A fresh copy of the built tiny model (with its manifest) in tmp_path/<id>."""
    shutil.copytree(built, tmp_path / TINY)
    return tmp_path


@pytest.fixture
def hashes(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = manifest_module.sha256_file
    monkeypatch.setattr(
        manifest_module, "sha256_file", lambda path: seen.append(Path(path).name) or real(path)
    )
    return seen


@pytest.fixture
def no_network(monkeypatch):
    def refuse(self, address):
        raise AssertionError(f"network attempt to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a[0] if a else None))


def settings(models: Path, **overrides) -> Settings:
    return Settings(models_dir=models, device="cpu", **overrides)


def flip_byte(path: Path, offset: int = 4096) -> None:
    before = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))
    # A write sets mtime to "now"; make it differ from the cached one even on a coarse-clock filesystem.
    if path.stat().st_mtime_ns == before.st_mtime_ns:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))


def test_a_built_tiny_model_has_a_manifest_of_every_file(built):
    m = read_manifest(built)
    assert m.source == "local-build" and {UNET, VAE, "model_index.json"} <= {e.path for e in m.files}


def test_the_first_load_hashes_once_and_later_loads_only_stat(models, hashes):
    ensure_weights(SPEC, settings(models))  # a copy: new inodes, so hashed once
    assert len(hashes) == len(read_manifest(models / TINY).files)
    hashes.clear()
    ensure_weights(SPEC, settings(models))
    assert hashes == []


def test_a_flipped_byte_is_found_before_any_loader_runs(models, monkeypatch):
    engine = Engine(settings(models))
    ensure_weights(SPEC, engine.settings)  # verified and remembered
    flip_byte(models / TINY / UNET)

    def loader(*_args, **_kwargs):
        raise AssertionError("a diffusers loader ran")

    monkeypatch.setattr("i2v.tiny.build.resolve", loader)
    from i2v.cli import demo_image

    with pytest.raises(WeightsCorruptError) as caught:
        engine.generate(resolve(SPEC, "fast", prompt="x"), demo_image(64, 64))
    assert caught.value.path == UNET
    assert str(caught.value).startswith(f"`{UNET}` in {models / TINY} is corrupted: its sha256 ")
    assert f"re-fetch it: i2v fetch {TINY} --dir {models}" in str(caught.value)


def test_a_truncated_file_is_found_by_its_size_without_hashing(models, hashes):
    path = models / TINY / VAE
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)
    with pytest.raises(
        WeightsCorruptError, match=rf"^`{VAE}` in .* is truncated: {size // 2:,} of {size:,} bytes"
    ):
        ensure_weights(SPEC, settings(models))
    assert hashes == []


def test_a_missing_file_is_named(models):
    (models / TINY / UNET).unlink()
    with pytest.raises(WeightsCorruptError, match=rf"`{UNET}` in .* is missing \(listed in the manifest\)"):
        ensure_weights(SPEC, settings(models))


def test_full_verify_finds_a_flip_that_kept_its_mtime(models):
    folder = models / TINY
    ensure_weights(SPEC, settings(models))
    path = folder / UNET
    stat = path.stat()
    flip_byte(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # bit rot: same size, same mtime
    with pytest.raises(WeightsCorruptError, match=f"`{UNET}` .* is corrupted"):
        verify(folder, full=True)


def test_a_folder_without_a_manifest_loads_with_a_warning(models, caplog):
    (models / TINY / "i2v-manifest.json").unlink()
    with caplog.at_level(logging.WARNING, logger="i2v.weights"):
        assert ensure_weights(SPEC, settings(models)) == models / TINY
    assert "has no i2v-manifest.json: its files are not verified" in caplog.text


# --- offline --------------------------------------------------------------------------------------


@pytest.fixture
def offline_env_restored(monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    return hf_constants


def test_offline_a_missing_model_names_model_folder_and_command_with_no_network(
    tmp_path, no_network, offline_env_restored
):
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    with pytest.raises(WeightsMissingError) as caught:
        Engine(settings(tmp_path, offline=True)).generate(resolve(spec, "fast", prompt="x"), image=None)
    assert str(caught.value) == (
        f"weights for wan2.1-i2v-14b-480p are not in {tmp_path / spec.id} "
        f"(no model_index.json); run: i2v fetch wan2.1-i2v-14b-480p --dir {tmp_path}"
    )
    assert os.environ["HF_HUB_OFFLINE"] == "1" and offline_env_restored.HF_HUB_OFFLINE is True


def test_offline_a_present_model_is_checked_and_used_with_no_network(
    models, no_network, offline_env_restored
):
    assert ensure_weights(SPEC, settings(models, offline=True)) == models / TINY


def test_offline_fetch_downloads_nothing_and_says_so(tmp_path, models, no_network, offline_env_restored):
    spec = catalogue.get("wan2.1-i2v-14b-480p")
    with pytest.raises(
        OfflineError,
        match=rf"offline mode \(I2V_OFFLINE=1\): wan2.1-i2v-14b-480p is not complete "
        rf"in {tmp_path / spec.id} and nothing is downloaded; run `i2v fetch ",
    ):
        fetch(spec, models_dir=tmp_path, offline=True)
    present = fetch(TINY, models_dir=models, offline=True)
    assert present.up_to_date and present.manifest.source == "local-build"
