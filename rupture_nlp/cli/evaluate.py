"""CLI command: ``rupture evaluate`` — the transformer and the baselines on annotated data."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..atomic import atomic_write_text
from ..report.evaluation import notes, per_label_rows, summary_rows
from .app import Backend, app, console, err_console


def _table(title: str, header: list[str], body: list[list[str]]) -> Table:
    t = Table(title=title, title_justify="left")
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i == 0 else "right", overflow="fold")
    for r in body:
        t.add_row(*r)
    return t


def rich_report(result: dict[str, Any], per_label: bool = True) -> list[Any]:
    """The rows of ``report.evaluation.format_report`` as rich renderables (terse headers)."""
    head, rows = summary_rows(result, short=True)
    data = result.get("data") or {}
    title = "evaluation" + (
        f" on {data['path']} ({data['sessions']} sessions, {data['utterances']} utterances)" if data else ""
    )
    out: list[Any] = [_table(title, head, rows), Text(notes(result) + " µF1: micro-F1; macro-F1 with its 95% CI.")]
    lhead, lrows = per_label_rows(result) if per_label else ([], [])
    if lrows:
        out.append(_table("per label (fine)", lhead, lrows))
    return out


@app.command()
def evaluate(
    model: Path = typer.Option(
        ..., "--model", help="Model directory (from `rupture train`; a directory holding only baselines/ works too)."
    ),
    data: Path = typer.Option(..., "--data", help="Annotated canonical JSONL file (gold labels)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the full results as JSON here."),
    schema: Optional[Path] = typer.Option(
        None, "--schema", dir_okay=False, help="Label schema file; must match the model's own (default: the model's)."
    ),
    bootstrap: int = typer.Option(
        1000, "--bootstrap", min=0, help="Bootstrap resamples of sessions for the 95% CIs (0: no CIs)."
    ),
    seed: int = typer.Option(13, "--seed", help="Seed of the bootstrap resampling."),
    per_label: bool = typer.Option(True, "--per-label/--summary-only", help="Print the per-label table."),
    backend: Backend = typer.Option(
        Backend.torch, "--backend", help="How the transformer runs, as for `rupture tag --backend` (default: torch)."
    ),
) -> None:
    """Score the model and its baselines on annotated data: per-label P/R/F1, micro/macro F1 (fine and
    coarse) with session-bootstrap 95% CIs, and ICC(2,1) of per-session marker counts."""
    # here, not at the top: scoring loads scikit-learn, the workflow torch
    from ..scoring import result_to_json
    from ..workflow import evaluate_model_dir

    status = err_console.status("evaluating") if sys.stderr.isatty() else contextlib.nullcontext()
    with status as st:
        result = evaluate_model_dir(
            model,
            data,
            schema=schema,
            n_boot=bootstrap,
            seed=seed,
            on_step=(lambda msg: st.update(msg)) if st is not None else None,
            backend=Backend(backend).value,
        )
    for part in rich_report(result, per_label=per_label):
        console.print(part)
    if json_out is not None:
        atomic_write_text(json_out, result_to_json(result))
        err_console.print(f"wrote {json_out}", markup=False)
