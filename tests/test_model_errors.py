"""A missing, corrupt or mismatched model directory gives one clear RuptureError."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rupture_nlp.errors import RuptureError
from rupture_nlp.model import RuptureClassifier


@pytest.fixture()
def model_copy(tiny_model, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_model("lora"), d)
    return d


def _load_error(d) -> str:
    with pytest.raises(RuptureError) as e:
        RuptureClassifier.from_pretrained(d)
    return str(e.value)


def test_missing_directory(tmp_path):
    assert "model directory not found" in _load_error(tmp_path / "nope")


def test_directory_without_config(tmp_path):
    assert "no config.json" in _load_error(tmp_path)


def test_corrupt_config(model_copy):
    (model_copy / "config.json").write_text("{not json")
    msg = _load_error(model_copy)
    assert "config.json" in msg and "not valid JSON" in msg


def test_config_of_something_else(model_copy):
    (model_copy / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert "not a rupture model directory" in _load_error(model_copy)


def test_newer_format(model_copy):
    cfg = json.loads((model_copy / "config.json").read_text())
    cfg["format_version"] = 99
    (model_copy / "config.json").write_text(json.dumps(cfg))
    assert "upgrade rupture-nlp" in _load_error(model_copy)


def test_truncated_head_weights(model_copy):
    p = model_copy / "head.safetensors"
    p.write_bytes(p.read_bytes()[:100])
    msg = _load_error(model_copy)
    assert "head.safetensors" in msg and "corrupt" in msg


def test_truncated_adapters(model_copy):
    p = model_copy / "adapter_model.safetensors"
    p.write_bytes(p.read_bytes()[:1000])
    msg = _load_error(model_copy)
    assert "adapter_model.safetensors" in msg


def test_missing_adapters(model_copy):
    (model_copy / "adapter_model.safetensors").unlink()
    assert "lacks adapter_model.safetensors" in _load_error(model_copy)


def test_schema_that_does_not_match_the_head(model_copy):
    d = yaml.safe_load((model_copy / "schema.yaml").read_text())
    d["labels"] = d["labels"][:-1]
    (model_copy / "schema.yaml").write_text(yaml.safe_dump(d))
    assert "schema.yaml does not match" in _load_error(model_copy)


def test_schema_and_head_disagree_even_when_config_labels_match(model_copy):
    d = yaml.safe_load((model_copy / "schema.yaml").read_text())
    d["labels"] = d["labels"][:-1]
    (model_copy / "schema.yaml").write_text(yaml.safe_dump(d))
    cfg = json.loads((model_copy / "config.json").read_text())
    cfg["labels"] = cfg["labels"][:-1]
    (model_copy / "config.json").write_text(json.dumps(cfg))
    th = json.loads((model_copy / "thresholds.json").read_text())
    th.pop(list(th)[-1])
    (model_copy / "thresholds.json").write_text(json.dumps(th))
    msg = _load_error(model_copy)
    assert "head.safetensors does not fit the schema" in msg


def test_thresholds_missing_a_label(model_copy):
    th = json.loads((model_copy / "thresholds.json").read_text())
    th.pop("withdrawal/denial")
    (model_copy / "thresholds.json").write_text(json.dumps(th))
    msg = _load_error(model_copy)
    assert "thresholds.json" in msg and "withdrawal/denial" in msg


def test_cli_reports_a_bad_model_in_one_line(tiny_model, model_copy, tmp_path):
    (model_copy / "head.safetensors").write_bytes(b"garbage")
    inp = tmp_path / "in.jsonl"
    shutil.copy(tiny_model("lora").parent / "dev.jsonl", inp)
    r = subprocess.run(
        [
            str(Path(sys.executable).with_name("rupture")),
            "tag",
            str(inp),
            "--model",
            str(model_copy),
            "--out",
            str(tmp_path / "out.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "head.safetensors" in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out.jsonl").exists()
