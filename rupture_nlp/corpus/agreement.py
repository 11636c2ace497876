"""Agreement of two coders who labelled the same corpus (``rupture corpus agreement A B``).

Input: two canonical JSONL files holding the same sessions (matched by ``session_id``; the order
of the sessions may differ) and, within each session, the same utterances (same ids, same order),
every utterance coded (``labels`` a list, empty when the coder gave no label). Anything else is a
:class:`~rupture_nlp.errors.RuptureError` naming the file and the session.

Utterance level (each utterance is one unit; codes are yes/no):

* per label: Cohen's kappa on "the utterance carries this label", percentage agreement and the
  positives of each coder;
* per category: the same on "the utterance carries any label of this category", plus
  Krippendorff's alpha (nominal) on that code;
* overall: Krippendorff's alpha (nominal) on each utterance's **category combination** — the
  value of an utterance is the set of categories it carries (none, withdrawal, withdrawal +
  repair, ...: one of 2^k nominal codes), so the coders agree on an utterance when they give it
  the same categories and disagree otherwise (no partial credit). It is one reliability figure
  for the coarse coding as a whole, over the same units as the category figures and defined
  whenever anything was coded; being all-or-nothing it is at most about as high as the category
  alphas. ``percent_agreement`` beside it is the share of utterances with the same combination
  (``percent_agreement_labels``: the same full label set).

Session level: ICC(2,1) (two-way random, absolute agreement, single rater) between the two
coders' per-session counts of utterances carrying a label of the category
(:func:`rupture_nlp.metrics.icc_2_1`, pingouin; ``icc_ci95_f`` is pingouin's F-based interval).

Confidence intervals (``*_ci95``): percentile bootstrap over sessions — sessions are drawn with
replacement (:func:`rupture_nlp.metrics.bootstrap_weights`, the same resamples for a given seed and
session count), every statistic is recomputed on the resample, and resamples where it is
undefined are left out (``n_defined`` counts the others). Intervals are given for the category
kappas and alphas, the overall alpha and the ICCs. Kappa and alpha are
:func:`rupture_nlp.metrics.nominal_agreement` (scikit-learn, krippendorff), the one
implementation shared with ``rupture ls pull``.

Result (JSON-able; None where a statistic is undefined, e.g. a label nobody used)::

    {"files": {"a": str, "b": str}, "schema": "3rs", "n_sessions": 19, "n_utterances": 1460,
     "bootstrap": {"n": 1000, "seed": 13, "level": 0.95, "unit": "session"},
     "categories": {category: {"kappa", "kappa_ci95": [lo, hi] | None, "alpha", "alpha_ci95",
                               "percent_agreement", "positives": {"a": int, "b": int},
                               "icc", "icc_ci95", "icc_ci95_f", "icc_reason",
                               "mean_count": {"a": float, "b": float},
                               "n_defined": {"kappa": int, "alpha": int, "icc": int}}},
     "overall": {"alpha", "alpha_ci95", "alpha_definition": str, "percent_agreement",
                 "percent_agreement_labels", "n_defined": {"alpha": int}},
     "labels": {label: {"category", "kappa", "percent_agreement", "positives": {"a", "b"}}}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..decision import coarse_matrix, label_matrix
from ..errors import RuptureError
from ..metrics import (
    DEFAULT_LEVEL,
    DEFAULT_N_BOOT,
    DEFAULT_SEED,
    bootstrap_weights,
    icc_2_1,
    nominal_agreement,
    session_category_counts,
)
from ..progress import ProgressCallback, emit
from ..records import Session, read_sessions
from ..schema import LabelSchema

OVERALL_ALPHA_DEFINITION = (
    "Krippendorff's alpha (nominal) over utterances; the value of an utterance is the set of "
    "categories it carries (one of 2^k codes, none included): same categories = agreement"
)


# --------------------------------------------------------------------------- input
def pair_sessions(
    sessions_a: Sequence[Session],
    sessions_b: Sequence[Session],
    schema: LabelSchema,
    names: tuple[str, str] = ("A", "B"),
) -> list[tuple[Session, Session]]:
    """The sessions of both coders as pairs, in A's order; RuptureError (naming the file, i.e.
    ``names[i]``, and the session) when the files do not hold the same coded utterances."""
    known = set(schema.label_ids)
    by: list[dict[str, Session]] = []
    for sessions, name in zip((sessions_a, sessions_b), names):
        if not sessions:
            raise RuptureError("no sessions in the file", name)
        index: dict[str, Session] = {}
        for s in sessions:
            if s.session_id in index:
                raise RuptureError(f"session '{s.session_id}' appears more than once", name)
            index[s.session_id] = s
            for u in s.utterances:
                if u.labels is None:
                    raise RuptureError(
                        f"session '{s.session_id}': utterance '{u.id}' is not coded (no "
                        "'labels'); both coders must code every utterance",
                        name,
                    )
                bad = [l for l in u.labels if l not in known]
                if bad:
                    raise RuptureError(
                        f"session '{s.session_id}': label '{bad[0]}' is not in schema '{schema.name}' (--schema)", name
                    )
        by.append(index)
    for i in (0, 1):
        missing = [sid for sid in by[i] if sid not in by[1 - i]]
        if missing:
            raise RuptureError(
                f"session '{missing[0]}' is missing (it is in {names[i]})"
                + (f"; {len(missing) - 1} more session(s) missing" if len(missing) > 1 else ""),
                names[1 - i],
            )
    pairs = []
    for sid, a in by[0].items():
        b = by[1][sid]
        ids_a, ids_b = [u.id for u in a.utterances], [u.id for u in b.utterances]
        if ids_a != ids_b:
            pos = next((k for k, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y), None)
            why = (
                f"utterance {pos + 1} is '{ids_b[pos]}' here but '{ids_a[pos]}' in {names[0]}"
                if pos is not None
                else f"{len(ids_b)} utterances here, {len(ids_a)} in {names[0]}"
            )
            raise RuptureError(
                f"session '{sid}': utterance ids differ from {names[0]} ({why}); "
                "both files must hold the same utterances in the same order",
                names[1],
            )
        pairs.append((a, b))
    return pairs


# --------------------------------------------------------------------------- statistics
def _kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    return nominal_agreement(np.stack([a, b]).astype(float), "cohen_kappa")


def _alpha(a: np.ndarray, b: np.ndarray) -> float | None:
    return nominal_agreement(np.stack([a, b]).astype(float), "krippendorff_alpha")


def _percent(a: np.ndarray, b: np.ndarray) -> float | None:
    """Share of units (rows) on which both coders agree, in percent."""
    if len(a) == 0:
        return None
    same = (a == b) if a.ndim == 1 else (a == b).all(axis=1)
    return float(100.0 * same.mean())


def _combination(C: np.ndarray) -> np.ndarray:
    """Each utterance's category set as one nominal code (bit j set = category j)."""
    return (
        (C.astype(np.int64) << np.arange(C.shape[1], dtype=np.int64)).sum(axis=1)
        if C.size
        else np.zeros(len(C), dtype=np.int64)
    )


def _utterance_stats(Ca: np.ndarray, Cb: np.ndarray) -> dict[str, Any]:
    """The statistics the bootstrap recomputes: per-category kappa and alpha, overall alpha."""
    k = Ca.shape[1]
    return {
        "kappa": [_kappa(Ca[:, j], Cb[:, j]) for j in range(k)],
        "alpha": [_alpha(Ca[:, j], Cb[:, j]) for j in range(k)],
        "overall_alpha": _alpha(_combination(Ca), _combination(Cb)),
    }


def _interval(samples: Sequence[float | None], level: float) -> list[float] | None:
    """Percentile interval of the defined samples, None when there is none."""
    x = np.array([np.nan if v is None else v for v in samples], dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return None
    lo, hi = np.percentile(x, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return [float(lo), float(hi)]


def coder_agreement(
    sessions_a: Sequence[Session],
    sessions_b: Sequence[Session],
    schema: LabelSchema,
    *,
    names: tuple[str, str] = ("A", "B"),
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Agreement of coder A (``sessions_a``) and coder B (``sessions_b``); see the module docstring
    for the statistics and the result. ``names`` name the two inputs in errors and in the result;
    ``n_boot=0`` skips the intervals; ``progress`` is called with ``ProgressEvent("bootstrap", done,
    n_boot, unit="resamples")`` at the start and after each bootstrap resample."""
    pairs = pair_sessions(sessions_a, sessions_b, schema, names)
    A_sessions = [a for a, _ in pairs]
    Ya, Yb = label_matrix(A_sessions, schema), label_matrix([b for _, b in pairs], schema)
    Ca, Cb = coarse_matrix(Ya, schema).astype(np.int8), coarse_matrix(Yb, schema).astype(np.int8)
    cats, n_s = schema.category_ids, len(pairs)
    lengths = np.array([len(s.utterances) for s in A_sessions], dtype=np.int64)
    groups = np.repeat(np.arange(n_s), lengths)
    one_each = [[j] for j in range(len(cats))]  # utterances carrying the category, not markers
    counts_a = session_category_counts(Ca, groups, n_s, one_each)
    counts_b = session_category_counts(Cb, groups, n_s, one_each)

    point = _utterance_stats(Ca, Cb)
    icc = [icc_2_1(counts_a[:, j], counts_b[:, j]) for j in range(len(cats))]

    boot: dict[str, list] = {"kappa": [], "alpha": [], "overall_alpha": [], "icc": []}
    if n_boot > 0:
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        rows = [np.arange(st, st + n) for st, n in zip(starts, lengths)]
        emit(progress, "bootstrap", 0, n_boot, unit="resamples")
        for b, w in enumerate(bootstrap_weights(n_s, n_boot, seed), 1):
            drawn = np.repeat(np.arange(n_s), w)
            idx = np.concatenate([rows[s] for s in drawn])
            st = _utterance_stats(Ca[idx], Cb[idx])
            for key in ("kappa", "alpha", "overall_alpha"):
                boot[key].append(st[key])
            boot["icc"].append([icc_2_1(counts_a[drawn, j], counts_b[drawn, j])["icc"] for j in range(len(cats))])
            emit(progress, "bootstrap", b, n_boot, unit="resamples")

    def ci(key: str, j: int | None = None) -> tuple[list[float] | None, int]:
        samples = [r if j is None else r[j] for r in boot[key]]
        return _interval(samples, level), sum(v is not None for v in samples)

    categories: dict[str, Any] = {}
    for j, c in enumerate(cats):
        (k_ci, k_n), (a_ci, a_n), (i_ci, i_n) = ci("kappa", j), ci("alpha", j), ci("icc", j)
        categories[c] = {
            "kappa": point["kappa"][j],
            "kappa_ci95": k_ci,
            "alpha": point["alpha"][j],
            "alpha_ci95": a_ci,
            "percent_agreement": _percent(Ca[:, j], Cb[:, j]),
            "positives": {"a": int(Ca[:, j].sum()), "b": int(Cb[:, j].sum())},
            "icc": icc[j]["icc"],
            "icc_ci95": i_ci,
            "icc_ci95_f": icc[j]["ci95"],
            "icc_reason": icc[j]["reason"],
            "mean_count": {"a": icc[j]["gold_mean"], "b": icc[j]["pred_mean"]},
            "n_defined": {"kappa": k_n, "alpha": a_n, "icc": i_n},
        }
    o_ci, o_n = ci("overall_alpha")
    labels = {
        l: {
            "category": schema.category_of(l),
            "kappa": _kappa(Ya[:, j], Yb[:, j]),
            "percent_agreement": _percent(Ya[:, j], Yb[:, j]),
            "positives": {"a": int(Ya[:, j].sum()), "b": int(Yb[:, j].sum())},
        }
        for j, l in enumerate(schema.label_ids)
    }
    return {
        "files": {"a": names[0], "b": names[1]},
        "schema": schema.name,
        "n_sessions": n_s,
        "n_utterances": int(lengths.sum()),
        "bootstrap": {"n": int(max(n_boot, 0)), "seed": int(seed), "level": float(level), "unit": "session"},
        "categories": categories,
        "overall": {
            "alpha": point["overall_alpha"],
            "alpha_ci95": o_ci,
            "alpha_definition": OVERALL_ALPHA_DEFINITION,
            "percent_agreement": _percent(Ca, Cb),
            "percent_agreement_labels": _percent(Ya, Yb),
            "n_defined": {"alpha": o_n},
        },
        "labels": labels,
    }


def agreement_files(path_a: str | Path, path_b: str | Path, schema: LabelSchema, **kwargs: Any) -> dict[str, Any]:
    """:func:`coder_agreement` of two canonical JSONL files (errors name the file)."""
    return coder_agreement(
        list(read_sessions(path_a)), list(read_sessions(path_b)), schema, names=(str(path_a), str(path_b)), **kwargs
    )


# --------------------------------------------------------------------------- report
def fmt(x: float | None, ci: Sequence[float] | None = None, digits: int = 3) -> str:
    """``0.812 [0.70, 0.90]``; ``n/a`` for an undefined value."""
    if x is None:
        return "n/a"
    s = f"{x + 0.0:.{digits}f}"
    if ci:
        s += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    return s


__all__ = ["coder_agreement", "agreement_files", "pair_sessions", "fmt", "OVERALL_ALPHA_DEFINITION"]
