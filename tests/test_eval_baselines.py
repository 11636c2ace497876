"""The TF-IDF and textcat baselines: training, safe save/load, exclusive categories, bad directories."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from eval_helpers import make_session, schema_3rs, toy_corpus
from rupture_nlp.baselines import TextcatBaseline, TfidfBaseline, load_baseline, utterance_texts
from rupture_nlp.decision import decide
from rupture_nlp.errors import RuptureError
from rupture_nlp.schema import LabelSchema
from rupture_nlp.scoring import evaluate_predictions
from rupture_nlp.workflow import train_baselines


@pytest.fixture(scope="module")
def trained(trained_baselines):
    return trained_baselines


@pytest.mark.parametrize("name", ["tfidf", "textcat"])
def test_reload_reproduces_probabilities(trained, name, tmp_path):
    """A baseline trained in memory, saved and loaded predicts what the in-memory one predicted."""
    test, schema = trained["test"], trained["schema"]
    fresh = (TfidfBaseline() if name == "tfidf" else TextcatBaseline(epochs=4)).fit(
        trained["train"], schema, trained["dev"]
    )
    P = fresh.predict_proba(test)
    assert P.shape == (sum(len(s.utterances) for s in test), len(schema.label_ids))
    assert np.ptp(P) > 0.5  # not a constant output
    again = load_baseline(fresh.save(tmp_path / name))
    np.testing.assert_allclose(again.predict_proba(test), P, atol=1e-6)
    np.testing.assert_allclose(again.thresholds, fresh.thresholds, atol=1e-4)
    if name == "tfidf":  # seeded: the same training gives the very model train_baselines saved
        saved = load_baseline(trained["root"] / "baselines" / name)
        assert np.array_equal(saved.predict_proba(test), P)
        assert np.array_equal(saved.thresholds, fresh.thresholds)


@pytest.mark.parametrize("name", ["tfidf", "textcat"])
def test_beats_chance_on_separable_toy_set(trained, name):
    model = load_baseline(trained["root"] / "baselines" / name)
    test, schema = trained["test"], trained["schema"]
    res = evaluate_predictions(test, model.predict_proba(test), schema, model.thresholds, n_boot=0)
    rng = np.random.default_rng(0)
    chance = evaluate_predictions(test, rng.random(model.predict_proba(test).shape), schema, 0.5, n_boot=0)
    assert res["fine"]["macro"]["n_labels"] == 5
    assert res["fine"]["macro"]["f1"] >= 0.8 > chance["fine"]["macro"]["f1"] + 0.3
    assert res["coarse"]["macro"]["f1"] >= 0.8
    assert trained["info"][name]["dev_macro_f1"]["fine"] >= 0.8


def test_saved_files_are_safe_formats(trained):
    base = trained["root"] / "baselines"
    files = [p for p in base.rglob("*") if p.is_file()]
    assert {p.relative_to(base).as_posix() for p in files} >= {
        "tfidf/config.json",
        "tfidf/schema.yaml",
        "tfidf/vocabulary.json",
        "tfidf/weights.safetensors",
        "textcat/config.json",
        "textcat/schema.yaml",
        "textcat/nlp/config.cfg",
    }
    for p in files:
        head = p.read_bytes()[:2]
        assert not (len(head) == 2 and head[0] == 0x80 and head[1] in range(2, 6)), f"{p} looks like a pickle"
        assert p.suffix not in (".pkl", ".pickle", ".joblib")
    cfg = json.loads((base / "tfidf" / "config.json").read_text())
    assert cfg["kind"] == "tfidf" and len(cfg["thresholds"]) == 23 and cfg["C"] in (1.0, 4.0, 16.0, 64.0)
    assert not list(base.glob(".*")), "temporary directories left behind"


def test_inputs_carry_speaker_pause_and_previous_utterance():
    s = make_session("p1", [("T", "How was it?", []), ("C", "Fine.", [])], pauses={1: 6.0})
    cur, prev = utterance_texts([s])
    assert cur == ["spk_therapist How was it?", "spk_client pause_vlong Fine."]
    assert prev == ["", "spk_therapist How was it?"]


def test_exclusive_category_respected_by_predict():
    d = schema_3rs().to_dict()
    for c in d["categories"]:
        c["exclusive"] = c["id"] == "confrontation"
    schema = LabelSchema.from_dict(d)
    both = ["confrontation/complaint_therapist", "confrontation/complaint_activities"]
    rows = [
        ("C", "You never listen and this homework is pointless.", both),
        ("C", "You never listen to me.", both[:1]),
        ("C", "This homework is pointless.", both[1:]),
        ("T", "What did you do on Sunday?", []),
        ("C", "I saw my sister.", []),
    ]
    train = [make_session(f"x{i}", rows) for i in range(6)]
    model = TfidfBaseline(C=4.0).fit(train, schema)
    probe = [make_session("probe", rows[:1])]
    P = model.predict_proba(probe)
    idx = [schema.label_ids.index(l) for l in both]
    assert (P[0, idx] >= model.thresholds[idx]).all()  # both on before the exclusive rule
    assert decide(P, schema, model.thresholds)[0, idx].sum() == 1
    labels = model.predict(probe)[0].utterances[0].labels
    assert len([l for l in labels if l.startswith("confrontation/")]) == 1
    assert probe[0].utterances[0].scores is None  # predict works on copies


def test_training_data_errors():
    schema = schema_3rs()
    unlabelled = [make_session("u", [("C", "Hello.", None), ("T", "Hi.", [])])]
    with pytest.raises(RuptureError, match="no gold labels"):
        TfidfBaseline().fit(unlabelled, schema)
    unknown = [make_session("k", [("C", "Hello.", ["withdrawal/sulking"])])]
    with pytest.raises(RuptureError, match="withdrawal/sulking"):
        TfidfBaseline().fit(unknown, schema)


def test_bad_directories_give_clear_errors(trained, tmp_path):
    with pytest.raises(RuptureError, match="not found"):
        TfidfBaseline.load(tmp_path / "nothing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuptureError, match="config.json is missing"):
        load_baseline(empty)
    src = trained["root"] / "baselines"
    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    (broken / "tfidf" / "config.json").write_text("{not json")
    with pytest.raises(RuptureError, match="corrupt baseline config.json"):
        load_baseline(broken / "tfidf")
    w = broken / "tfidf" / "weights.safetensors"
    shutil.copy(src / "tfidf" / "config.json", broken / "tfidf" / "config.json")
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(RuptureError, match="corrupt baseline files"):
        load_baseline(broken / "tfidf")
    with pytest.raises(RuptureError, match="is not a 'textcat' baseline"):
        TextcatBaseline.load(src / "tfidf")
    shutil.rmtree(broken / "textcat" / "nlp" / "textcat_multilabel")
    with pytest.raises(RuptureError, match="corrupt spaCy pipeline"):
        load_baseline(broken / "textcat")


def test_train_baselines_replaces_existing_dir_atomically(tmp_path):
    schema = schema_3rs()
    train = toy_corpus(4, seed=5)
    first = train_baselines(train, None, schema, tmp_path, which=["tfidf"])
    before = (tmp_path / "baselines" / "tfidf" / "weights.safetensors").read_bytes()
    train_baselines(toy_corpus(4, seed=6), None, schema, tmp_path, which=["tfidf"])
    after = (tmp_path / "baselines" / "tfidf" / "weights.safetensors").read_bytes()
    assert before != after and first["tfidf"]["dev_macro_f1"] is None
    assert sorted(p.name for p in (tmp_path / "baselines").iterdir()) == ["tfidf"]
    assert np.allclose(load_baseline(tmp_path / "baselines" / "tfidf").thresholds, 0.5)


def test_atomic_dir_leaves_old_version_on_failure(tmp_path):
    from rupture_nlp.atomic import atomic_dir

    target = tmp_path / "tfidf"
    with atomic_dir(target) as d:
        (d / "config.json").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as d:
            (d / "config.json").write_text("new, half-written")
            raise KeyboardInterrupt
    assert (target / "config.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["tfidf"]
