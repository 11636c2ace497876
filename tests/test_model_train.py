"""Tiny real training runs: the saved directory, reload, reproducibility, thresholds."""
from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import load_file

from rupture_nlp.decision import label_matrix, tune_thresholds
from rupture_nlp.evaluate import evaluate_predictions
from rupture_nlp.model import RuptureClassifier
from rupture_nlp.records import read_sessions

from model_helpers import data_dir, tiny_model

EXPECTED = {"config.json", "head.safetensors", "adapter_model.safetensors", "adapter_config.json",
            "tokenizer.json", "tokenizer_config.json", "schema.yaml", "thresholds.json",
            "training_config.json", "metrics.json", "README.md"}


def test_lora_model_directory_is_compact_and_safe():
    d = tiny_model("lora")
    names = {p.name for p in d.iterdir()}
    assert EXPECTED <= names
    assert not any(p.suffix in (".bin", ".pt", ".pkl", ".pickle", ".joblib") for p in d.rglob("*"))
    size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
    assert size < 3_000_000, size
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["format"] == "rupture-classifier" and cfg["weights"] == "lora"
    assert cfg["base"]["default"] is True and "path" not in cfg["base"]   # no local paths recorded
    ac = json.loads((d / "adapter_config.json").read_text())
    assert ac["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert set(load_file(d / "head.safetensors")) == {"head.weight", "head.bias"}
    card = (d / "README.md").read_text()
    for part in ("## Intended use", "## Limits", "## Results on the dev split", "LoRA"):
        assert part in card


def test_reload_reproduces_predictions_and_recorded_dev_scores():
    d = tiny_model("lora")
    dev = list(read_sessions(data_dir(d) / "dev.jsonl"))
    a = RuptureClassifier.from_pretrained(d)
    b = RuptureClassifier.from_pretrained(d)
    Pa, Pb = a.predict_proba(dev), b.predict_proba(dev)
    assert Pa.shape == (sum(len(s.utterances) for s in dev), 23)
    np.testing.assert_allclose(Pa, Pb, atol=1e-6)
    assert a.model_version == b.model_version
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["model_version"] == a.model_version
    res = evaluate_predictions(dev, Pa, a.schema, a.thresholds, n_boot=0)
    assert res["fine"]["macro"]["f1"] == pytest.approx(metrics["dev_macro_f1"]["fine"], abs=1e-6)
    assert res["coarse"]["macro"]["f1"] == pytest.approx(metrics["dev_macro_f1"]["coarse"], abs=1e-6)
    # thresholds are the ones tuned on dev
    th = tune_thresholds(label_matrix(dev, a.schema), Pa)
    np.testing.assert_allclose(a.thresholds, th, atol=1e-4)


def test_speaker_mask_and_predict_sets_labels_and_scores():
    d = tiny_model("lora")
    clf = RuptureClassifier.from_pretrained(d)
    dev = list(read_sessions(data_dir(d) / "dev.jsonl"))
    tagged = clf.predict(dev)
    assert [u.id for u in tagged[0].utterances] == [u.id for u in dev[0].utterances]
    assert dev[0].utterances[0].scores is None               # the input is not modified
    for s in tagged:
        for u in s.utterances:
            assert set(u.scores) == set(clf.schema.label_ids)
            for l in u.labels:
                assert u.scores[l] >= clf.thresholds[clf.schema.label_ids.index(l)] - 1e-4
            other = [l for l in clf.schema.labels if l.speaker not in ("any", u.speaker)]
            assert all(u.scores[l.id] == 0.0 for l in other)


def test_save_pretrained_round_trip(tmp_path):
    clf = RuptureClassifier.from_pretrained(tiny_model("lora"))
    clf.save_pretrained(tmp_path / "copy")
    again = RuptureClassifier.from_pretrained(tmp_path / "copy")
    assert again.model_version == clf.model_version
    dev = list(read_sessions(data_dir(tiny_model("lora")) / "dev.jsonl"))
    np.testing.assert_allclose(again.predict_proba(dev), clf.predict_proba(dev), atol=1e-6)


def test_same_seed_same_model(tmp_path):
    from rupture_nlp.model.inputs import InputConfig
    from rupture_nlp.model.train import TrainConfig, train_model
    d = data_dir(tiny_model("lora"))
    cfg = lambda: TrainConfig(name="tiny-lora", weights="lora", max_steps=2, batch_size=8, n_boot=20, baselines=False,  # noqa: E731
                              input=InputConfig(context=2, max_length=64))
    train_model(d / "train.jsonl", d / "dev.jsonl", tmp_path / "again", config=cfg(), seed=7)
    a = load_file(tiny_model("lora") / "head.safetensors")
    b = load_file(tmp_path / "again" / "head.safetensors")
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert (tiny_model("lora") / "adapter_model.safetensors").read_bytes() == \
        (tmp_path / "again" / "adapter_model.safetensors").read_bytes()


def test_full_fine_tuning_saves_the_encoder():
    d = tiny_model("full")
    assert (d / "encoder" / "model.safetensors").is_file() and not (d / "adapter_model.safetensors").exists()
    clf = RuptureClassifier.from_pretrained(d)
    assert clf.config.weights == "full"
    dev = list(read_sessions(data_dir(d) / "dev.jsonl"))
    P = clf.predict_proba(dev)
    assert np.isfinite(P).all() and ((P >= 0) & (P <= 1)).all()


def test_exclusive_schema_model_predicts_at_most_one_label_per_exclusive_category():
    d = tiny_model("exclusive")
    clf = RuptureClassifier.from_pretrained(d)
    assert clf.config.pooling == "cls" and clf.schema.name == "toy-exclusive"
    dev = list(read_sessions(data_dir(d) / "dev.jsonl"))
    P = clf.predict_proba(dev)
    talk = [clf.schema.label_ids.index(l) for l in clf.schema.labels_in("talk")]
    assert (P[:, talk].sum(1) <= 1 + 1e-5).all()
    for s in clf.predict(dev):
        for u in s.utterances:
            assert sum(l.startswith("talk/") for l in u.labels) <= 1


def test_training_data_with_unknown_labels_is_refused(tmp_path):
    from rupture_nlp.errors import RuptureError
    from rupture_nlp.model.train import train_model
    d = data_dir(tiny_model("lora"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text((d / "train.jsonl").read_text().replace("withdrawal/denial", "withdrawal/made_up"))
    with pytest.raises(RuptureError, match="withdrawal/made_up"):
        train_model(bad, d / "dev.jsonl", tmp_path / "m")


def test_rupture_train_cli_default_recipe_end_to_end(tmp_path):
    """`rupture train` with its defaults (full fine-tuning, frozen embeddings) writes a complete
    model directory with both baselines and a card; the embeddings are exactly the base's."""
    from typer.testing import CliRunner

    from rupture_nlp.cli import app
    from rupture_nlp.model.base import resolve_base
    from rupture_nlp.model.hf import load_encoder
    d = data_dir(tiny_model("lora"))
    out = tmp_path / "m"
    r = CliRunner().invoke(app, ["train", "--train", str(d / "train.jsonl"), "--dev", str(d / "dev.jsonl"),
                                 "--out", str(out), "--max-steps", "2", "--bootstrap", "20", "--epochs", "1"])
    assert r.exit_code == 0, r.output
    assert "dev macro-F1 fine" in r.output and "baseline tfidf" in r.output and "baseline textcat" in r.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["weights"] == "full" and (out / "encoder" / "model.safetensors").is_file()
    tc = json.loads((out / "training_config.json").read_text())
    assert tc["freeze_embeddings"] is True and tc["encoder_lr"] == 1e-4
    assert (out / "baselines" / "tfidf" / "weights.safetensors").is_file()
    assert (out / "baselines" / "textcat").is_dir()
    assert "## Results on the dev split" in (out / "README.md").read_text()
    trained = RuptureClassifier.from_pretrained(out).net.encoder.embeddings.state_dict()
    base = load_encoder(resolve_base(None).path, "mean").embeddings.state_dict()
    assert all(torch_equal(trained[k], base[k]) for k in base)
    changed = RuptureClassifier.from_pretrained(out).net.encoder.state_dict()
    base_all = load_encoder(resolve_base(None).path, "mean").state_dict()
    assert any(not torch_equal(changed[k], base_all[k]) for k in base_all if ".layer.0." in k)


def torch_equal(a, b) -> bool:
    import torch
    return bool(torch.equal(a, b))


def test_rupture_train_compact_writes_a_small_model_that_reproduces_its_dev_scores(tmp_path):
    from typer.testing import CliRunner

    from rupture_nlp.cli import app
    d = data_dir(tiny_model("lora"))
    out = tmp_path / "small"
    r = CliRunner().invoke(app, ["train", "--train", str(d / "train.jsonl"), "--dev", str(d / "dev.jsonl"),
                                 "--out", str(out), "--max-steps", "2", "--bootstrap", "20", "--epochs", "1",
                                 "--compact", "8"])
    assert r.exit_code == 0, r.output
    assert "compact, rank 8" in r.output
    assert not (out / "encoder").exists() and not (tmp_path / ".small.full").exists()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["weights"] == "lora" and cfg["lora"]["dtype"] == "int8" and cfg["lora"]["r"] == 8
    assert (out / "baselines" / "tfidf" / "weights.safetensors").is_file()
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and "baselines" not in p.parts)
    assert size < 2_000_000
    metrics = json.loads((out / "metrics.json").read_text())
    clf = RuptureClassifier.from_pretrained(out)
    assert clf.model_version == metrics["model_version"] and metrics["compact"]["rank"] == 8
    dev = list(read_sessions(d / "dev.jsonl"))
    res = evaluate_predictions(dev, clf.predict_proba(dev), clf.schema, clf.thresholds, n_boot=0)
    assert res["fine"]["macro"]["f1"] == pytest.approx(metrics["dev_macro_f1"]["fine"], abs=1e-6)
    assert "Compact form" in (out / "README.md").read_text()


def test_rupture_train_compact_needs_full_weights(tmp_path, monkeypatch, capsys):
    from ingest_helpers import run_cli
    d = data_dir(tiny_model("lora"))
    code, out, err = run_cli(monkeypatch, capsys, "train", "--train", str(d / "train.jsonl"), "--dev",
                             str(d / "dev.jsonl"), "--out", str(tmp_path / "x"), "--weights", "lora", "--compact", "8")
    assert code != 0 and "--compact needs --weights full" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
