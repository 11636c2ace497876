"""Evaluation metrics: per-label scores, micro/macro F1, session bootstrap CIs, session-level ICC.

Shapes and conventions
----------------------
* ``Y`` (gold) and ``D`` (decisions) are 0/1 arrays of shape (n_utterances, n_columns); the columns
  are fine labels (``schema.label_ids``) or coarse categories (``schema.category_ids``).
* ``groups`` is an int array (n_utterances,) giving the index (0..n_sessions-1) of the session each
  utterance belongs to. Sessions, not utterances, are the unit of resampling: utterances of one
  session are not independent.
* Macro-F1 averages only the columns that have gold support (at least one gold positive) in the data
  it is computed on; columns without support have an undefined recall/F1 and are listed separately.
  Micro-F1 pools true/false positives of all columns (false positives on unsupported labels count).
* Every value returned is JSON-able: Python floats/ints, ``None`` for undefined values (never NaN).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

DEFAULT_N_BOOT = 1000
DEFAULT_SEED = 13
DEFAULT_LEVEL = 0.95
MIN_ICC_SESSIONS = 3


def _num(x: Any, digits: int | None = None) -> float | None:
    """A JSON-able float (None for NaN/inf/None), optionally rounded."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    return round(x, digits) if digits is not None else x


# ------------------------------------------------------------------------------------------
# point estimates
# ------------------------------------------------------------------------------------------
def label_scores(Y: np.ndarray, D: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Per-column precision/recall/F1/support and micro/macro averages (scikit-learn).

    Returns ``{"per_label": {name: {precision, recall, f1, support, predicted}},
    "micro": {precision, recall, f1}, "macro": {precision, recall, f1, over, n_labels},
    "labels_without_support": [...]}``. For a column without gold support, ``recall`` and
    ``f1`` are None (undefined) and the column is left out of the macro average; precision of a
    never-predicted column is 0 (scikit-learn's ``zero_division=0``).
    """
    Y = np.asarray(Y, dtype=np.int8)
    D = np.asarray(D, dtype=np.int8)
    if Y.shape != D.shape or Y.ndim != 2 or Y.shape[1] != len(names):
        raise ValueError(f"shape mismatch: gold {Y.shape}, decisions {D.shape}, {len(names)} names")
    support = Y.sum(axis=0).astype(int)
    predicted = D.sum(axis=0).astype(int)
    supported = np.flatnonzero(support > 0)
    per: dict[str, Any] = {}
    if len(Y):
        p, r, f, _ = precision_recall_fscore_support(Y, D, average=None, zero_division=0)
    else:
        p = r = f = np.zeros(len(names))
    for j, name in enumerate(names):
        has = bool(support[j] > 0)
        per[name] = {
            "precision": _num(p[j]),
            "recall": _num(r[j]) if has else None,
            "f1": _num(f[j]) if has else None,
            "support": int(support[j]),
            "predicted": int(predicted[j]),
        }
    micro = {"precision": None, "recall": None, "f1": None}
    if len(Y) and (support.sum() + predicted.sum()) > 0:
        mp, mr, mf, _ = precision_recall_fscore_support(Y, D, average="micro", zero_division=0)
        micro = {"precision": _num(mp), "recall": _num(mr) if support.sum() else None, "f1": _num(mf)}
    macro: dict[str, Any] = {"precision": None, "recall": None, "f1": None}
    if len(supported):
        Mp, Mr, Mf, _ = precision_recall_fscore_support(Y, D, average="macro", labels=supported, zero_division=0)
        macro = {"precision": _num(Mp), "recall": _num(Mr), "f1": _num(Mf)}
    macro["over"] = f"labels with gold support in the data ({len(supported)} of {len(names)})"
    macro["n_labels"] = int(len(supported))
    return {
        "per_label": per,
        "micro": micro,
        "macro": macro,
        "labels_without_support": [names[j] for j in range(len(names)) if support[j] == 0],
    }


# ------------------------------------------------------------------------------------------
# bootstrap over sessions
# ------------------------------------------------------------------------------------------
def session_confusion(
    Y: np.ndarray, D: np.ndarray, groups: np.ndarray, n_sessions: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives, false negatives per session and column.

    Each array has shape (n_sessions, n_columns); they are the sufficient statistics of every
    F1 variant, so a bootstrap resample of sessions is a weighted sum of their rows.
    """
    Y = np.asarray(Y, dtype=np.int64)
    D = np.asarray(D, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    shape = (n_sessions, Y.shape[1])
    tp, fp, fn = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    np.add.at(tp, groups, Y * D)
    np.add.at(fp, groups, (1 - Y) * D)
    np.add.at(fn, groups, Y * (1 - D))
    return tp, fp, fn


def _f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Elementwise F1 = 2tp / (2tp + fp + fn); NaN where the denominator is 0."""
    den = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), np.nan)


def bootstrap_weights(n_sessions: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each session is drawn in each resample: int array (n_boot, n_sessions).

    Resamples draw ``n_sessions`` sessions with replacement (numpy ``default_rng(seed)``), so the
    same seed and session count give the same resamples — the systems compared in one evaluation
    run are scored on identical resamples (a paired comparison).
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_sessions, size=(n_boot, n_sessions))
    W = np.zeros((n_boot, n_sessions), dtype=np.int64)
    np.add.at(W, (np.repeat(np.arange(n_boot), n_sessions), idx.ravel()), 1)
    return W


def bootstrap_f1(
    Y: np.ndarray,
    D: np.ndarray,
    groups: np.ndarray,
    n_sessions: int,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> dict[str, Any]:
    """Percentile bootstrap confidence intervals of micro-F1, macro-F1 and per-column F1.

    Sessions are resampled with replacement; in each resample macro-F1 averages the columns that
    have gold support *in that resample* (the same definition as the point estimate). Resamples in
    which a statistic is undefined (e.g. a label without support) are left out of its interval;
    ``n_defined`` says how many remained. Returns ``{"micro_f1": [lo, hi] | None,
    "macro_f1": ..., "per_label_f1": [[lo, hi] | None, ...] (column order),
    "samples": {"micro_f1": array, "macro_f1": array}}`` — ``samples`` is for paired comparisons
    and is not JSON-able; callers drop it before serialising.
    """
    if n_boot <= 0 or n_sessions == 0:
        none = [None] * Y.shape[1]
        return {
            "micro_f1": None,
            "macro_f1": None,
            "per_label_f1": none,
            "n_defined": {},
            "samples": {"micro_f1": np.full(0, np.nan), "macro_f1": np.full(0, np.nan)},
        }
    tp, fp, fn = session_confusion(Y, D, groups, n_sessions)
    W = bootstrap_weights(n_sessions, n_boot, seed).astype(float)
    TP, FP, FN = W @ tp, W @ fp, W @ fn  # (n_boot, n_columns)
    per = _f1_from_counts(TP, FP, FN)
    has_support = (TP + FN) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows -> NaN, handled below
        macro = np.nanmean(np.where(has_support, per, np.nan), axis=1)
    micro = _f1_from_counts(TP.sum(1), FP.sum(1), FN.sum(1))
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]

    def interval(x: np.ndarray) -> list[float] | None:
        x = x[np.isfinite(x)]
        if len(x) == 0:
            return None
        lo, hi = np.percentile(x, q)
        return [_num(lo), _num(hi)]

    return {
        "micro_f1": interval(micro),
        "macro_f1": interval(macro),
        "per_label_f1": [interval(np.where(has_support[:, j], per[:, j], np.nan)) for j in range(Y.shape[1])],
        "n_defined": {"micro_f1": int(np.isfinite(micro).sum()), "macro_f1": int(np.isfinite(macro).sum())},
        "samples": {"micro_f1": micro, "macro_f1": macro},
    }


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = DEFAULT_LEVEL) -> list[float] | None:
    """Percentile interval of ``a - b`` over resamples where both are defined (paired bootstrap)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        return None
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if len(d) == 0:
        return None
    lo, hi = np.percentile(d, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return [_num(lo), _num(hi)]


# ------------------------------------------------------------------------------------------
# session-level agreement (ICC)
# ------------------------------------------------------------------------------------------
def session_category_counts(
    M: np.ndarray, groups: np.ndarray, n_sessions: int, category_columns: Sequence[Sequence[int]]
) -> np.ndarray:
    """Counts per session and category: (n_sessions, n_categories).

    A count is the number of fine labels of the category marked in the session (an utterance
    carrying two withdrawal markers counts twice), as 3RS counts markers.
    """
    M = np.asarray(M, dtype=np.int64)
    per_session = np.zeros((n_sessions, M.shape[1]), dtype=np.int64)
    np.add.at(per_session, np.asarray(groups, dtype=np.int64), M)
    return (
        np.stack(
            [
                per_session[:, list(cols)].sum(axis=1) if len(cols) else np.zeros(n_sessions, np.int64)
                for cols in category_columns
            ],
            axis=1,
        )
        if category_columns
        else np.zeros((n_sessions, 0), dtype=np.int64)
    )


def icc_2_1(gold: Sequence[float], pred: Sequence[float], *, min_sessions: int = MIN_ICC_SESSIONS) -> dict[str, Any]:
    """ICC(2,1) — two-way random effects, absolute agreement, single rater — between two "raters"
    (gold and predicted counts) over sessions, computed by pingouin.

    ICC(2,1) = (MSR - MSE) / (MSR + (k-1)·MSE + k·(MSC - MSE)/n) with n sessions, k = 2 raters,
    MSR/MSC/MSE the mean squares of sessions, raters and residual (McGraw & Wong's ICC(A,1)).
    Degenerate tables give ``icc: None`` and a ``reason`` instead of raising: fewer than
    ``min_sessions`` sessions, or no variance at all (every count identical).
    """
    g = np.asarray(gold, dtype=float)
    p = np.asarray(pred, dtype=float)
    out: dict[str, Any] = {
        "icc": None,
        "ci95": None,
        "n_sessions": int(len(g)),
        "gold_mean": _num(g.mean()) if len(g) else None,
        "pred_mean": _num(p.mean()) if len(p) else None,
        "reason": None,
    }
    if len(g) != len(p):
        raise ValueError(f"{len(g)} gold counts but {len(p)} predicted counts")
    if len(g) < min_sessions:
        out["reason"] = f"too few sessions ({len(g)}; at least {min_sessions} needed)"
        return out
    if np.ptp(np.concatenate([g, p])) == 0:
        out["reason"] = "no variance: every count of both raters is the same"
        return out
    import pandas as pd
    import pingouin as pg

    n = len(g)
    df = pd.DataFrame(
        {"session": np.tile(np.arange(n), 2), "rater": np.repeat(["gold", "pred"], n), "count": np.concatenate([g, p])}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pg.intraclass_corr(data=df, targets="session", raters="rater", ratings="count")
    # pingouin >= 0.6 names it ICC(A,1); older releases ICC2.
    row = table[table["Type"].isin(["ICC(A,1)", "ICC2"])]
    if row.empty:
        raise RuntimeError("pingouin returned no ICC(2,1) row")
    value = _num(row["ICC"].iloc[0])
    if value is None:
        out["reason"] = "ICC undefined for these counts (zero mean squares)"
        return out
    out["icc"] = value
    ci = row["CI95"].iloc[0]
    lo, hi = _num(ci[0]), _num(ci[1])
    out["ci95"] = [lo, hi] if lo is not None and hi is not None else None
    return out


# ------------------------------------------------------------------------------------------
# agreement of coders (Label Studio pull, corpus agreement)
# ------------------------------------------------------------------------------------------
AGREEMENT_METRICS = ("cohen_kappa", "krippendorff_alpha")


def nominal_agreement(M: np.ndarray, metric: str) -> float | None:
    """Agreement of coders on one nominal code per unit (e.g. "carries this label": 0/1).

    ``M`` has shape (n_coders, n_units), NaN where a coder did not code a unit. ``cohen_kappa``
    (scikit-learn; exactly two coders) is computed over the units both coded;
    ``krippendorff_alpha`` (the krippendorff package, nominal) uses every code, NaN as missing.
    None where the statistic is undefined: no unit to compare, or every code identical (a label
    nobody used, or one every unit carries).
    """
    import krippendorff
    from sklearn.metrics import cohen_kappa_score

    M = np.asarray(M, dtype=float)
    if metric == "cohen_kappa":
        if M.ndim != 2 or M.shape[0] != 2:
            raise ValueError(f"Cohen's kappa needs exactly two coders, got codes of shape {M.shape}")
        both = ~np.isnan(M).any(axis=0)
        a, b = M[0, both], M[1, both]
        if np.unique(np.concatenate([a, b])).size < 2:
            return None
        return _num(cohen_kappa_score(a, b))
    if metric == "krippendorff_alpha":
        if np.unique(M[~np.isnan(M)]).size < 2:
            return None
        return _num(krippendorff.alpha(reliability_data=M, level_of_measurement="nominal"))
    raise ValueError(f"metric must be one of {', '.join(AGREEMENT_METRICS)}, not {metric!r}")
