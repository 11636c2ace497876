"""The base encoder: located offline, verified against the official sha256 values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rupture_nlp.errors import RuptureError
from rupture_nlp.model.base import (
    DEFAULT_BASE_NAME,
    DEFAULT_BASE_SHA256,
    check_default_base,
    default_base_path,
    file_sha256,
    resolve_base,
    resolve_recorded_base,
)


def test_default_base_is_found_and_matches_official_hashes():
    b = resolve_base(None)
    assert b.is_default and b.name == DEFAULT_BASE_NAME
    assert b.sha256 == DEFAULT_BASE_SHA256
    assert (b.path / "model.safetensors").is_file()


def _copy_of_default(tmp_path: Path) -> Path:
    """A copy of the default base: big files symlinked, small ones copied."""
    src = default_base_path()
    dst = tmp_path / "base"
    dst.mkdir()
    for name in DEFAULT_BASE_SHA256:
        if name == "model.safetensors":
            os.symlink(src / name, dst / name)
        else:
            (dst / name).write_bytes((src / name).read_bytes())
    return dst


@pytest.mark.parametrize("name", ["config.json", "vocab.txt"])
def test_altered_default_base_is_refused(tmp_path, name):
    d = _copy_of_default(tmp_path)
    assert check_default_base(d) == DEFAULT_BASE_SHA256
    with (d / name).open("a", encoding="utf-8") as f:
        f.write("\n")
    with pytest.raises(RuptureError) as e:
        check_default_base(d)
    assert name in str(e.value) and "sha256" in str(e.value)


def test_missing_file_in_default_base(tmp_path):
    d = _copy_of_default(tmp_path)
    (d / "tokenizer.json").unlink()
    with pytest.raises(RuptureError, match="lacks tokenizer.json"):
        check_default_base(d)


def test_custom_base_directory_is_fingerprinted(tmp_path):
    d = _copy_of_default(tmp_path)
    b = resolve_base(d)
    assert not b.is_default and b.name == "base"
    assert b.sha256["model.safetensors"] == DEFAULT_BASE_SHA256["model.safetensors"]
    # the recorded fingerprint must match when a saved model is loaded over this base
    assert resolve_recorded_base(b.to_config()).path == b.path


def test_recorded_base_with_other_weights_is_refused(tmp_path):
    d = _copy_of_default(tmp_path)
    rec = resolve_base(d).to_config()
    rec["sha256"]["model.safetensors"] = "0" * 64
    with pytest.raises(RuptureError, match="differ from the ones this model was trained on"):
        resolve_recorded_base(rec)


@pytest.mark.parametrize("make", ["missing", "no-config", "no-weights"])
def test_bad_base_directories(tmp_path, make):
    d = tmp_path / "b"
    if make != "missing":
        d.mkdir()
    if make == "no-weights":
        (d / "config.json").write_text("{}")
    with pytest.raises(RuptureError) as e:
        resolve_base(d)
    assert str(d) in str(e.value)


def test_file_sha256(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    assert file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
