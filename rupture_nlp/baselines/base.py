"""What every baseline shares: its inputs, the :class:`Baseline` interface, saving and checks.

Inputs: one utterance at a time as text: a speaker token (``spk_therapist`` / ``spk_client``), a
pause token when the silence before the utterance is long (``pause_long`` >= 2 s, ``pause_vlong``
>= 5 s; only when times are known) and the utterance text; :func:`utterance_texts` also gives the
previous utterance in the same form.

Saved formats are safe (no pickle, no joblib): ``config.json`` (``kind``, settings, label ids,
thresholds), ``schema.yaml`` and the baseline's own files, written atomically
(:func:`rupture_nlp.atomic.atomic_dir`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from ..decision import DEFAULT_THRESHOLD, apply_predictions, label_matrix, tune_thresholds
from ..errors import RuptureError
from ..records import Session
from ..schema import LabelSchema, load_schema

FORMAT_VERSION = 1
PAUSE_LONG = 2.0  # seconds of silence before an utterance -> "pause_long"
PAUSE_VLONG = 5.0  # -> "pause_vlong"


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


def check_training_data(sessions: Sequence[Session], schema: LabelSchema, what: str) -> np.ndarray:
    """The gold label matrix of ``sessions`` (``what``: "training" or "dev"); RuptureError when there
    is no utterance, a label the schema does not know, or (training) no gold label at all."""
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
    return threadpool_limits(limits=1)


def macro_average_precision(Y: np.ndarray, P: np.ndarray) -> float:
    """Macro average precision over labels with gold support (threshold-free model selection)."""
    # scikit-learn here and in the baselines' methods, not at the top: importing the package (the
    # CLI's help lists the registered baselines) stays fast
    from sklearn.metrics import average_precision_score

    cols = np.flatnonzero(Y.sum(axis=0) > 0)
    if not len(cols):
        return 0.0
    return float(average_precision_score(Y[:, cols], P[:, cols], average="macro"))


def read_config(path: Path, kind: str) -> dict[str, Any]:
    """``config.json`` of a saved baseline of ``kind``; RuptureError for a missing, corrupt, other
    kind or other format version."""
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
        raise RuptureError(
            f"config.json is not a '{kind}' baseline (kind: {cfg.get('kind') if isinstance(cfg, dict) else '?'})",
            cfg_path,
        )
    if cfg.get("format_version") != FORMAT_VERSION:
        raise RuptureError(f"unsupported baseline format version {cfg.get('format_version')}", cfg_path)
    return cfg


def read_kind(path: Path) -> str | None:
    """The ``kind`` a saved baseline's ``config.json`` names; RuptureError if it is missing or corrupt."""
    cfg_path = path / "config.json"
    try:
        return json.loads(cfg_path.read_text(encoding="utf-8")).get("kind")
    except FileNotFoundError:
        raise RuptureError("not a baseline directory: config.json is missing", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        raise RuptureError("corrupt baseline config.json", cfg_path) from None


def load_schema_checked(path: Path, label_ids: list[str]) -> LabelSchema:
    """``schema.yaml`` of a saved baseline, which must list ``label_ids`` (its config's labels)."""
    schema = load_schema(path / "schema.yaml") if (path / "schema.yaml").is_file() else None
    if schema is None:
        raise RuptureError("baseline directory lacks schema.yaml", path)
    if schema.label_ids != label_ids:
        raise RuptureError("baseline config.json and schema.yaml list different labels", path)
    return schema


class Baseline:
    """The interface of every baseline, and the parts they share (thresholds, decisions).

    ``fit(sessions, schema, dev_sessions=None)`` trains (per-label thresholds tuned on dev with
    :func:`rupture_nlp.decision.tune_thresholds`; 0.5 without dev); ``predict_proba(sessions)``
    gives (n_utterances, n_labels) in ``schema.label_ids`` order; ``predict(sessions)`` copies with
    ``labels``/``scores`` (exclusive categories via :func:`rupture_nlp.decision.decide`);
    ``save(dir)`` and the class method ``load(dir)``. Constructors take keyword settings, among
    them ``seed``. ``kind`` is the registered name (``config.json`` ``kind``, ``baselines/<kind>/``);
    ``order`` places it in training, tables and reports (lower first).
    """

    kind: ClassVar[str] = ""
    order: ClassVar[int] = 100
    schema: LabelSchema
    thresholds: np.ndarray

    def fit(
        self, sessions: Iterable[Session], schema: LabelSchema, dev_sessions: Iterable[Session] | None = None
    ) -> "Baseline":  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, sessions: Iterable[Session]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | Path) -> "Baseline":  # pragma: no cover - abstract
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
        return {
            "kind": self.kind,
            "format_version": FORMAT_VERSION,
            "label_ids": self.schema.label_ids,
            "thresholds": [float(t) for t in self.thresholds],
        }
