"""Two cheap baselines the transformer must beat: TF-IDF + logistic regression, and spaCy textcat.

Both see one utterance at a time as text: a speaker token (``spk_therapist`` / ``spk_client``),
a pause token when the silence before the utterance is long (``pause_long`` >= 2 s,
``pause_vlong`` >= 5 s; only when times are known) and the utterance text. The TF-IDF baseline
also gets the previous utterance (its own vocabulary, so its words stay apart from the target's).

Both follow one interface: ``fit(sessions, schema, dev_sessions=None)`` (per-label thresholds tuned
on dev with :func:`rupture_nlp.decision.tune_thresholds`; 0.5 without dev),
``predict_proba(sessions) -> (n_utterances, n_labels)`` in ``schema.label_ids`` order,
``predict(sessions)`` (copies with ``labels``/``scores``; exclusive categories via
:func:`rupture_nlp.decision.decide`), ``thresholds``, ``save(dir)`` and ``load(dir)``.

Saved formats are safe (no pickle, no joblib): ``config.json`` (kind, settings, label ids,
thresholds), ``schema.yaml``, and for TF-IDF ``vocabulary.json`` plus ``weights.safetensors``
(idf vectors, coefficients, intercepts) from which the exact same predictions are rebuilt; for
textcat spaCy's own ``nlp.to_disk`` directory. Directories are written atomically.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .decision import DEFAULT_THRESHOLD, apply_predictions, label_matrix, tune_thresholds
from .errors import RuptureError
from .records import Session
from .schema import LabelSchema, load_schema

FORMAT_VERSION = 1
PAUSE_LONG = 2.0    # seconds of silence before an utterance -> "pause_long"
PAUSE_VLONG = 5.0   # -> "pause_vlong"


# ------------------------------------------------------------------------------------------
# shared helpers
# ------------------------------------------------------------------------------------------
def _pause_token(prev_end: float | None, start: float | None) -> str:
    if prev_end is None or start is None:
        return ""
    gap = start - prev_end
    return "pause_vlong " if gap >= PAUSE_VLONG else "pause_long " if gap >= PAUSE_LONG else ""


def utterance_texts(sessions: Iterable[Session]) -> tuple[list[str], list[str]]:
    """Baseline inputs of every utterance, in order: (target texts, previous-utterance texts).

    A target text is ``"spk_<role> [pause token] <text>"``; the previous text is the preceding
    utterance of the same session in the same form ("" for the first utterance).
    """
    cur: list[str] = []
    prev: list[str] = []
    for s in sessions:
        last_text, last_end = "", None
        for u in s.utterances:
            t = f"spk_{u.speaker} {_pause_token(last_end, u.start)}{u.text}"
            cur.append(t)
            prev.append(last_text)
            last_text, last_end = t, u.end if u.end is not None else u.start
    return cur, prev


def _check_training_data(sessions: Sequence[Session], schema: LabelSchema, what: str) -> np.ndarray:
    if not sessions or not any(s.utterances for s in sessions):
        raise RuptureError(f"no utterances in the {what} data")
    unknown = sorted({l for s in sessions for u in s.utterances for l in (u.labels or [])} - set(schema.label_ids))
    if unknown:
        raise RuptureError(f"{what} data uses labels not in schema '{schema.name}': {', '.join(unknown[:8])}")
    Y = label_matrix(sessions, schema)
    if what == "training" and Y.sum() == 0:
        raise RuptureError("training data carries no gold labels")
    return Y


def single_thread():
    """Limit BLAS/OpenMP pools to one thread: on these small sparse problems sklearn's threaded
    solvers spend their time spinning (measured: lbfgs 3.2 s with 2 threads vs 0.07 s with 1 on a
    busy 2-core machine)."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1)


def macro_average_precision(Y: np.ndarray, P: np.ndarray) -> float:
    """Macro average precision over labels with gold support (threshold-free model selection)."""
    from sklearn.metrics import average_precision_score
    cols = np.flatnonzero(Y.sum(axis=0) > 0)
    if not len(cols):
        return 0.0
    return float(np.mean([average_precision_score(Y[:, j], P[:, j]) for j in cols]))


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it to ``target`` when done.

    On any exception the temporary directory is removed and ``target`` is left as it was;
    an existing ``target`` is replaced only after the new one is complete.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "x")
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old / "x", target)   # put the previous version back
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _read_config(path: Path, kind: str) -> dict[str, Any]:
    cfg_path = path / "config.json"
    if not path.is_dir():
        raise RuptureError("baseline directory not found", path)
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuptureError("not a baseline directory: config.json is missing", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise RuptureError("corrupt baseline config.json", cfg_path) from None
    if not isinstance(cfg, dict) or cfg.get("kind") != kind:
        raise RuptureError(f"config.json is not a '{kind}' baseline (kind: {cfg.get('kind') if isinstance(cfg, dict) else '?'})",
                           cfg_path)
    if cfg.get("format_version") != FORMAT_VERSION:
        raise RuptureError(f"unsupported baseline format version {cfg.get('format_version')}", cfg_path)
    return cfg


def _load_schema_checked(path: Path, label_ids: list[str]) -> LabelSchema:
    schema = load_schema(path / "schema.yaml") if (path / "schema.yaml").is_file() else None
    if schema is None:
        raise RuptureError("baseline directory lacks schema.yaml", path)
    if schema.label_ids != label_ids:
        raise RuptureError("baseline config.json and schema.yaml list different labels", path)
    return schema


class _Baseline:
    """Shared parts: thresholds, decisions and predictions."""

    kind = ""
    schema: LabelSchema
    thresholds: np.ndarray

    def predict_proba(self, sessions: Iterable[Session]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _tune(self, dev_sessions: Sequence[Session] | None) -> None:
        n = len(self.schema.label_ids)
        self.thresholds = np.full(n, DEFAULT_THRESHOLD)
        if dev_sessions:
            Y = label_matrix(dev_sessions, self.schema)
            self.thresholds = tune_thresholds(Y, self.predict_proba(dev_sessions))

    def predict(self, sessions: Iterable[Session]) -> list[Session]:
        """Copies of ``sessions`` with predicted ``labels`` and ``scores`` on every utterance."""
        out = [copy.deepcopy(s) for s in sessions]
        apply_predictions(out, self.predict_proba(out), self.schema, self.thresholds)
        return out

    def _base_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "format_version": FORMAT_VERSION, "label_ids": self.schema.label_ids,
                "thresholds": [float(t) for t in self.thresholds]}


# ------------------------------------------------------------------------------------------
# TF-IDF + one-vs-rest logistic regression
# ------------------------------------------------------------------------------------------
class TfidfBaseline(_Baseline):
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

    def __init__(self, *, context: bool = True, C: float | None = None,
                 C_grid: Sequence[float] = (1.0, 4.0, 16.0, 64.0), ngram_range: tuple[int, int] = (1, 2),
                 min_df: int = 2, context_weight: float = 0.5, seed: int = 13):
        self.context = context
        self.C = C
        self.C_grid = tuple(C_grid)
        self.ngram_range = tuple(ngram_range)
        self.min_df = min_df
        self.context_weight = context_weight
        self.seed = seed
        self.vec_cur = None
        self.vec_prev = None
        self.coef: np.ndarray | None = None        # (n_labels, n_features)
        self.intercept: np.ndarray | None = None   # (n_labels,)
        self.constant: dict[int, float] = {}       # label index -> constant probability
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
        coef = np.zeros((Y.shape[1], X.shape[1]), dtype=np.float32)   # float32: half the disk size
        intercept = np.zeros(Y.shape[1])
        if len(varying):
            ovr = OneVsRestClassifier(LogisticRegression(C=C, class_weight="balanced", max_iter=2000,
                                                         random_state=self.seed))
            ovr.fit(X, Y[:, varying])
            for k, j in enumerate(varying):
                coef[j] = ovr.estimators_[k].coef_[0]
                intercept[j] = ovr.estimators_[k].intercept_[0]
        return coef, intercept, constant

    def fit(self, sessions: Iterable[Session], schema: LabelSchema,
            dev_sessions: Iterable[Session] | None = None) -> "TfidfBaseline":
        """Train on ``sessions`` (gold ``labels``); tune C (if None) and thresholds on ``dev_sessions``."""
        with single_thread():
            return self._fit(list(sessions), schema, list(dev_sessions) if dev_sessions is not None else None)

    def _fit(self, sessions: list[Session], schema: LabelSchema, dev: list[Session] | None) -> "TfidfBaseline":
        self.schema = schema
        Y = _check_training_data(sessions, schema, "training")
        X = self._features(sessions, fit=True)
        if self.C is None and dev:
            Yd = _check_training_data(dev, schema, "dev")
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
        cfg.update({"context": self.context, "C": float(self.chosen_C), "C_selection": self.selection,
                    "ngram_range": list(self.ngram_range), "min_df": self.min_df,
                    "context_weight": self.context_weight, "seed": self.seed,
                    "constant": {str(j): v for j, v in sorted(self.constant.items())},
                    "sklearn_tfidf": {"sublinear_tf": True, "norm": "l2", "smooth_idf": True}})
        vocab = {"current": {t: int(i) for t, i in self.vec_cur.vocabulary_.items()},
                 "previous": ({t: int(i) for t, i in self.vec_prev.vocabulary_.items()}
                              if self.vec_prev is not None else None)}
        tensors = {"coef": np.ascontiguousarray(self.coef, dtype=np.float32),
                   "intercept": np.ascontiguousarray(self.intercept, dtype=np.float64),
                   "idf_current": np.ascontiguousarray(self.vec_cur.idf_, dtype=np.float64)}
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
        cfg = _read_config(path, cls.kind)
        try:
            self = cls(context=bool(cfg["context"]), C=float(cfg["C"]), ngram_range=tuple(cfg["ngram_range"]),
                       min_df=int(cfg["min_df"]), context_weight=float(cfg["context_weight"]),
                       seed=int(cfg["seed"]))
            self.chosen_C, self.selection = float(cfg["C"]), dict(cfg.get("C_selection") or {})
            self.schema = _load_schema_checked(path, list(cfg["label_ids"]))
            self.thresholds = np.asarray(cfg["thresholds"], dtype=float)
            self.constant = {int(j): float(v) for j, v in cfg["constant"].items()}
        except (KeyError, TypeError, ValueError) as e:
            raise RuptureError(f"corrupt baseline config.json ({type(e).__name__}: {e})", path / "config.json") from None
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
            n_feat = len(self.vec_cur.vocabulary_) + (len(self.vec_prev.vocabulary_) if self.vec_prev is not None else 0)
            n_lab = len(self.schema.label_ids)
            if self.coef.shape != (n_lab, n_feat) or self.intercept.shape != (n_lab,) or len(self.thresholds) != n_lab:
                raise ValueError("array shapes do not match the vocabulary and labels")
        except (KeyError, TypeError, ValueError) as e:
            raise RuptureError(f"corrupt baseline weights ({e})", path) from None
        return self


# ------------------------------------------------------------------------------------------
# spaCy textcat_multilabel
# ------------------------------------------------------------------------------------------
class TextcatBaseline(_Baseline):
    """spaCy ``textcat_multilabel`` on ``spacy.blank("en")``, trained in code.

    ``architecture="bow"`` (default) is spaCy's bag-of-n-grams linear model (TextCatBOW, n-grams
    up to ``ngram_size`` hashed into ``length`` rows); ``"ensemble"`` adds spaCy's default CNN
    (slower). Trained ``epochs`` passes of minibatches of ``batch_size`` with Adam
    (``learn_rate``) and dropout; ``neg_ratio`` (None: all) samples that many unlabelled
    utterances per labelled one afresh each epoch. With dev data the epoch with the best dev macro
    average precision is kept. Defaults from the corpus dev split: spaCy's default Adam rate
    (0.001) was still far from converged after 10 epochs, 0.01 peaks after 3–5; ``length=16384``
    scored like 65536 at a quarter of the size (1.5 MB).
    """

    kind = "textcat"

    def __init__(self, *, epochs: int = 6, architecture: str = "bow", ngram_size: int = 2,
                 dropout: float = 0.2, context: bool = False, batch_size: int = 32, length: int = 16384,
                 learn_rate: float = 0.01, neg_ratio: float | None = None, seed: int = 13):
        if architecture not in ("bow", "ensemble"):
            raise ValueError("architecture must be 'bow' or 'ensemble'")
        self.epochs = epochs
        self.architecture = architecture
        self.ngram_size = ngram_size
        self.dropout = dropout
        self.context = context
        self.batch_size = batch_size
        self.length = length
        self.learn_rate = learn_rate
        self.neg_ratio = neg_ratio
        self.seed = seed
        self.nlp = None
        self.thresholds = np.zeros(0)
        self.best_epoch: int | None = None

    def _texts(self, sessions: Iterable[Session]) -> list[str]:
        cur, prev = utterance_texts(sessions)
        if not self.context:
            return cur
        # previous utterance after a separator; the BOW model sees its words as well
        return [c if not p else f"{c} || {p}" for c, p in zip(cur, prev)]

    def _component_config(self) -> dict[str, Any]:
        if self.architecture == "bow":
            return {"model": {"@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": False,
                              "ngram_size": self.ngram_size, "no_output_layer": False, "length": self.length}}
        return {}  # spaCy's default textcat_multilabel model (ensemble of BOW and a CNN)

    def fit(self, sessions: Iterable[Session], schema: LabelSchema,
            dev_sessions: Iterable[Session] | None = None) -> "TextcatBaseline":
        """Train on ``sessions``; pick the best epoch and tune thresholds on ``dev_sessions``."""
        import spacy
        from spacy.training import Example
        from spacy.util import minibatch
        from thinc.api import Adam

        sessions = list(sessions)
        dev = list(dev_sessions) if dev_sessions is not None else None
        self.schema = schema
        Y = _check_training_data(sessions, schema, "training")
        labels = schema.label_ids
        spacy.util.fix_random_seed(self.seed)
        nlp = spacy.blank("en")
        tc = nlp.add_pipe("textcat_multilabel", config=self._component_config())
        for l in labels:
            tc.add_label(l)
        examples = [Example.from_dict(nlp.make_doc(t), {"cats": {l: float(v) for l, v in zip(labels, row)}})
                    for t, row in zip(self._texts(sessions), Y)]
        nlp.initialize(lambda: examples)
        optimizer = Adam(learn_rate=self.learn_rate)
        self.nlp = nlp
        rng = random.Random(self.seed)
        best, best_score, self.history = None, -1.0, []
        Yd = _check_training_data(dev, schema, "dev") if dev else None
        pos = [e for e, row in zip(examples, Y) if row.any()]
        neg = [e for e, row in zip(examples, Y) if not row.any()]
        for epoch in range(1, self.epochs + 1):
            if self.neg_ratio is None:
                epoch_examples = pos + neg
            else:  # every labelled utterance, and a fresh sample of the unlabelled ones
                epoch_examples = pos + rng.sample(neg, min(len(neg), int(round(self.neg_ratio * len(pos)))))
            rng.shuffle(epoch_examples)
            losses: dict[str, float] = {}
            for batch in minibatch(epoch_examples, size=self.batch_size):
                nlp.update(batch, sgd=optimizer, drop=self.dropout, losses=losses)
            if Yd is not None:
                score = macro_average_precision(Yd, self.predict_proba(dev))
                self.history.append({"epoch": epoch, "loss": round(losses.get("textcat_multilabel", 0.0), 4),
                                     "dev_macro_ap": round(score, 4)})
                if score >= best_score:  # ties: the later (longer-trained) epoch
                    best, best_score, self.best_epoch = nlp.to_bytes(), score, epoch
        if best is not None:
            nlp.from_bytes(best)
        else:
            self.best_epoch = self.epochs
        self._tune(dev)
        return self

    def predict_proba(self, sessions: Iterable[Session]) -> np.ndarray:
        """Probabilities (n_utterances, n_labels) in ``schema.label_ids`` order."""
        if self.nlp is None:
            raise RuntimeError("TextcatBaseline is not fitted")
        labels = self.schema.label_ids
        texts = self._texts(sessions)
        P = np.zeros((len(texts), len(labels)))
        for i, doc in enumerate(self.nlp.pipe(texts, batch_size=256)):
            P[i] = [doc.cats[l] for l in labels]
        return P

    def save(self, path: str | Path) -> Path:
        """Write config.json, schema.yaml and the spaCy pipeline (``nlp/``), atomically."""
        path = Path(path)
        cfg = self._base_config()
        cfg.update({"epochs": self.epochs, "best_epoch": self.best_epoch, "architecture": self.architecture,
                    "ngram_size": self.ngram_size, "dropout": self.dropout, "context": self.context,
                    "batch_size": self.batch_size, "length": self.length, "learn_rate": self.learn_rate,
                    "neg_ratio": self.neg_ratio, "seed": self.seed,
                    "history": getattr(self, "history", [])})
        with atomic_dir(path) as tmp:
            self.nlp.to_disk(tmp / "nlp")
            (tmp / "config.json").write_text(json.dumps(cfg, indent=1) + "\n", encoding="utf-8")
            self.schema.save(tmp / "schema.yaml")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TextcatBaseline":
        """Load a saved textcat baseline; RuptureError for a missing or corrupt directory."""
        import spacy
        path = Path(path)
        cfg = _read_config(path, cls.kind)
        try:
            self = cls(epochs=int(cfg["epochs"]), architecture=str(cfg["architecture"]),
                       ngram_size=int(cfg["ngram_size"]), dropout=float(cfg["dropout"]),
                       context=bool(cfg["context"]), batch_size=int(cfg["batch_size"]),
                       length=int(cfg.get("length", 262144)), learn_rate=float(cfg.get("learn_rate", 0.001)),
                       neg_ratio=cfg.get("neg_ratio"), seed=int(cfg["seed"]))
            self.best_epoch = cfg.get("best_epoch")
            self.history = list(cfg.get("history") or [])
            self.schema = _load_schema_checked(path, list(cfg["label_ids"]))
            self.thresholds = np.asarray(cfg["thresholds"], dtype=float)
        except (KeyError, TypeError, ValueError) as e:
            raise RuptureError(f"corrupt baseline config.json ({type(e).__name__}: {e})", path / "config.json") from None
        if not (path / "nlp" / "config.cfg").is_file():
            raise RuptureError("baseline file missing: nlp/config.cfg", path)
        try:
            self.nlp = spacy.load(path / "nlp")
        except Exception as e:  # noqa: BLE001 - spaCy raises many types on a damaged directory
            raise RuptureError(f"corrupt spaCy pipeline in nlp/ ({type(e).__name__})", path) from None
        if "textcat_multilabel" not in self.nlp.pipe_names:
            raise RuptureError("spaCy pipeline in nlp/ has no textcat_multilabel component", path)
        missing = sorted(set(self.schema.label_ids) - set(self.nlp.get_pipe("textcat_multilabel").labels))
        if missing or len(self.thresholds) != len(self.schema.label_ids):
            raise RuptureError("spaCy pipeline labels do not match the baseline's schema", path)
        return self


# ------------------------------------------------------------------------------------------
BASELINES: dict[str, type[_Baseline]] = {"tfidf": TfidfBaseline, "textcat": TextcatBaseline}


def load_baseline(path: str | Path) -> _Baseline:
    """Load whichever baseline ``path`` holds (by ``config.json`` ``kind``)."""
    path = Path(path)
    cfg_path = path / "config.json"
    try:
        kind = json.loads(cfg_path.read_text(encoding="utf-8")).get("kind")
    except FileNotFoundError:
        raise RuptureError("not a baseline directory: config.json is missing", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        raise RuptureError("corrupt baseline config.json", cfg_path) from None
    if kind not in BASELINES:
        raise RuptureError(f"unknown baseline kind {kind!r}", cfg_path)
    return BASELINES[kind].load(path)


def train_baselines(train_sessions: Iterable[Session], dev_sessions: Iterable[Session] | None,
                    schema: LabelSchema, out_dir: str | Path, *, seed: int = 13,
                    which: Sequence[str] = ("tfidf", "textcat"),
                    options: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train both baselines on the train split (thresholds/selection on dev) and save them under
    ``out_dir/baselines/{tfidf,textcat}``. ``options`` passes settings to a baseline's constructor,
    e.g. ``{"textcat": {"epochs": 5}}``.

    Returns ``{name: {"path", "train_seconds", "dev_macro_f1": {"fine", "coarse"} | None, ...}}``.
    """
    from .evaluate import evaluate_predictions
    train = list(train_sessions)
    dev = list(dev_sessions) if dev_sessions is not None else None
    info: dict[str, Any] = {}
    for name in which:
        model = BASELINES[name](**{"seed": seed, **((options or {}).get(name) or {})})
        t0 = time.perf_counter()
        model.fit(train, schema, dev)
        secs = time.perf_counter() - t0
        path = model.save(Path(out_dir) / "baselines" / name)
        entry: dict[str, Any] = {"path": str(path), "train_seconds": round(secs, 2), "dev_macro_f1": None}
        if dev:
            res = evaluate_predictions(dev, model.predict_proba(dev), schema, model.thresholds, n_boot=0)
            entry["dev_macro_f1"] = {"fine": res["fine"]["macro"]["f1"], "coarse": res["coarse"]["macro"]["f1"]}
        info[name] = entry
    return info
