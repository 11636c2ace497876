"""Score predicted label probabilities against gold labels: one score matrix, one result.

:func:`evaluate_predictions` turns probabilities and thresholds into decisions and scores them;
:func:`load_gold_sessions` reads an annotated file to score against. This module knows the
records, the label schema and the metrics, nothing of models or baselines; rendering a result
is :mod:`rupture_nlp.report.evaluation`, evaluating a whole model directory is
:func:`rupture_nlp.workflow.evaluate_model_dir`.

Result of :func:`evaluate_predictions` (all JSON-able)::

    {"n_sessions": 18, "n_utterances": 1350,
     "fine":   {"per_label": {label: {"precision", "recall", "f1", "support", "predicted",
                                      "f1_ci": [lo, hi] | None}},
                "micro": {"precision", "recall", "f1", "f1_ci"},
                "macro": {"precision", "recall", "f1", "f1_ci", "over", "n_labels"},
                "labels_without_support": [...]},
     "coarse": {... the same, one entry per category ...},
     "session_icc": {category: {"icc", "ci95", "n_sessions", "gold_mean", "pred_mean", "reason"}},
     "bootstrap": {"n", "seed", "level", "unit": "session"}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .decision import coarse_matrix, decide, label_matrix
from .errors import RuptureError
from .metrics import (
    DEFAULT_LEVEL,
    DEFAULT_N_BOOT,
    DEFAULT_SEED,
    bootstrap_f1,
    icc_2_1,
    label_scores,
    session_category_counts,
)
from .records import Session, read_sessions
from .schema import LabelSchema


def _session_groups(sessions: Sequence[Session]) -> np.ndarray:
    """Session index of every utterance row: int array (n_utterances,)."""
    return np.repeat(np.arange(len(sessions)), [len(s.utterances) for s in sessions]).astype(np.int64)


def _thresholds_array(thresholds: Any, schema: LabelSchema) -> np.ndarray:
    """Thresholds as an array (n_labels,) from a float, a sequence or a {label: threshold} dict."""
    if isinstance(thresholds, dict):
        return np.array([float(thresholds.get(l, 0.5)) for l in schema.label_ids])
    return np.broadcast_to(np.asarray(thresholds, dtype=float), (len(schema.label_ids),)).copy()


def _level_result(
    Y: np.ndarray,
    D: np.ndarray,
    names: list[str],
    groups: np.ndarray,
    n_sessions: int,
    n_boot: int,
    seed: int,
    level: float,
) -> tuple[dict, dict]:
    """Metrics of one level (fine or coarse) with bootstrap intervals; also the raw samples."""
    res = label_scores(Y, D, names)
    boot = bootstrap_f1(Y, D, groups, n_sessions, n_boot=n_boot, seed=seed, level=level)
    res["micro"]["f1_ci"] = boot["micro_f1"]
    res["macro"]["f1_ci"] = boot["macro_f1"]
    for name, ci in zip(names, boot["per_label_f1"]):
        res["per_label"][name]["f1_ci"] = ci
    return res, boot["samples"]


def evaluate_predictions(
    gold_sessions: Iterable[Session],
    P: np.ndarray,
    schema: LabelSchema,
    thresholds: Any = 0.5,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
    return_samples: bool = False,
) -> dict[str, Any]:
    """Score probabilities ``P`` (n_utterances, n_labels; ``schema.label_ids`` order, all utterances
    of ``gold_sessions`` in order) against the gold ``labels`` of those sessions.

    Decisions come from :func:`rupture_nlp.decision.decide` (per-label ``thresholds`` — a float, an
    array (n_labels,) or a {label: threshold} dict — and at most one label per exclusive category);
    the coarse level is :func:`rupture_nlp.decision.coarse_matrix` of gold and decisions. Utterances
    whose ``labels`` is None count as carrying no label. Bootstrap intervals resample sessions
    (``n_boot`` resamples, ``seed``; ``n_boot=0`` skips them). With ``return_samples`` the result has
    an extra non-JSON key ``_samples`` (bootstrap draws) used for paired comparisons.
    """
    sessions = list(gold_sessions)
    P = np.asarray(P, dtype=float)
    n_utt = sum(len(s.utterances) for s in sessions)
    if P.shape != (n_utt, len(schema.label_ids)):
        raise ValueError(f"scores have shape {P.shape}, expected ({n_utt}, {len(schema.label_ids)})")
    th = _thresholds_array(thresholds, schema)
    Y = label_matrix(sessions, schema)
    D = decide(P, schema, th)
    groups = _session_groups(sessions)
    n_s = len(sessions)
    fine, fine_samples = _level_result(Y, D, schema.label_ids, groups, n_s, n_boot, seed, level)
    coarse, coarse_samples = _level_result(
        coarse_matrix(Y, schema), coarse_matrix(D, schema), schema.category_ids, groups, n_s, n_boot, seed, level
    )
    cat_cols = [[j for j, l in enumerate(schema.label_ids) if schema.category_of(l) == c] for c in schema.category_ids]
    gold_counts = session_category_counts(Y, groups, n_s, cat_cols)
    pred_counts = session_category_counts(D, groups, n_s, cat_cols)
    icc = {c: icc_2_1(gold_counts[:, i], pred_counts[:, i]) for i, c in enumerate(schema.category_ids)}
    out: dict[str, Any] = {
        "n_sessions": n_s,
        "n_utterances": n_utt,
        "fine": fine,
        "coarse": coarse,
        "session_icc": icc,
        "thresholds": {l: float(t) for l, t in zip(schema.label_ids, th)},
        "bootstrap": {"n": int(n_boot), "seed": int(seed), "level": float(level), "unit": "session"},
    }
    if return_samples:
        out["_samples"] = {"fine": fine_samples, "coarse": coarse_samples}
    return out


def macro_f1(result: dict[str, Any]) -> dict[str, float | None]:
    """``{"fine": ..., "coarse": ...}``: the macro-F1 of both levels of a result."""
    return {"fine": result["fine"]["macro"]["f1"], "coarse": result["coarse"]["macro"]["f1"]}


def load_gold_sessions(data_path: str | Path, schema: LabelSchema) -> list[Session]:
    """Read an annotated canonical JSONL file and check it against ``schema``.

    RuptureError when the file is unreadable or malformed, holds no session, carries no gold
    labels at all, or uses labels the schema does not know (named in the message).
    """
    path = Path(data_path)
    if not path.is_file():
        raise RuptureError("data file not found" if not path.exists() else "data path is not a file", path)
    sessions = list(read_sessions(path))
    if not sessions:
        raise RuptureError("no sessions in the data file", path)
    if not any(u.labels is not None for s in sessions for u in s.utterances):
        raise RuptureError("no gold labels: no utterance has a 'labels' field, nothing to evaluate against", path)
    known = set(schema.label_ids)
    unknown = sorted({l for s in sessions for u in s.utterances for l in (u.labels or []) if l not in known})
    if unknown:
        shown = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
        raise RuptureError(
            f"labels not in the model's schema '{schema.name}': {shown} "
            "(evaluate with data annotated in the model's schema)",
            path,
        )
    return sessions


def result_to_json(result: dict[str, Any]) -> str:
    """A result (of this module or of ``evaluate_model_dir``) as pretty JSON text (strict: no NaN),
    without the bootstrap draws."""
    clean = {k: v for k, v in result.items() if k != "_samples"}
    return json.dumps(clean, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
