"""LoRA adapters extracted from a full fine-tuning (truncated SVD) load like trained adapters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rupture_nlp.model import RuptureClassifier
from rupture_nlp.model.compact import lora_from_full
from rupture_nlp.records import read_sessions

from model_helpers import data_dir


def test_full_rank_extraction_reproduces_the_full_model(tiny_model, tmp_path):
    full_dir = tiny_model("full")
    dev = list(read_sessions(data_dir(full_dir) / "dev.jsonl"))
    full = RuptureClassifier.from_pretrained(full_dir)
    clf, stats = lora_from_full(full_dir, tmp_path / "lora", rank=384, dtype="float16")
    assert stats["energy_kept_min"] > 0.999
    assert clf.config.weights == "lora" and not (tmp_path / "lora" / "encoder").exists()
    np.testing.assert_allclose(clf.predict_proba(dev), full.predict_proba(dev), atol=5e-3)
    again = RuptureClassifier.from_pretrained(tmp_path / "lora")
    assert again.model_version == clf.model_version
    assert json.loads((tmp_path / "lora" / "config.json").read_text())["lora"]["source"].startswith("truncated SVD")


@pytest.mark.slow
def test_low_rank_extraction_is_small(tiny_model, tmp_path):
    import torch
    from safetensors.torch import load_file

    from rupture_nlp.model.base import resolve_base
    from rupture_nlp.model.hf import load_encoder

    clf, stats = lora_from_full(tiny_model("full"), tmp_path / "lora", rank=4, dtype="float16")
    size = sum(p.stat().st_size for p in (tmp_path / "lora").rglob("*.safetensors"))
    assert size < 1_000_000
    # the energy kept, by hand: per adapted matrix, the top 4 squared singular values of
    # (fine-tuned - base) over all of them
    prefix, suffix = "base_model.model.", ".lora_A.weight"
    names = sorted(
        k[len(prefix) : -len(suffix)]
        for k in load_file(str(tmp_path / "lora" / "adapter_model.safetensors"))
        if k.endswith(suffix)
    )
    assert len(names) == 6 * 6  # query, key, value and 3 dense per layer, 6 layers
    ft = RuptureClassifier.from_pretrained(tiny_model("full")).net.encoder.state_dict()
    base = load_encoder(resolve_base(None).path, "mean").state_dict()
    kept = []
    for name in names:
        s2 = torch.linalg.svdvals((ft[f"{name}.weight"] - base[f"{name}.weight"]).double()) ** 2
        kept.append(float(s2[:4].sum() / s2.sum()))
    assert stats["energy_kept_min"] == pytest.approx(min(kept), abs=2e-4)
    assert stats["energy_kept_mean"] == pytest.approx(np.mean(kept), abs=2e-4)
    assert stats["energy_kept_min"] < 0.99  # rank 4 drops part of the update


@pytest.mark.slow
def test_int8_adapters_are_a_quarter_of_float32_and_predict_the_same(tiny_model, tmp_path):
    full_dir = tiny_model("full")
    dev = list(read_sessions(data_dir(full_dir) / "dev.jsonl"))
    f32, _ = lora_from_full(full_dir, tmp_path / "f32", rank=16, dtype="float32")
    i8, _ = lora_from_full(full_dir, tmp_path / "i8", rank=16, dtype="int8")
    size = {k: (tmp_path / k / "adapter_model.safetensors").stat().st_size for k in ("f32", "i8")}
    assert size["i8"] < 0.3 * size["f32"]
    assert json.loads((tmp_path / "i8" / "config.json").read_text())["lora"]["dtype"] == "int8"
    np.testing.assert_allclose(i8.predict_proba(dev), f32.predict_proba(dev), atol=5e-3)
    again = RuptureClassifier.from_pretrained(tmp_path / "i8")
    assert again.model_version == i8.model_version
    np.testing.assert_array_equal(again.predict_proba(dev), i8.predict_proba(dev))


def test_quantize_rows_error_is_bounded_per_row():
    import torch

    from rupture_nlp.model.quantize import dequantize, quantize_rows

    w = torch.tensor([[1.0, -0.5, 0.25], [100.0, 3.0, -40.0]])
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8 and q[0, 0] == 127 and q[1, 0] == 127 and q[0, 1] == -64
    back = dequantize({"x": q, "x.scale": scale})["x"]
    assert torch.all((back - w).abs() <= w.abs().amax(1, keepdim=True) / 127 / 2 + 1e-2)
    # a float tensor that merely ends in ".scale" is a tensor of its own, kept; integer buffers stay integers
    plain = dequantize({"norm.scale": torch.ones(3, dtype=torch.float16), "ids": torch.arange(3)})
    assert plain["norm.scale"].dtype == torch.float32 and plain["ids"].dtype == torch.int64


@pytest.mark.slow
def test_int8_adapter_file_without_scales_is_a_clear_error(tiny_model, tmp_path):
    import pytest
    from safetensors.torch import load_file, save_file

    from rupture_nlp.errors import RuptureError

    lora_from_full(tiny_model("full"), tmp_path / "i8", rank=4, dtype="int8")
    w = tmp_path / "i8" / "adapter_model.safetensors"
    save_file({k: v for k, v in load_file(str(w)).items() if not k.endswith(".scale")}, str(w))
    with pytest.raises(RuptureError, match="LoRA adapters do not fit"):
        RuptureClassifier.from_pretrained(tmp_path / "i8")


@pytest.mark.slow
def test_compact_files_are_byte_identical_across_processes(tiny_model, tmp_path):
    """The model version hashes the adapter file, so two builds of the same weights must write
    the same bytes whatever a process's hash seed (peft keeps target modules in a set)."""
    import os
    import subprocess
    import sys

    full_dir = tiny_model("full")
    for seed in ("1", "2"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rupture_nlp.model.compact",
                str(full_dir),
                str(tmp_path / seed),
                "--rank",
                "4",
                "--dtype",
                "int8",
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
    for name in ("adapter_model.safetensors", "adapter_config.json", "config.json"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
    assert (
        RuptureClassifier.from_pretrained(tmp_path / "1").model_version
        == RuptureClassifier.from_pretrained(tmp_path / "2").model_version
    )


def test_unknown_dtype_is_refused_before_anything_is_written(tiny_model, tmp_path):
    import pytest

    from rupture_nlp.errors import RuptureError

    with pytest.raises(RuptureError, match="dtype must be one of"):
        lora_from_full(tiny_model("full"), tmp_path / "x", rank=4, dtype="int4")
    assert not (tmp_path / "x").exists()
