"""CLI command: report."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .app import SchemaOption, app, console, load_schema_option


@app.command()
def report(
    files: List[Path] = typer.Argument(..., help="Tagged or gold-labelled canonical JSONL files."),
    out: Path = typer.Option(..., "--out", help="Output directory (CSV tables + HTML report)."),
    segment_minutes: float = typer.Option(5.0, min=0.1, help="Segment length in minutes (3RS: 5)."),
    segment_utterances: int = typer.Option(50, min=1, help="Segment length in utterances for sessions without times."),
    repair_window: int = typer.Option(5, min=1, help="Utterances within which a repair must follow a marker."),
    no_html: bool = typer.Option(False, "--no-html", help="Write the CSV tables only."),
    schema: Optional[Path] = SchemaOption,
) -> None:
    """Per-session and per-segment 3RS counts, rupture-repair episodes, timelines and an HTML report."""
    from ..locking import output_lock
    from ..report import build_report

    labels = load_schema_option(schema)
    with output_lock(out):
        res = build_report(
            files,
            out,
            schema=labels,
            segment_minutes=segment_minutes,
            segment_utterances=segment_utterances,
            repair_window=repair_window,
            html=not no_html,
        )
    console.print(
        f"report: {res.n_sessions} session(s), {res.n_episodes} episode(s) -> {out}"
        + ("" if no_html else f" (open {out / 'index.html'})"),
        markup=False,
    )
