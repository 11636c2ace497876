"""Evaluate predicted label scores against gold labels: the transformer and the baselines, one run.

:func:`evaluate_predictions` scores one score matrix; :func:`evaluate_model_dir` loads everything
saved in a model directory (the transformer, when there is one, and ``baselines/*``), predicts the
same data with each and scores them on the same bootstrap resamples; :func:`format_report` turns a
result into a markdown table or rich tables (CLI, README, model card).

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

``evaluate_model_dir`` returns the transformer's result at the top level (``fine``, ``coarse``,
``session_icc``; None when the directory holds only baselines) plus ``baselines``
(``{"tfidf": {fine, coarse, session_icc, ...}, "textcat": {...}}``), ``model`` and ``data``.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .decision import coarse_matrix, decide, label_matrix
from .errors import RuptureError
from .metrics import (DEFAULT_LEVEL, DEFAULT_N_BOOT, DEFAULT_SEED, bootstrap_f1, icc_2_1,
                      label_scores, paired_difference, session_category_counts)
from .records import Session, read_sessions
from .schema import LabelSchema, load_schema

BASELINE_NAMES = ("tfidf", "textcat")


# ------------------------------------------------------------------------------------------
# one score matrix
# ------------------------------------------------------------------------------------------
def _session_groups(sessions: Sequence[Session]) -> np.ndarray:
    """Session index of every utterance row: int array (n_utterances,)."""
    return np.repeat(np.arange(len(sessions)), [len(s.utterances) for s in sessions]).astype(np.int64)


def _thresholds_array(thresholds: Any, schema: LabelSchema) -> np.ndarray:
    """Thresholds as an array (n_labels,) from a float, a sequence or a {label: threshold} dict."""
    if isinstance(thresholds, dict):
        return np.array([float(thresholds.get(l, 0.5)) for l in schema.label_ids])
    return np.broadcast_to(np.asarray(thresholds, dtype=float), (len(schema.label_ids),)).copy()


def _level_result(Y: np.ndarray, D: np.ndarray, names: list[str], groups: np.ndarray,
                  n_sessions: int, n_boot: int, seed: int, level: float) -> tuple[dict, dict]:
    """Metrics of one level (fine or coarse) with bootstrap intervals; also the raw samples."""
    res = label_scores(Y, D, names)
    boot = bootstrap_f1(Y, D, groups, n_sessions, n_boot=n_boot, seed=seed, level=level)
    res["micro"]["f1_ci"] = boot["micro_f1"]
    res["macro"]["f1_ci"] = boot["macro_f1"]
    for name, ci in zip(names, boot["per_label_f1"]):
        res["per_label"][name]["f1_ci"] = ci
    return res, boot["samples"]


def evaluate_predictions(gold_sessions: Iterable[Session], P: np.ndarray, schema: LabelSchema,
                         thresholds: Any = 0.5, *, n_boot: int = DEFAULT_N_BOOT,
                         seed: int = DEFAULT_SEED, level: float = DEFAULT_LEVEL,
                         return_samples: bool = False) -> dict[str, Any]:
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
    coarse, coarse_samples = _level_result(coarse_matrix(Y, schema), coarse_matrix(D, schema),
                                           schema.category_ids, groups, n_s, n_boot, seed, level)
    cat_cols = [[j for j, l in enumerate(schema.label_ids) if schema.category_of(l) == c]
                for c in schema.category_ids]
    gold_counts = session_category_counts(Y, groups, n_s, cat_cols)
    pred_counts = session_category_counts(D, groups, n_s, cat_cols)
    icc = {c: icc_2_1(gold_counts[:, i], pred_counts[:, i]) for i, c in enumerate(schema.category_ids)}
    out: dict[str, Any] = {
        "n_sessions": n_s, "n_utterances": n_utt,
        "fine": fine, "coarse": coarse, "session_icc": icc,
        "thresholds": {l: float(t) for l, t in zip(schema.label_ids, th)},
        "bootstrap": {"n": int(n_boot), "seed": int(seed), "level": float(level), "unit": "session"},
    }
    if return_samples:
        out["_samples"] = {"fine": fine_samples, "coarse": coarse_samples}
    return out


# ------------------------------------------------------------------------------------------
# a whole model directory
# ------------------------------------------------------------------------------------------
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
        raise RuptureError("no gold labels: no utterance has a 'labels' field, nothing to evaluate against",
                           path)
    known = set(schema.label_ids)
    unknown = sorted({l for s in sessions for u in s.utterances for l in (u.labels or []) if l not in known})
    if unknown:
        shown = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
        raise RuptureError(f"labels not in the model's schema '{schema.name}': {shown} "
                           "(evaluate with data annotated in the model's schema)", path)
    return sessions


def _read_schema_file(path: Path) -> LabelSchema | None:
    return load_schema(path) if path.is_file() else None


def _check_same_schema(a: LabelSchema, b: LabelSchema, what: str, where: Path) -> None:
    if a.label_ids != b.label_ids:
        only_a = sorted(set(a.label_ids) - set(b.label_ids))
        only_b = sorted(set(b.label_ids) - set(a.label_ids))
        detail = []
        if only_a:
            detail.append("missing " + ", ".join(only_a[:6]))
        if only_b:
            detail.append("extra " + ", ".join(only_b[:6]))
        raise RuptureError(f"{what} does not match the label schema "
                           f"({'; '.join(detail) if detail else 'same labels in another order'})", where)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _strip_samples(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if k != "_samples"}


def evaluate_model_dir(model_dir: str | Path, data_path: str | Path, *, schema: LabelSchema | str | Path | None = None,
                       n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED, level: float = DEFAULT_LEVEL,
                       baselines: Sequence[str] = BASELINE_NAMES,
                       on_step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate the transformer (if ``model_dir`` has one) and every saved baseline on ``data_path``.

    The transformer is present when ``model_dir/config.json`` exists and is loaded with
    ``rupture_nlp.model.RuptureClassifier.from_pretrained``; baselines are loaded from
    ``model_dir/baselines/<name>/``. All systems are scored on the same sessions and the same
    bootstrap resamples; ``baselines[name]["vs_model"]`` holds the paired bootstrap interval of
    (model - baseline) macro-F1 when the transformer is there. The schema is the model's own
    (``schema.yaml``); an explicit ``schema`` must match it. Raises RuptureError for a missing,
    empty, corrupt or mismatched model directory and for bad data. ``on_step`` (optional) is called
    with a short message before each slow step (loading, predicting), e.g. to update a spinner.
    """
    step = on_step or (lambda msg: None)
    mdir = Path(model_dir)
    if not mdir.exists():
        raise RuptureError("model directory not found", mdir)
    if not mdir.is_dir():
        raise RuptureError("not a directory (expected a model directory)", mdir)
    has_model = (mdir / "config.json").is_file()
    bdir = mdir / "baselines"
    present = [b for b in baselines if (bdir / b).is_dir()]
    if not has_model and not present:
        raise RuptureError("not a rupture model directory: no config.json and no baselines/tfidf or "
                           "baselines/textcat", mdir)

    # -- the schema: the model's own; everything else must agree with it
    model_schema = _read_schema_file(mdir / "schema.yaml")
    if has_model and model_schema is None:
        raise RuptureError("model directory lacks schema.yaml", mdir)
    explicit = schema if isinstance(schema, LabelSchema) else (load_schema(schema) if schema is not None else None)
    if explicit is not None and model_schema is not None:
        _check_same_schema(model_schema, explicit, "the --schema file", mdir / "schema.yaml")
    active = model_schema or explicit

    # each baseline's schema (cheap to read) before loading anything heavy
    for name in present:
        b_schema = _read_schema_file(bdir / name / "schema.yaml")
        if b_schema is None:
            raise RuptureError("baseline directory lacks schema.yaml", bdir / name)
        if active is None:
            active = b_schema
        else:
            _check_same_schema(active, b_schema, f"baseline '{name}'", bdir / name)
    assert active is not None
    sessions = load_gold_sessions(data_path, active)

    from .baselines import load_baseline
    n_utt = sum(len(s.utterances) for s in sessions)
    loaded = {}
    for name in present:
        step(f"loading baseline {name}")
        loaded[name] = load_baseline(bdir / name)
    dpath = Path(data_path)
    kw = dict(n_boot=n_boot, seed=seed, level=level, return_samples=True)
    result: dict[str, Any] = {
        "model": {"dir": str(mdir), "present": has_model, "model_version": None},
        "data": {"path": str(dpath), "sha256": _file_sha256(dpath), "sessions": len(sessions),
                 "utterances": sum(len(s.utterances) for s in sessions)},
        "schema": active.name,
        "fine": None, "coarse": None, "session_icc": None,
        "bootstrap": {"n": int(n_boot), "seed": int(seed), "level": float(level), "unit": "session"},
        "baselines": {},
    }
    model_res = None
    if has_model:
        try:
            from .model import RuptureClassifier
        except ImportError as e:
            raise RuptureError(f"cannot load the transformer: rupture_nlp.model is unavailable ({e})", mdir) from None
        step("loading the transformer")
        clf = RuptureClassifier.from_pretrained(mdir)
        _check_same_schema(active, clf.schema, "the transformer", mdir)
        step(f"transformer: predicting {n_utt} utterances")
        t0 = time.perf_counter()
        P = clf.predict_proba(sessions)
        secs = time.perf_counter() - t0
        model_res = evaluate_predictions(sessions, P, active, clf.thresholds, **kw)
        result["model"]["model_version"] = getattr(clf, "model_version", None)
        result["model"]["predict_seconds"] = round(secs, 3)
        for k in ("fine", "coarse", "session_icc"):
            result[k] = model_res[k]
    for name, b in loaded.items():
        step(f"baseline {name}: predicting {n_utt} utterances")
        t0 = time.perf_counter()
        P = b.predict_proba(sessions)
        secs = time.perf_counter() - t0
        res = evaluate_predictions(sessions, P, active, b.thresholds, **kw)
        entry = {k: res[k] for k in ("fine", "coarse", "session_icc")}
        entry["predict_seconds"] = round(secs, 3)
        if model_res is not None:
            entry["vs_model"] = {
                f"{lvl}_macro_f1_diff_ci": paired_difference(model_res["_samples"][lvl]["macro_f1"],
                                                            res["_samples"][lvl]["macro_f1"], level)
                for lvl in ("fine", "coarse")}
        result["baselines"][name] = entry
    return result


def result_to_json(result: dict[str, Any]) -> str:
    """The result as pretty JSON text (strict: no NaN)."""
    return json.dumps(_strip_samples(result), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------------
# reports
# ------------------------------------------------------------------------------------------
def _fmt(x: float | None, ci: Sequence[float | None] | None = None) -> str:
    if x is None:
        return "–"
    s = f"{x + 0.0:.3f}".replace("-0.000", "0.000")
    if ci and ci[0] is not None and ci[1] is not None:
        s += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    return s


def _systems(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, metrics) of every system in a result, transformer first."""
    out = []
    if "model" not in result:  # a bare evaluate_predictions result
        return [("predictions", result)] if result.get("fine") is not None else []
    if result.get("fine") is not None:
        out.append((str(result["model"].get("model_version") or "transformer"), result))
    for b, res in (result.get("baselines") or {}).items():
        out.append((f"{b} (baseline)", res))
    return out


def summary_rows(result: dict[str, Any], short: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary table: one row per system (``short``: terse headers)."""
    systems = _systems(result)
    cats = list(systems[0][1]["session_icc"]) if systems else []
    if short:
        header = ["system", "fine µF1", "fine macro-F1", "coarse µF1", "coarse macro-F1"] + [f"ICC {c[:4]}." for c in cats]
    else:
        header = ["system", "fine micro-F1", "fine macro-F1 [95% CI]", "coarse micro-F1",
                  "coarse macro-F1 [95% CI]"] + [f"ICC {c}" for c in cats]
    rows = []
    for name, r in systems:
        icc = r["session_icc"]
        rows.append([name, _fmt(r["fine"]["micro"]["f1"]), _fmt(r["fine"]["macro"]["f1"], r["fine"]["macro"].get("f1_ci")),
                     _fmt(r["coarse"]["micro"]["f1"]),
                     _fmt(r["coarse"]["macro"]["f1"], r["coarse"]["macro"].get("f1_ci"))]
                    + [_fmt(icc[c]["icc"]) if icc.get(c) else "–" for c in cats])
    return header, rows


def per_label_rows(result: dict[str, Any], level: str = "fine") -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-label table: support, then P/R/F1 of the first system and the
    F1 of every other system ("–" where undefined: no gold support, or never predicted nor present)."""
    systems = _systems(result)
    if not systems:
        return [], []
    short = [n.replace(" (baseline)", "") for n, _ in systems]
    first = systems[0][1]
    header = ["label", "support", f"P {short[0]}", f"R {short[0]}"] + [f"F1 {n}" for n in short]
    rows = []
    for label, m in first[level]["per_label"].items():
        p = m["precision"] if (m["support"] or m["predicted"]) else None
        rows.append([label, str(m["support"]), _fmt(p), _fmt(m["recall"])]
                    + [_fmt(r[level]["per_label"][label]["f1"]) for _, r in systems])
    return header, rows


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _notes(result: dict[str, Any]) -> str:
    systems = _systems(result)
    if not systems:
        return ""
    r = systems[0][1]
    b = result.get("bootstrap") or r.get("bootstrap") or {}
    notes = [f"Macro-F1 averages the {r['fine']['macro']['over']} (fine) and the "
             f"{r['coarse']['macro']['over'].replace('labels', 'categories')} (coarse)."]
    if b.get("n"):
        notes.append(f"95% CIs: percentile bootstrap over sessions ({b['n']} resamples, seed {b['seed']}).")
    notes.append("ICC: ICC(2,1) between gold and predicted per-session counts of each category's markers.")
    diffs = []
    for b, res in (result.get("baselines") or {}).items():
        ci = (res.get("vs_model") or {}).get("fine_macro_f1_diff_ci")
        if ci and r["fine"]["macro"]["f1"] is not None and res["fine"]["macro"]["f1"] is not None:
            diffs.append(f"{b} {r['fine']['macro']['f1'] - res['fine']['macro']['f1']:+.3f} [{ci[0]:+.2f}, {ci[1]:+.2f}]")
    if diffs:
        notes.append("Fine macro-F1 of the model minus each baseline (paired bootstrap, same resamples): "
                     + "; ".join(diffs) + ".")
    reasons = {c: v["reason"] for c, v in r["session_icc"].items() if v.get("reason")}
    if reasons:
        notes.append("ICC not computed for " + "; ".join(f"{c}: {why}" for c, why in reasons.items()) + ".")
    return " ".join(notes)


def format_report(result: dict[str, Any], fmt: str = "markdown", per_label: bool = True) -> Any:
    """A compact report of an evaluation result.

    ``fmt="markdown"`` returns a string (summary table, notes, per-label table) for the README and
    the model card; ``fmt="rich"`` returns a list of rich renderables for the CLI.
    """
    head, rows = summary_rows(result, short=(fmt == "rich"))
    lhead, lrows = per_label_rows(result) if per_label else ([], [])
    notes = _notes(result)
    if fmt == "markdown":
        parts = [_markdown(head, rows), "", notes]
        if lrows:
            parts += ["", _markdown(lhead, lrows)]
        return "\n".join(parts) + "\n"
    if fmt == "rich":
        from rich.table import Table
        from rich.text import Text

        def table(title: str, header: list[str], body: list[list[str]]) -> Table:
            t = Table(title=title, title_justify="left")
            for i, h in enumerate(header):
                t.add_column(h, justify="left" if i == 0 else "right", overflow="fold")
            for r in body:
                t.add_row(*r)
            return t

        data = result.get("data") or {}
        title = "evaluation" + (f" on {data['path']} ({data['sessions']} sessions, {data['utterances']} utterances)"
                                if data else "")
        out: list[Any] = [table(title, head, rows), Text(notes + " µF1: micro-F1; macro-F1 with its 95% CI.")]
        if lrows:
            out.append(table("per label (fine)", lhead, lrows))
        return out
    raise ValueError(f"unknown format {fmt!r} (markdown or rich)")
