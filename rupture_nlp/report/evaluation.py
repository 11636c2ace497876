"""Evaluation results as reports: a markdown summary for the README and the model card, rich
tables for the CLI (``rupture_nlp/cli/evaluate.py``) from the same rows.

A result is what :func:`rupture_nlp.scoring.evaluate_predictions` or
:func:`rupture_nlp.workflow.evaluate_model_dir` returns (the latter: the transformer at the top
level, when there is one, and ``baselines``); :func:`format_report` renders either.
"""

from __future__ import annotations

from typing import Any, Sequence

from .markdown import markdown_table


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
        header = ["system", "fine µF1", "fine macro-F1", "coarse µF1", "coarse macro-F1"] + [
            f"ICC {c[:4]}." for c in cats
        ]
    else:
        header = [
            "system",
            "fine micro-F1",
            "fine macro-F1 [95% CI]",
            "coarse micro-F1",
            "coarse macro-F1 [95% CI]",
        ] + [f"ICC {c}" for c in cats]
    rows = []
    for name, r in systems:
        icc = r["session_icc"]
        rows.append(
            [
                name,
                _fmt(r["fine"]["micro"]["f1"]),
                _fmt(r["fine"]["macro"]["f1"], r["fine"]["macro"].get("f1_ci")),
                _fmt(r["coarse"]["micro"]["f1"]),
                _fmt(r["coarse"]["macro"]["f1"], r["coarse"]["macro"].get("f1_ci")),
            ]
            + [_fmt(icc[c]["icc"]) if icc.get(c) else "–" for c in cats]
        )
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
        rows.append(
            [label, str(m["support"]), _fmt(p), _fmt(m["recall"])]
            + [_fmt(r[level]["per_label"][label]["f1"]) for _, r in systems]
        )
    return header, rows


def notes(result: dict[str, Any]) -> str:
    """The sentences under the summary table: what the averages, intervals and ICC are, and the
    paired differences of the model and each baseline."""
    systems = _systems(result)
    if not systems:
        return ""
    r = systems[0][1]
    b = result.get("bootstrap") or r.get("bootstrap") or {}
    out = [
        f"Macro-F1 averages the {r['fine']['macro']['over']} (fine) and the "
        f"{r['coarse']['macro']['over'].replace('labels', 'categories')} (coarse)."
    ]
    if b.get("n"):
        out.append(f"95% CIs: percentile bootstrap over sessions ({b['n']} resamples, seed {b['seed']}).")
    out.append("ICC: ICC(2,1) between gold and predicted per-session counts of each category's markers.")
    diffs = []
    for b, res in (result.get("baselines") or {}).items():
        ci = (res.get("vs_model") or {}).get("fine_macro_f1_diff_ci")
        if ci and r["fine"]["macro"]["f1"] is not None and res["fine"]["macro"]["f1"] is not None:
            diffs.append(
                f"{b} {r['fine']['macro']['f1'] - res['fine']['macro']['f1']:+.3f} [{ci[0]:+.2f}, {ci[1]:+.2f}]"
            )
    if diffs:
        out.append(
            "Fine macro-F1 of the model minus each baseline (paired bootstrap, same resamples): "
            + "; ".join(diffs)
            + "."
        )
    reasons = {c: v["reason"] for c, v in r["session_icc"].items() if v.get("reason")}
    if reasons:
        out.append("ICC not computed for " + "; ".join(f"{c}: {why}" for c, why in reasons.items()) + ".")
    return " ".join(out)


def format_report(result: dict[str, Any], per_label: bool = True) -> str:
    """A compact markdown report of an evaluation result (summary table, notes, per-label table)
    for the README and the model card. The CLI draws the same rows as rich tables."""
    head, rows = summary_rows(result)
    lhead, lrows = per_label_rows(result) if per_label else ([], [])
    parts = [markdown_table(head, rows), "", notes(result)]
    if lrows:
        parts += ["", markdown_table(lhead, lrows)]
    return "\n".join(parts) + "\n"
