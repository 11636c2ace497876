"""Baselines are one registry: a baseline registered anywhere is trained beside the model, saved,
loaded by kind, evaluated and reported, with no list of names to edit.

The example baseline is the label prior (``PRIOR_MODULE``: exactly the one file a new baseline in
``rupture_nlp/baselines/`` is); it is registered from here and removed again.
"""

from __future__ import annotations

import numpy as np
import pytest

from eval_helpers import schema_3rs, toy_corpus, write_jsonl
from rupture_nlp.baselines import (
    TextcatBaseline,
    TfidfBaseline,
    baseline_names,
    get_baseline,
    load_baseline,
    unregister_baseline,
)
from rupture_nlp.errors import RuptureError
from rupture_nlp.report.evaluation import format_report
from rupture_nlp.workflow import evaluate_model_dir, train_baselines

PRIOR_MODULE = '''\
"""The label prior: every utterance gets each label's share of the training utterances."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

from ..atomic import atomic_dir
from ..errors import RuptureError
from ..records import Session
from ..schema import LabelSchema
from .base import Baseline, check_training_data, load_schema_checked, read_config
from .registry import register_baseline


@register_baseline
class PriorBaseline(Baseline):
    """Each label's frequency in training as its probability, for every utterance."""

    kind = "prior"   # the registry's name, config.json's kind, baselines/prior/
    order = 30       # after tfidf (10) and textcat (20) in training, tables and reports

    def __init__(self, *, seed: int = 13):
        self.seed = seed
        self.prior: np.ndarray | None = None
        self.thresholds = np.zeros(0)

    def fit(self, sessions: Iterable[Session], schema: LabelSchema,
            dev_sessions: Iterable[Session] | None = None) -> "PriorBaseline":
        self.schema = schema
        self.prior = check_training_data(list(sessions), schema, "training").mean(axis=0)
        self._tune(list(dev_sessions) if dev_sessions is not None else None)   # thresholds on dev
        return self

    def predict_proba(self, sessions: Iterable[Session]) -> np.ndarray:
        return np.tile(self.prior, (sum(len(s.utterances) for s in sessions), 1))

    def save(self, path: str | Path) -> Path:
        with atomic_dir(path) as tmp:
            cfg = {**self._base_config(), "seed": self.seed, "prior": self.prior.tolist()}
            (tmp / "config.json").write_text(json.dumps(cfg, indent=1) + "\\n", encoding="utf-8")
            self.schema.save(tmp / "schema.yaml")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "PriorBaseline":
        path = Path(path)
        cfg = read_config(path, cls.kind)
        try:
            self = cls(seed=int(cfg["seed"]))
            self.schema = load_schema_checked(path, list(cfg["label_ids"]))
            self.prior = np.asarray(cfg["prior"], dtype=float)
            self.thresholds = np.asarray(cfg["thresholds"], dtype=float)
        except (KeyError, TypeError, ValueError) as e:
            raise RuptureError(f"corrupt baseline config.json ({type(e).__name__})", path / "config.json") from None
        return self
'''


@pytest.fixture()
def prior():
    """The prior baseline, registered as its module would register it, and removed afterwards."""
    namespace = {"__name__": "rupture_nlp.baselines.prior", "__package__": "rupture_nlp.baselines"}
    exec(compile(PRIOR_MODULE, "prior.py", "exec"), namespace)  # noqa: S102 - the module text above
    try:
        yield namespace["PriorBaseline"]
    finally:
        if "prior" in baseline_names():
            unregister_baseline("prior")


def test_built_in_baselines_in_their_order():
    assert baseline_names() == ["tfidf", "textcat"]
    assert get_baseline("tfidf") is TfidfBaseline and get_baseline("textcat") is TextcatBaseline
    with pytest.raises(RuptureError, match=r"unknown baseline 'nb' \(known: tfidf, textcat\)"):
        get_baseline("nb")


def test_a_registered_baseline_is_trained_loaded_evaluated_and_reported(prior, tmp_path):
    schema = schema_3rs()
    assert baseline_names() == ["tfidf", "textcat", "prior"]
    info = train_baselines(toy_corpus(6, seed=1), toy_corpus(3, seed=2), schema, tmp_path, which=["prior", "tfidf"])
    assert set(info) == {"prior", "tfidf"} and info["prior"]["dev_macro_f1"]["fine"] is not None
    saved = load_baseline(tmp_path / "baselines" / "prior")
    assert isinstance(saved, prior) and saved.prior.shape == (len(schema.label_ids),)
    test = toy_corpus(3, seed=3)
    assert np.array_equal(saved.predict_proba(test), np.tile(saved.prior, (sum(len(s.utterances) for s in test), 1)))
    res = evaluate_model_dir(tmp_path, write_jsonl(tmp_path / "test.jsonl", test), n_boot=0)
    assert list(res["baselines"]) == ["tfidf", "prior"]  # the registry's order
    assert "| prior (baseline) |" in format_report(res)
    unregister_baseline("prior")
    with pytest.raises(RuptureError, match="unknown baseline kind 'prior'"):
        load_baseline(tmp_path / "baselines" / "prior")
