"""CLI command: ``rupture evaluate`` — the transformer and the baselines on annotated data."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Optional

import typer

from .app import app, console, err_console


@app.command()
def evaluate(
    model: Path = typer.Option(..., "--model", help="Model directory (from `rupture train`; a directory "
                               "holding only baselines/ works too)."),
    data: Path = typer.Option(..., "--data", help="Annotated canonical JSONL file (gold labels)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the full results as JSON here."),
    schema: Optional[Path] = typer.Option(None, "--schema", dir_okay=False,
                                          help="Label schema file; must match the model's own (default: the model's)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0,
                                  help="Bootstrap resamples of sessions for the 95% CIs (0: no CIs)."),
    seed: int = typer.Option(13, "--seed", help="Seed of the bootstrap resampling."),
    per_label: bool = typer.Option(True, "--per-label/--summary-only", help="Print the per-label table."),
) -> None:
    """Score the model and its baselines on annotated data: per-label P/R/F1, micro/macro F1 (fine and
    coarse) with session-bootstrap 95% CIs, and ICC(2,1) of per-session marker counts."""
    from ..evaluate import evaluate_model_dir, format_report, result_to_json
    status = err_console.status("evaluating") if sys.stderr.isatty() else contextlib.nullcontext()
    with status as st:
        result = evaluate_model_dir(model, data, schema=schema, n_boot=bootstrap, seed=seed,
                                    on_step=(lambda msg: st.update(msg)) if st is not None else None)
    for part in format_report(result, fmt="rich", per_label=per_label):
        console.print(part)
    if json_out is not None:
        from ..atomic import atomic_write_text
        atomic_write_text(json_out, result_to_json(result))
        err_console.print(f"wrote {json_out}", markup=False)
