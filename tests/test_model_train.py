"""Tiny real training runs: the saved directory, reload, reproducibility, thresholds.

Probabilities are checked against a hand computation from the network's parts (encoder output,
pooling, head, then sigmoid or softmax, then the speaker mask), and reloads against the
predictions of the model as training held it in memory.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rupture_nlp.decision import label_matrix, tune_thresholds
from rupture_nlp.scoring import evaluate_predictions
from rupture_nlp.model import RuptureClassifier
from rupture_nlp.model.inputs import encode, session_examples
from rupture_nlp.records import Session, read_sessions

from model_helpers import LINES, TOY_MAP, data_dir, in_memory_dev_proba, make_session

EXPECTED = {
    "config.json",
    "head.safetensors",
    "adapter_model.safetensors",
    "adapter_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "schema.yaml",
    "thresholds.json",
    "training_config.json",
    "metrics.json",
    "README.md",
}


def hand_probabilities(clf: RuptureClassifier, session: Session) -> np.ndarray:
    """The probabilities of every utterance of ``session`` computed by hand, one utterance at a
    time (no padding): pooled encoder output (+ pause features) -> head logits (float64) -> a
    sigmoid per label of a non-exclusive category (in label order), then per exclusive category a
    softmax over its 'none' logit and its labels' logits -> 0 for labels the speaker cannot carry."""
    cfg = clf.config.input
    enc = encode(clf.tokenizer, session_examples(session, cfg), cfg)
    W = clf.net.head.weight.detach().double().numpy()
    b = clf.net.head.bias.detach().double().numpy()
    schema = clf.schema
    exclusive = [c.id for c in schema.categories if c.exclusive and len(schema.labels_in(c.id)) >= 2]
    rows = []
    for i, u in enumerate(session.utterances):
        ids = torch.tensor([enc["input_ids"][i]])
        kw = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if "token_type_ids" in enc:
            kw["token_type_ids"] = torch.tensor([enc["token_type_ids"][i]])
        with torch.no_grad():
            out = clf.net.encoder(**kw)
        z = out.pooler_output[0] if clf.config.pooling == "cls" else out.last_hidden_state[0].mean(0)
        z = z.double().numpy()
        if cfg.pause_feature:
            z = np.concatenate([z, np.asarray(enc["pause"][i], dtype=float)])
        logits = W @ z + b
        p, k = {}, 0
        for lid in schema.label_ids:
            if schema.category_of(lid) not in exclusive:
                p[lid] = 1.0 / (1.0 + np.exp(-logits[k]))
                k += 1
        for cat in exclusive:
            members = [lid for lid in schema.label_ids if schema.category_of(lid) == cat]
            g = logits[k : k + 1 + len(members)]
            e = np.exp(g - g.max())
            p.update(zip(members, e[1:] / e.sum()))
            k += 1 + len(members)
        assert k == len(logits)
        masked = clf.config.speaker_mask
        rows.append(
            [
                p[lid] if not masked or schema.label(lid).speaker in ("any", u.speaker) else 0.0
                for lid in schema.label_ids
            ]
        )
    return np.array(rows)


def tiny_input(remap: dict | None = None) -> Session:
    """Three utterances, therapist and client, one after a long pause (different lengths, so the
    model's batches are padded)."""
    return make_session("hand", [LINES[0], LINES[1], LINES[7]], remap)


def test_lora_model_directory_is_compact_and_safe(tiny_model):
    d = tiny_model("lora")
    names = {p.name for p in d.iterdir()}
    assert EXPECTED <= names
    assert not any(p.suffix in (".bin", ".pt", ".pkl", ".pickle", ".joblib") for p in d.rglob("*"))
    size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
    assert size < 3_000_000, size
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["format"] == "rupture-classifier" and cfg["weights"] == "lora"
    assert cfg["base"]["default"] is True and "path" not in cfg["base"]  # no local paths recorded
    ac = json.loads((d / "adapter_config.json").read_text())
    assert ac["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert set(load_file(d / "head.safetensors")) == {"head.weight", "head.bias"}
    card = (d / "README.md").read_text()
    for part in ("## Intended use", "## Limits", "## Results on the dev split", "LoRA"):
        assert part in card


def test_reload_reproduces_predictions_and_recorded_dev_scores(tiny_model):
    d = tiny_model("lora")
    dev = list(read_sessions(data_dir(d) / "dev.jsonl"))
    a = RuptureClassifier.from_pretrained(d)
    Pa = a.predict_proba(dev)
    assert Pa.shape == (sum(len(s.utterances) for s in dev), 23)
    # the saved and reloaded model (adapters merged into the base) predicts what the trained
    # network predicted in memory (adapters separate) before it was saved
    trained = in_memory_dev_proba(d)
    assert trained.shape == Pa.shape and np.ptp(trained) > 0.05
    np.testing.assert_allclose(Pa, trained, atol=1e-5)
    assert RuptureClassifier.from_pretrained(d).model_version == a.model_version
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["model_version"] == a.model_version
    res = evaluate_predictions(dev, Pa, a.schema, a.thresholds, n_boot=0)
    assert res["fine"]["macro"]["f1"] == pytest.approx(metrics["dev_macro_f1"]["fine"], abs=1e-6)
    assert res["coarse"]["macro"]["f1"] == pytest.approx(metrics["dev_macro_f1"]["coarse"], abs=1e-6)
    # thresholds are the ones tuned on dev
    th = tune_thresholds(label_matrix(dev, a.schema), Pa)
    np.testing.assert_allclose(a.thresholds, th, atol=1e-4)


def test_speaker_mask_and_predict_sets_labels_and_scores(tiny_model):
    d = tiny_model("lora")
    clf = RuptureClassifier.from_pretrained(d)
    dev = list(read_sessions(data_dir(d) / "dev.jsonl"))
    tagged = clf.predict(dev)
    assert [u.id for u in tagged[0].utterances] == [u.id for u in dev[0].utterances]
    assert dev[0].utterances[0].scores is None  # the input is not modified
    for s in tagged:
        for u in s.utterances:
            assert set(u.scores) == set(clf.schema.label_ids)
            for l in u.labels:
                assert u.scores[l] >= clf.thresholds[clf.schema.label_ids.index(l)] - 1e-4
            other = [l for l in clf.schema.labels if l.speaker not in ("any", u.speaker)]
            assert all(u.scores[l.id] == 0.0 for l in other)


def test_save_pretrained_round_trip(tiny_model, tmp_path):
    """A model changed in memory (head and thresholds) and saved loads as the in-memory model,
    not as the directory it came from."""
    src = tiny_model("lora")
    dev = list(read_sessions(data_dir(src) / "dev.jsonl"))
    clf = RuptureClassifier.from_pretrained(src)
    before = clf.predict_proba(dev)
    with torch.no_grad():
        g = torch.Generator().manual_seed(3)
        clf.net.head.weight.add_(0.05 * torch.randn(clf.net.head.weight.shape, generator=g))
        clf.net.head.bias.add_(torch.linspace(-1.0, 1.0, clf.net.head.bias.numel()))
    clf.thresholds = np.linspace(0.2, 0.7, len(clf.thresholds))
    in_memory = clf.predict_proba(dev)
    assert np.abs(in_memory - before).max() > 0.05  # the change shows in the predictions
    clf.save_pretrained(tmp_path / "copy")
    again = RuptureClassifier.from_pretrained(tmp_path / "copy")
    np.testing.assert_allclose(again.predict_proba(dev), in_memory, atol=1e-6)
    np.testing.assert_allclose(again.thresholds, np.round(np.linspace(0.2, 0.7, len(clf.thresholds)), 4))
    assert again.model_version == clf.model_version
    assert again.model_version != RuptureClassifier.from_pretrained(src).model_version


def test_same_seed_same_model(tiny_model, tmp_path):
    from rupture_nlp.model.inputs import InputConfig
    from rupture_nlp.model.train import TrainConfig
    from rupture_nlp.workflow import train_model

    d = data_dir(tiny_model("lora"))
    cfg = TrainConfig(
        name="tiny-lora",
        weights="lora",
        max_steps=2,
        batch_size=8,
        n_boot=20,
        baselines=False,
        input=InputConfig(context=2, max_length=64),
    )
    train_model(d / "train.jsonl", d / "dev.jsonl", tmp_path / "again", config=cfg, seed=7)
    a = load_file(tiny_model("lora") / "head.safetensors")
    b = load_file(tmp_path / "again" / "head.safetensors")
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert (tiny_model("lora") / "adapter_model.safetensors").read_bytes() == (
        tmp_path / "again" / "adapter_model.safetensors"
    ).read_bytes()


def test_full_fine_tuning_saves_the_encoder(tiny_model):
    d = tiny_model("full")
    assert (d / "encoder" / "model.safetensors").is_file() and not (d / "adapter_model.safetensors").exists()
    clf = RuptureClassifier.from_pretrained(d)
    assert clf.config.weights == "full" and clf.config.pooling == "mean" and clf.config.speaker_mask
    # the saved encoder is the trained one: the reload predicts what training had in memory
    dev = list(read_sessions(data_dir(d) / "dev.jsonl"))
    np.testing.assert_allclose(clf.predict_proba(dev), in_memory_dev_proba(d), atol=1e-5)
    # probabilities are the sigmoid of the head's logits, masked by speaker
    session = tiny_input()
    P = clf.predict_proba([session])
    want = hand_probabilities(clf, session)
    np.testing.assert_allclose(P, want, atol=1e-5)
    client_only = [i for i, l in enumerate(clf.schema.labels) if l.speaker == "client"]
    assert (P[0, client_only] == 0).all() and (P[1, client_only] > 0).all()  # therapist row / client row


def test_exclusive_schema_model_predicts_at_most_one_label_per_exclusive_category(tiny_model):
    d = tiny_model("exclusive")
    clf = RuptureClassifier.from_pretrained(d)
    assert clf.config.pooling == "cls" and clf.schema.name == "toy-exclusive"
    dev = list(read_sessions(data_dir(d) / "dev.jsonl"))
    P = clf.predict_proba(dev)
    np.testing.assert_allclose(P, in_memory_dev_proba(d), atol=1e-5)
    # talk/*: a softmax over 'none' and the two labels ([CLS] pooling); move/reflect: a sigmoid
    session = tiny_input(TOY_MAP)
    np.testing.assert_allclose(clf.predict_proba([session]), hand_probabilities(clf, session), atol=1e-5)
    for s in clf.predict(dev):
        for u in s.utterances:
            assert sum(l.startswith("talk/") for l in u.labels) <= 1


def test_training_data_with_unknown_labels_is_refused(tiny_model, tmp_path):
    from rupture_nlp.errors import RuptureError
    from rupture_nlp.workflow import train_model

    d = data_dir(tiny_model("lora"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text((d / "train.jsonl").read_text().replace("withdrawal/denial", "withdrawal/made_up"))
    with pytest.raises(RuptureError, match="withdrawal/made_up"):
        train_model(bad, d / "dev.jsonl", tmp_path / "m")


@pytest.mark.slow
@pytest.mark.parametrize("arch", [None, "cross"])
def test_rupture_train_cli_default_recipe_end_to_end(tiny_model, tmp_path, arch):
    """`rupture train` with its defaults (session architecture, full fine-tuning, frozen
    embeddings, one ASR rendering per training session; the head's GRU sized by ``--hidden``) —
    and with ``--arch cross`` — writes a
    complete model directory with both baselines and a card; the embeddings are exactly the base's."""
    from typer.testing import CliRunner

    from rupture_nlp.cli import app
    from rupture_nlp.model.base import resolve_base
    from rupture_nlp.model.hf import load_encoder

    d = data_dir(tiny_model("lora"))
    out = tmp_path / "m"
    r = CliRunner().invoke(
        app,
        [
            "train",
            "--train",
            str(d / "train.jsonl"),
            "--dev",
            str(d / "dev.jsonl"),
            "--out",
            str(out),
            "--max-steps",
            "2",
            "--bootstrap",
            "20",
            "--epochs",
            "1",
            "--head-epochs",
            "1",
        ]
        + (["--arch", arch] if arch else ["--hidden", "24"]),
    )
    assert r.exit_code == 0, r.output
    assert "dev macro-F1 fine" in r.output and "baseline tfidf" in r.output and "baseline textcat" in r.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["weights"] == "full" and (out / "encoder" / "model.safetensors").is_file()
    assert cfg["arch"] == (arch or "session")
    if arch is None:  # --hidden sizes the dialogue head's GRU
        assert cfg["session"]["hidden"] == 24
        assert RuptureClassifier.from_pretrained(out).net.head.gru.hidden_size == 24
    tc = json.loads((out / "training_config.json").read_text())
    assert tc["freeze_embeddings"] is True and tc["encoder_lr"] == 1e-4
    assert tc["asr_copies"] == 1
    n_train = len(list(read_sessions(d / "train.jsonl")))
    assert json.loads((out / "metrics.json").read_text())["data"]["train"]["sessions"] == n_train
    card = (out / "README.md").read_text()
    assert ("dialogue head" in card) == (arch is None)
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


@pytest.mark.slow
def test_rupture_train_compact_writes_a_small_model_that_reproduces_its_dev_scores(tiny_model, tmp_path):
    from typer.testing import CliRunner

    from rupture_nlp.cli import app

    d = data_dir(tiny_model("lora"))
    out = tmp_path / "small"
    r = CliRunner().invoke(
        app,
        [
            "train",
            "--train",
            str(d / "train.jsonl"),
            "--dev",
            str(d / "dev.jsonl"),
            "--out",
            str(out),
            "--max-steps",
            "2",
            "--bootstrap",
            "20",
            "--epochs",
            "1",
            "--compact",
            "8",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "compact, rank 8" in r.output
    assert not (out / "encoder").exists() and not (tmp_path / ".small.full").exists()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["weights"] == "lora" and cfg["lora"]["dtype"] == "int8" and cfg["lora"]["r"] == 8
    assert (out / "baselines" / "tfidf" / "weights.safetensors").is_file()
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and "baselines" not in p.parts)
    assert size < 3_000_000  # the session model's int8 dialogue head is 1.4 MB of it
    metrics = json.loads((out / "metrics.json").read_text())
    clf = RuptureClassifier.from_pretrained(out)
    assert clf.model_version == metrics["model_version"] and metrics["compact"]["rank"] == 8
    dev = list(read_sessions(d / "dev.jsonl"))
    res = evaluate_predictions(dev, clf.predict_proba(dev), clf.schema, clf.thresholds, n_boot=0)
    assert res["fine"]["macro"]["f1"] == pytest.approx(metrics["dev_macro_f1"]["fine"], abs=1e-6)
    assert "Compact form" in (out / "README.md").read_text()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--weights", "lora", "--compact", "8"], "--compact needs --weights full"),
        (["--freeze-encoder", "--joint-epochs", "1"], "rupture train: joint fine-tuning needs"),
    ],
)
def test_rupture_train_refuses_settings_that_do_not_go_together(
    tiny_model, tmp_path, monkeypatch, capsys, options, message
):
    """Before any work: a one-line error, non-zero exit, nothing written."""
    from ingest_helpers import run_cli

    d = data_dir(tiny_model("lora"))
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "train",
        "--train",
        str(d / "train.jsonl"),
        "--dev",
        str(d / "dev.jsonl"),
        "--out",
        str(tmp_path / "x"),
        *options,
    )
    assert code != 0 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
