"""LoRA adapters extracted from a full fine-tuning (truncated SVD) load like trained adapters."""
from __future__ import annotations

import json

import numpy as np

from rupture_nlp.model import RuptureClassifier
from rupture_nlp.model.compact import lora_from_full
from rupture_nlp.records import read_sessions

from model_helpers import data_dir, tiny_model


def test_full_rank_extraction_reproduces_the_full_model(tmp_path):
    full_dir = tiny_model("full")
    dev = list(read_sessions(data_dir(full_dir) / "dev.jsonl"))
    full = RuptureClassifier.from_pretrained(full_dir)
    clf, stats = lora_from_full(full_dir, tmp_path / "lora", rank=384)
    assert stats["energy_kept_min"] > 0.999
    assert clf.config.weights == "lora" and not (tmp_path / "lora" / "encoder").exists()
    np.testing.assert_allclose(clf.predict_proba(dev), full.predict_proba(dev), atol=5e-3)
    again = RuptureClassifier.from_pretrained(tmp_path / "lora")
    assert again.model_version == clf.model_version
    assert json.loads((tmp_path / "lora" / "config.json").read_text())["lora"]["source"].startswith("truncated SVD")


def test_low_rank_extraction_is_small(tmp_path):
    clf, stats = lora_from_full(tiny_model("full"), tmp_path / "lora", rank=4)
    size = sum(p.stat().st_size for p in (tmp_path / "lora").rglob("*.safetensors"))
    assert size < 1_000_000 and 0 < stats["energy_kept_mean"] <= 1
