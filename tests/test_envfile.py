import os
import stat

import pytest

from provision.envfile import Entry, EnvWriteError, parse, quote, render, unquote, write_atomic

ENTRIES = [
    Entry("COMPOSE_PROFILES", "cuda", "profile"),
    Entry("I2V_MODEL", "i2vgen-xl", "model", choice=True),
    Entry("HF_ENDPOINT", "https://hf-mirror.com", "hf", choice=True),
]


def test_new_file_then_rerun_is_byte_identical(tmp_path):
    path = tmp_path / ".env"
    assert write_atomic(path, render(ENTRIES, None)) is True
    first = path.read_bytes()
    assert write_atomic(path, render(ENTRIES, path.read_text())) is False
    assert path.read_bytes() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert parse(first.decode()) == {
        "COMPOSE_PROFILES": "cuda",
        "I2V_MODEL": "i2vgen-xl",
        "HF_ENDPOINT": "https://hf-mirror.com",
    }


def test_user_lines_and_choices_are_kept_facts_recomputed(tmp_path):
    path = tmp_path / ".env"
    write_atomic(path, render(ENTRIES, None))
    edited = path.read_text().replace("I2V_MODEL=i2vgen-xl", "I2V_MODEL=svd-xt")
    edited = edited.replace("COMPOSE_PROFILES=cuda", "COMPOSE_PROFILES=cpu")
    edited += "\n# my proxy\nHTTPS_PROXY=http://10.0.0.1:3128\n"
    path.write_text(edited)
    text = render(ENTRIES, path.read_text())
    values = parse(text)
    assert values["I2V_MODEL"] == "svd-xt"  # a choice: the user's value wins
    assert values["COMPOSE_PROFILES"] == "cuda"  # a fact: recomputed
    assert "# my proxy\nHTTPS_PROXY=http://10.0.0.1:3128\n" in text
    assert render(ENTRIES, text) == text  # stable from there on


def test_new_managed_keys_are_appended(tmp_path):
    text = render(ENTRIES[:1], None)
    more = render(ENTRIES, text)
    assert more.startswith(text) and more.rstrip().endswith("HF_ENDPOINT=https://hf-mirror.com")


@pytest.mark.parametrize("value", ["plain", "", "has space", 'quo"te', "back\\slash", "a=b,c:d/e"])
def test_quote_round_trip(value):
    assert unquote(quote(value)) == value


def test_directory_as_target_is_refused(tmp_path):
    with pytest.raises(EnvWriteError, match="is a directory"):
        write_atomic(tmp_path, "A=1\n")


def test_disk_full_mid_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / ".env"
    path.write_text("OLD=1\n")

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(EnvWriteError, match="No space left on device; the old file is untouched"):
        write_atomic(path, "NEW=2\n")
    assert path.read_text() == "OLD=1\n"
    assert [p.name for p in tmp_path.iterdir()] == [".env"]


def test_unwritable_location_is_a_clear_error():
    with pytest.raises(EnvWriteError, match=r"cannot write /proc/.*\.env"):
        write_atomic(__import__("pathlib").Path("/proc/i2v-test.env"), "A=1\n")
