"""The committed default model loads over the hash-checked base and reproduces its recorded dev scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rupture_nlp.model import RuptureClassifier
from rupture_nlp.model.base import file_sha256
from rupture_nlp.records import read_sessions
from rupture_nlp.scoring import evaluate_predictions

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "rupture-3rs-minilm"
DEV = ROOT / "corpora" / "dev.jsonl"

pytestmark = pytest.mark.skipif(not (MODEL / "config.json").is_file(), reason="the default model is not built yet")


@pytest.fixture(scope="module")
def clf():
    return RuptureClassifier.from_pretrained(MODEL)


@pytest.fixture(scope="module")
def metrics():
    return json.loads((MODEL / "metrics.json").read_text())


def test_default_model_is_compact_and_loads(clf, metrics):
    size = sum(p.stat().st_size for p in MODEL.rglob("*") if p.is_file() and "baselines" not in p.parts)
    total = sum(p.stat().st_size for p in MODEL.rglob("*") if p.is_file())
    # the model itself stays under 6 MB (2.8 MB of int8 adapters, 1.4 MB of int8 dialogue head,
    # 0.7 MB of tokenizer); the
    # baselines' n-gram vocabularies grew with corpus v2 (34k training units, 5x v1's): 5.3 MB of
    # baselines, so under 12 MB in all
    assert size < 6_000_000 and total < 12_000_000, f"{size / 1e6:.1f} MB, {total / 1e6:.1f} MB with baselines"
    assert clf.config.arch == "session"
    assert clf.config.weights == "lora" and clf.base is not None and clf.base.is_default
    assert clf.config.lora["dtype"] == "int8" and not (MODEL / "encoder").exists()
    assert clf.model_version == metrics["model_version"]
    assert (MODEL / "baselines" / "tfidf").is_dir() and (MODEL / "baselines" / "textcat").is_dir()


def _dev(metrics) -> list:
    if not DEV.is_file():
        pytest.skip("corpora/dev.jsonl is not built (python scripts/build_corpus.py)")
    assert file_sha256(DEV) == metrics["data"]["dev"]["sha256"], (
        "corpora/dev.jsonl changed since the default model was built: rebuild it (scripts/build_default_model.py)"
    )
    return list(read_sessions(DEV))


@pytest.mark.slow
def test_default_model_reproduces_recorded_dev_scores(clf, metrics):
    dev = _dev(metrics)
    P = clf.predict_proba(dev)
    res = evaluate_predictions(dev, P, clf.schema, clf.thresholds, n_boot=0)
    assert res["fine"]["macro"]["f1"] == pytest.approx(metrics["dev_macro_f1"]["fine"], abs=0.005)
    assert res["coarse"]["macro"]["f1"] == pytest.approx(metrics["dev_macro_f1"]["coarse"], abs=0.005)


def test_default_model_reproduces_recorded_probabilities(clf, metrics):
    import numpy as np

    dev = _dev(metrics)
    rep = metrics["reproduce"]
    s = next(x for x in dev if x.session_id == rep["session_id"])
    # the first utterances' scores with the whole session around them (a session model reads ahead)
    P = clf.predict_proba([s])[: rep["n_utterances"]]
    np.testing.assert_allclose(P, np.array(rep["probabilities"]), atol=2e-3)
