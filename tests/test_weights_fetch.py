"""`fetch` against a fake hub on loopback, through the real clients (huggingface_hub, modelscope).

The server (tests/hub_server.py) serves the tiny I2VGen-XL build as hub repos; each test points a
source at it (`HF_ENDPOINT`, `MODELSCOPE_DOMAIN`, or the source's endpoint) and checks the folder,
the manifest and what went over the wire.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from hub_server import (
    EXTRAS,
    GATED_REPO,
    GOOD_TOKEN,
    PICKLE_REPO,
    REPO,
    TINY,
    UNET,
    VAE,
    FakeHub,
    standard_hub,
)

from i2v import catalogue
from i2v.weights import (
    FetchFailedError,
    GatedRepoError,
    PickleOnlyError,
    WeightsCorruptError,
    WeightsIncompleteError,
    check_for_load,
    fetch,
    read_manifest,
)
from i2v.weights.progress import NullProgress
from i2v.weights.sources import HuggingFaceSource, ModelScopeSource


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    from i2v.tiny import build_tiny

    return build_tiny(TINY, tmp_path_factory.mktemp("tiny") / TINY)


@pytest.fixture
def hub(tiny_folder):
    with standard_hub(tiny_folder) as server:
        yield server


@pytest.fixture(autouse=True)
def no_ambient_tokens(monkeypatch, tmp_path):
    for name in (
        "HF_TOKEN",
        "HF_ENDPOINT",
        "MODELSCOPE_ENDPOINT",
        "MODELSCOPE_DOMAIN",
        "MODELSCOPE_API_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")


# A catalogue-shaped spec for the fake repos; the real catalogue gets no test entries.
SPEC = dataclasses.replace(
    catalogue.get(TINY), id="fake-i2vgen", tiny=False, hf_id=REPO, modelscope_id="ms-org/tiny-i2vgen"
)


def hf(hub: FakeHub) -> HuggingFaceSource:
    return HuggingFaceSource(hub.url, label="hf-mirror")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pipeline_files(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file()
        and not p.relative_to(folder).as_posix().startswith(".")
        and p.name != "i2v-manifest.json"
    }


# --- download -------------------------------------------------------------------------------------


def test_hf_fetch_writes_the_hub_layout_only_the_pipeline_files_and_a_manifest(hub, tiny_folder, tmp_path):
    progress = NullProgress()
    result = fetch(SPEC, models_dir=tmp_path, offline=False, sources=[hf(hub)], progress=progress)
    folder = tmp_path / "fake-i2vgen"
    assert result.folder == folder and not result.up_to_date
    assert pipeline_files(folder) == pipeline_files(tiny_folder)  # no fp16 twin, .bin, .py, README
    assert not set(EXTRAS) & pipeline_files(folder)
    assert not [r for r in hub.requests if any(extra in r.path for extra in EXTRAS)]
    m = read_manifest(folder)
    assert (m.source, m.repo, m.revision, m.commit, m.endpoint) == (
        "hf-mirror",
        REPO,
        "main",
        hub.repos[REPO].commit,
        hub.url,
    )
    assert {e.path: (e.size, e.sha256) for e in m.files} == {
        p: (len(hub.repos[REPO].files[p]), hub.repos[REPO].sha256(p)) for p in pipeline_files(tiny_folder)
    }
    assert progress.received[UNET] == progress.totals[UNET] == (folder / UNET).stat().st_size
    assert not (folder / ".i2v-fetch-incomplete").exists()
    assert check_for_load(SPEC, folder, tmp_path) == m


def test_a_second_fetch_only_lists_and_finds_it_up_to_date(hub, tmp_path):
    fetch(SPEC, models_dir=tmp_path, offline=False, sources=[hf(hub)])
    hub.requests.clear()
    again = fetch(SPEC, models_dir=tmp_path, offline=False, sources=[hf(hub)])
    assert again.up_to_date and [r.path.split("?")[0] for r in hub.requests] == [
        f"/api/models/{REPO}/revision/main"
    ]


def test_modelscope_fetch_through_MODELSCOPE_DOMAIN(hub, tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_DOMAIN", hub.url)
    spec = dataclasses.replace(SPEC, modelscope_id=REPO)
    progress = NullProgress()
    result = fetch(spec, source="modelscope", models_dir=tmp_path, offline=False, progress=progress)
    assert result.manifest.source == "modelscope" and result.manifest.endpoint == hub.url
    assert pipeline_files(result.folder) == pipeline_files(tiny_folder)
    assert any(r.path.startswith(f"/api/v1/models/{REPO}/repo/files") for r in hub.requests)
    assert not [r for r in hub.requests if "FilePath=pipeline.py" in r.path or ".bin" in r.path]
    assert progress.received[UNET] == (result.folder / UNET).stat().st_size
    assert sha256(result.folder / UNET) == hub.repos[REPO].sha256(UNET)


def test_auto_falls_back_from_modelscope_to_the_HF_ENDPOINT_mirror(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_DOMAIN", hub.url)  # has no ms-org/tiny-i2vgen: 404
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    progress = NullProgress()
    result = fetch(SPEC, source="auto", models_dir=tmp_path, offline=False, progress=progress)
    assert result.manifest.source == "hf-mirror" and result.manifest.repo == REPO
    assert any("ms-org/tiny-i2vgen" in note and "not found" in note for note in progress.notes)


# --- resume ---------------------------------------------------------------------------------------


MIB = 1024 * 1024
BIG_REPO = "org/big-unet"  # the tiny model with a 24 MiB unet file: clients resume in whole chunks


@pytest.fixture
def big(hub, tiny_folder):
    hub.add_folder(BIG_REPO, tiny_folder, extra={UNET: hashlib.sha256(b"seed").digest() * (24 * MIB // 32)})
    return dataclasses.replace(SPEC, hf_id=BIG_REPO, modelscope_id=BIG_REPO)


def test_hf_resumes_a_dropped_connection_with_a_range_request(hub, big, tmp_path):
    hub.drop(BIG_REPO, UNET, after=15 * MIB)
    result = fetch(big, models_dir=tmp_path, offline=False, sources=[hf(hub)])
    # huggingface_hub writes 10 MiB chunks: the retry asks for the rest after the one it kept.
    assert [r.range for r in hub.file_gets(UNET)] == [None, f"bytes={10 * MIB}-"]
    assert sha256(result.folder / UNET) == hub.repos[BIG_REPO].sha256(UNET)


def test_an_interrupted_fetch_leaves_no_partial_file_and_no_manifest_and_the_next_run_completes(
    hub, tmp_path
):
    hub.drop(REPO, UNET, after=700_000, then_fail=True)
    with pytest.raises(FetchFailedError, match=r"hf-mirror .*HTTP 500"):
        fetch(SPEC, models_dir=tmp_path, offline=False, sources=[hf(hub)])
    folder = tmp_path / "fake-i2vgen"
    assert not (folder / UNET).exists() and (folder / VAE).exists()  # the others finished
    assert not (folder / "i2v-manifest.json").exists()
    with pytest.raises(
        WeightsIncompleteError, match=r"fetch of fake-i2vgen into .* did not finish .*\(it resumes\)"
    ):
        check_for_load(SPEC, folder, tmp_path)
    hub.heal()
    fetch(SPEC, models_dir=tmp_path, offline=False, sources=[hf(hub)])
    assert len(hub.file_gets(VAE)) == 1  # finished files are not fetched again
    assert sha256(folder / UNET) == hub.repos[REPO].sha256(UNET)
    check_for_load(SPEC, folder, tmp_path)


def test_modelscope_resumes_a_partial_file_left_by_an_earlier_run(hub, tmp_path):
    spec = dataclasses.replace(SPEC, modelscope_id=REPO)
    data = hub.repos[REPO].files[UNET]
    partial = tmp_path / "fake-i2vgen" / (UNET + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data[:500_000])
    result = fetch(spec, models_dir=tmp_path, offline=False, sources=[ModelScopeSource(hub.url)])
    assert [r.range for r in hub.file_gets(UNET)] == ["bytes=500000-"]
    assert hub.served[f"{REPO}/{UNET}"] == len(data) - 500_000
    assert sha256(result.folder / UNET) == hub.repos[REPO].sha256(UNET) and not partial.exists()


def test_modelscope_resumes_a_dropped_connection(hub, big, tmp_path):
    hub.drop(BIG_REPO, UNET, after=15 * MIB)
    result = fetch(big, models_dir=tmp_path, offline=False, sources=[ModelScopeSource(hub.url)])
    assert [r.range for r in hub.file_gets(UNET)] == [None, f"bytes={15 * MIB}-"]  # 1 MiB chunks
    assert hub.served[f"{BIG_REPO}/{UNET}"] == 24 * MIB
    assert sha256(result.folder / UNET) == hub.repos[BIG_REPO].sha256(UNET)


# --- refusals -------------------------------------------------------------------------------------


def test_bytes_that_differ_from_the_hub_listing_are_deleted_and_named(hub, tmp_path):
    hub.corrupt(REPO, UNET)  # served with a flipped byte; the listing keeps the true sha256
    with pytest.raises(
        WeightsCorruptError,
        match=rf"`{UNET}` in .* as downloaded from hf-mirror: sha256 .* "
        r"differs from the hub's .*; deleted it",
    ):
        fetch(SPEC, models_dir=tmp_path, offline=False, sources=[hf(hub)])
    assert not (tmp_path / "fake-i2vgen" / UNET).exists()
    assert not (tmp_path / "fake-i2vgen" / "i2v-manifest.json").exists()


def test_a_gated_repo_names_the_token_variable_and_the_modelscope_copy(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored login either
    spec = dataclasses.replace(SPEC, hf_id=GATED_REPO, modelscope_id="AI-ModelScope/tiny-i2vgen")
    with pytest.raises(GatedRepoError) as caught:
        fetch(spec, models_dir=tmp_path, offline=False, sources=[hf(hub), HuggingFaceSource(hub.url)])
    message = str(caught.value)
    assert message.startswith(
        f"`{GATED_REPO}` is gated on Hugging Face: set HF_TOKEN (a token that accepted "
        "the licence) or use --source modelscope (copy: AI-ModelScope/tiny-i2vgen)"
    )
    assert "skipped: the same token meets the same gate" in message


def test_a_token_without_access_gets_the_gate_from_the_file_download(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_never_accepted")
    spec = dataclasses.replace(SPEC, hf_id=GATED_REPO)
    with pytest.raises(GatedRepoError, match="set HF_TOKEN"):
        fetch(spec, models_dir=tmp_path, offline=False, sources=[hf(hub)])
    assert any(r.auth == "Bearer hf_never_accepted" and "/resolve/" in r.path for r in hub.requests)


def test_a_token_that_accepted_the_licence_fetches_the_gated_repo(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", GOOD_TOKEN)
    result = fetch(
        dataclasses.replace(SPEC, hf_id=GATED_REPO), models_dir=tmp_path, offline=False, sources=[hf(hub)]
    )
    assert result.manifest.repo == GATED_REPO and (result.folder / UNET).is_file()


def test_a_pickle_only_component_is_refused_before_any_download(hub, tmp_path):
    spec = dataclasses.replace(SPEC, hf_id=PICKLE_REPO)
    with pytest.raises(PickleOnlyError, match=r"component `vae` has only pickle weights"):
        fetch(spec, models_dir=tmp_path, offline=False, sources=[hf(hub)])
    assert not [r for r in hub.requests if "/resolve/" in r.path]
    assert not (tmp_path / "fake-i2vgen").exists()


def test_tiny_catalogue_models_are_built_locally_with_a_manifest(tmp_path):
    result = fetch(TINY, models_dir=tmp_path, offline=False, source="auto")
    assert result.manifest.source == "local-build" and (result.folder / "model_index.json").is_file()
    data = json.loads((result.folder / "i2v-manifest.json").read_text())
    assert {f["path"] for f in data["files"]} == pipeline_files(result.folder)
