"""TF-IDF n-grams and one logistic regression per label: the cheapest baseline.

The target utterance's n-grams and the previous utterance's words (its own vocabulary, so its
words stay apart from the target's). Saved as ``config.json``, ``schema.yaml``,
``vocabulary.json`` and ``weights.safetensors`` (idf vectors, coefficients, intercepts), from which
the exact same predictions are rebuilt.

scikit-learn, SciPy and safetensors are imported in the methods that use them, not at the top:
importing :mod:`rupture_nlp.baselines` (the CLI's help lists the registered baselines) stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..atomic import atomic_dir
from ..errors import RuptureError
from ..records import Session
from ..schema import LabelSchema
from .base import (
    Baseline,
    check_training_data,
    load_schema_checked,
    macro_average_precision,
    read_config,
    single_thread,
    utterance_texts,
)
from .registry import register_baseline


@register_baseline
class TfidfBaseline(Baseline):
    """TF-IDF n-grams of the utterance (+ the previous utterance) and one balanced logistic
    regression per label (scikit-learn ``OneVsRestClassifier``).

    Target n-grams (``ngram_range``) and previous-utterance words (scaled by ``context_weight``)
    seen in at least ``min_df`` training utterances. ``C`` is the inverse regularisation strength;
    with ``C=None`` it is chosen on the dev split from ``C_grid`` by macro average precision (1.0
    without dev). Probabilities are ``sigmoid(X @ coef.T + intercept)`` from the stored arrays
    (coefficients kept as float32 in memory and on disk), so a reloaded model predicts exactly the
    same numbers. A label without positives (or negatives) in training gets the constant
    probability 0 (or 1). Defaults chosen on the corpus dev split (see ``scripts/run_baselines.py``):
    ``min_df=2`` scored as well as 1 with a third of the features (~1.3 MB saved).
    """

    kind = "tfidf"
    order = 10

    def __init__(
        self,
        *,
        context: bool = True,
        C: float | None = None,
        C_grid: Sequence[float] = (1.0, 4.0, 16.0, 64.0),
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 2,
        context_weight: float = 0.5,
        seed: int = 13,
    ):
        self.context = context
        self.C = C
        self.C_grid = tuple(C_grid)
        self.ngram_range = tuple(ngram_range)
        self.min_df = min_df
        self.context_weight = context_weight
        self.seed = seed
        self.vec_cur = None
        self.vec_prev = None
        self.coef: np.ndarray | None = None  # (n_labels, n_features)
        self.intercept: np.ndarray | None = None  # (n_labels,)
        self.constant: dict[int, float] = {}  # label index -> constant probability
        self.thresholds = np.zeros(0)

    # -- features
    def _vectorizers(self):
        from sklearn.feature_extraction.text import TfidfVectorizer

        cur = TfidfVectorizer(ngram_range=self.ngram_range, min_df=self.min_df, sublinear_tf=True)
        prev = TfidfVectorizer(ngram_range=(1, 1), min_df=self.min_df, sublinear_tf=True) if self.context else None
        return cur, prev

    def _features(self, sessions: Iterable[Session], fit: bool = False):
        import scipy.sparse as sp

        cur, prev = utterance_texts(sessions)
        if fit:
            self.vec_cur, self.vec_prev = self._vectorizers()
            Xc = self.vec_cur.fit_transform(cur)
            Xp = self.vec_prev.fit_transform(prev) if self.vec_prev is not None else None
        else:
            Xc = self.vec_cur.transform(cur)
            Xp = self.vec_prev.transform(prev) if self.vec_prev is not None else None
        if Xp is None:
            return Xc.tocsr()
        return sp.hstack([Xc, self.context_weight * Xp], format="csr")

    # -- training
    def _fit_lr(self, X, Y: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        pos = Y.sum(axis=0)
        varying = np.flatnonzero((pos > 0) & (pos < len(Y)))
        constant = {int(j): (1.0 if pos[j] == len(Y) else 0.0) for j in range(Y.shape[1]) if j not in set(varying)}
        coef = np.zeros((Y.shape[1], X.shape[1]), dtype=np.float32)  # float32: half the disk size
        intercept = np.zeros(Y.shape[1])
        if len(varying):
            ovr = OneVsRestClassifier(
                LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=self.seed)
            )
            ovr.fit(X, Y[:, varying])
            for k, j in enumerate(varying):
                coef[j] = ovr.estimators_[k].coef_[0]
                intercept[j] = ovr.estimators_[k].intercept_[0]
        return coef, intercept, constant

    def fit(
        self, sessions: Iterable[Session], schema: LabelSchema, dev_sessions: Iterable[Session] | None = None
    ) -> "TfidfBaseline":
        """Train on ``sessions`` (gold ``labels``); tune C (if None) and thresholds on ``dev_sessions``."""
        with single_thread():
            return self._fit(list(sessions), schema, list(dev_sessions) if dev_sessions is not None else None)

    def _fit(self, sessions: list[Session], schema: LabelSchema, dev: list[Session] | None) -> "TfidfBaseline":
        self.schema = schema
        Y = check_training_data(sessions, schema, "training")
        X = self._features(sessions, fit=True)
        if self.C is None and dev:
            Yd = check_training_data(dev, schema, "dev")
            Xd = self._features(dev)
            scores = {}
            for C in self.C_grid:
                self.coef, self.intercept, self.constant = self._fit_lr(X, Y, C)
                scores[C] = macro_average_precision(Yd, self._proba(Xd))
            self.chosen_C = max(self.C_grid, key=lambda c: (scores[c], -abs(np.log(c))))
            self.selection = {str(c): round(v, 4) for c, v in scores.items()}
        else:
            self.chosen_C = self.C if self.C is not None else 1.0
            self.selection = {}
        self.coef, self.intercept, self.constant = self._fit_lr(X, Y, self.chosen_C)
        self._tune(dev)
        return self

    # -- prediction
    def _proba(self, X) -> np.ndarray:
        from scipy.special import expit

        P = expit(np.asarray(X @ self.coef.T) + self.intercept)
        for j, v in self.constant.items():
            P[:, j] = v
        return P

    def predict_proba(self, sessions: Iterable[Session]) -> np.ndarray:
        """Probabilities (n_utterances, n_labels) in ``schema.label_ids`` order."""
        if self.coef is None:
            raise RuntimeError("TfidfBaseline is not fitted")
        sessions = list(sessions)
        if not any(s.utterances for s in sessions):
            return np.zeros((0, len(self.schema.label_ids)))
        with single_thread():
            return self._proba(self._features(sessions))

    # -- persistence
    def save(self, path: str | Path) -> Path:
        """Write config.json, schema.yaml, vocabulary.json and weights.safetensors (atomically)."""
        from safetensors.numpy import save_file

        path = Path(path)
        cfg = self._base_config()
        cfg.update(
            {
                "context": self.context,
                "C": float(self.chosen_C),
                "C_selection": self.selection,
                "ngram_range": list(self.ngram_range),
                "min_df": self.min_df,
                "context_weight": self.context_weight,
                "seed": self.seed,
                "constant": {str(j): v for j, v in sorted(self.constant.items())},
                "sklearn_tfidf": {"sublinear_tf": True, "norm": "l2", "smooth_idf": True},
            }
        )
        vocab = {
            "current": {t: int(i) for t, i in self.vec_cur.vocabulary_.items()},
            "previous": (
                {t: int(i) for t, i in self.vec_prev.vocabulary_.items()} if self.vec_prev is not None else None
            ),
        }
        tensors = {
            "coef": np.ascontiguousarray(self.coef, dtype=np.float32),
            "intercept": np.ascontiguousarray(self.intercept, dtype=np.float64),
            "idf_current": np.ascontiguousarray(self.vec_cur.idf_, dtype=np.float64),
        }
        if self.vec_prev is not None:
            tensors["idf_previous"] = np.ascontiguousarray(self.vec_prev.idf_, dtype=np.float64)
        with atomic_dir(path) as tmp:
            (tmp / "config.json").write_text(json.dumps(cfg, indent=1) + "\n", encoding="utf-8")
            (tmp / "vocabulary.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
            save_file(tensors, str(tmp / "weights.safetensors"), metadata={"kind": "tfidf"})
            self.schema.save(tmp / "schema.yaml")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TfidfBaseline":
        """Rebuild a saved TF-IDF baseline; RuptureError for a missing or corrupt directory."""
        from safetensors.numpy import load_file

        path = Path(path)
        cfg = read_config(path, cls.kind)
        try:
            self = cls(
                context=bool(cfg["context"]),
                C=float(cfg["C"]),
                ngram_range=tuple(cfg["ngram_range"]),
                min_df=int(cfg["min_df"]),
                context_weight=float(cfg["context_weight"]),
                seed=int(cfg["seed"]),
            )
            self.chosen_C, self.selection = float(cfg["C"]), dict(cfg.get("C_selection") or {})
            self.schema = load_schema_checked(path, list(cfg["label_ids"]))
            self.thresholds = np.asarray(cfg["thresholds"], dtype=float)
            self.constant = {int(j): float(v) for j, v in cfg["constant"].items()}
        except (KeyError, TypeError, ValueError) as e:
            raise RuptureError(
                f"corrupt baseline config.json ({type(e).__name__}: {e})", path / "config.json"
            ) from None
        try:
            vocab = json.loads((path / "vocabulary.json").read_text(encoding="utf-8"))
            w = load_file(str(path / "weights.safetensors"))
        except FileNotFoundError as e:
            raise RuptureError(f"baseline file missing: {Path(e.filename).name}", path) from None
        except Exception as e:  # noqa: BLE001 - safetensors/json raise various types on corrupt files
            raise RuptureError(f"corrupt baseline files ({type(e).__name__})", path) from None
        self.vec_cur, self.vec_prev = self._vectorizers()
        try:
            self.vec_cur.vocabulary_ = dict(vocab["current"])
            self.vec_cur.idf_ = w["idf_current"]
            if self.vec_prev is not None:
                self.vec_prev.vocabulary_ = dict(vocab["previous"])
                self.vec_prev.idf_ = w["idf_previous"]
            self.coef, self.intercept = w["coef"], w["intercept"]
            n_feat = len(self.vec_cur.vocabulary_) + (
                len(self.vec_prev.vocabulary_) if self.vec_prev is not None else 0
            )
            n_lab = len(self.schema.label_ids)
            if self.coef.shape != (n_lab, n_feat) or self.intercept.shape != (n_lab,) or len(self.thresholds) != n_lab:
                raise ValueError("array shapes do not match the vocabulary and labels")
        except (KeyError, TypeError, ValueError) as e:
            raise RuptureError(f"corrupt baseline weights ({e})", path) from None
        return self
