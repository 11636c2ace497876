"""CLI commands: validate, labels, corpus stats."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.table import Table

from .app import SchemaOption, app, console, corpus_app, err_console, load_schema_option


@app.command()
def validate(
    files: List[Path] = typer.Argument(..., help="Canonical session JSONL files."),
    schema: Optional[Path] = SchemaOption,
) -> None:
    """Check canonical JSONL files against the session JSON Schema and the label schema.

    Every problem is reported with its file and line; exits 1 if there is any.
    """
    from ..validate import validate_file

    labels = load_schema_option(schema)
    n = 0
    for f in files:
        for p in validate_file(f, labels):
            err_console.print(str(p), markup=False)
            n += 1
    if n:
        err_console.print(f"{n} problem(s) found", markup=False)
        raise typer.Exit(1)
    console.print(f"ok: {len(files)} file(s) valid", markup=False)


@app.command()
def labels(schema: Optional[Path] = SchemaOption) -> None:
    """Print the labels of a schema with category, speaker and definition."""
    s = load_schema_option(schema)
    t = Table(title=f"{s.name}: {len(s.labels)} labels", show_lines=False)
    t.add_column("label", no_wrap=True, min_width=max(len(l) for l in s.label_ids))
    for col in ("category", "speaker", "definition"):
        t.add_column(col, overflow="fold")
    for l in s.labels:
        excl = " (exclusive)" if s.category(l.category).exclusive else ""
        t.add_row(l.id, l.category + excl, l.speaker, l.description)
    console.print(t)


@corpus_app.command("stats")
def corpus_stats(
    files: List[Path] = typer.Argument(..., help="Canonical session JSONL files with gold labels."),
    schema: Optional[Path] = SchemaOption,
) -> None:
    """Counts per label, speaker and split; fails on any schema violation."""
    from ..corpus import CorpusStats
    from ..validate import validate_file

    labels = load_schema_option(schema)
    problems = [p for f in files for p in validate_file(f, labels)]
    for p in problems:
        err_console.print(str(p), markup=False)
    if problems:
        err_console.print(f"{len(problems)} problem(s) found", markup=False)
        raise typer.Exit(1)
    st = CorpusStats()
    st.add_files(files, labels)
    splits = st.splits
    t = Table(title="labels (utterances carrying each label)")
    t.add_column("label", no_wrap=True, min_width=max(len(l) for l in labels.label_ids))
    t.add_column("T/C")
    for sp in splits:
        t.add_column(sp, justify="right")
    t.add_column("total", justify="right")
    for l in labels.label_ids:
        sp_counts = st.label_speaker.get(l, {})
        t.add_row(
            l,
            f"{sp_counts.get('therapist', 0)}/{sp_counts.get('client', 0)}",
            *[str(st.label_counts[sp][l]) for sp in splits],
            str(st.total(l)),
        )
    t.add_row("sessions", "", *[str(st.sessions[sp]) for sp in splits], str(sum(st.sessions.values())))
    t.add_row("utterances", "", *[str(st.utterances[sp]) for sp in splits], str(sum(st.utterances.values())))
    t.add_row("labelled utterances", "", *[str(st.labelled[sp]) for sp in splits], str(sum(st.labelled.values())))
    console.print(t)
    p = Table(title="parts (collection, form of the units)")
    p.add_column("part", no_wrap=True, min_width=max((len(n) for n in st.parts), default=4))
    for col in ("sessions", "units", "source utterances", "labelled units", "minutes per session"):
        p.add_column(col, justify="right")
    for name, part in sorted(st.parts.items()):
        mins = f"{min(part.minutes):.1f}-{max(part.minutes):.1f}" if part.minutes else "-"
        p.add_row(
            name,
            str(part.sessions),
            str(part.units),
            str(part.source_lines),
            f"{part.labelled} ({100 * part.labelled / max(1, part.units):.1f}%)",
            mins,
        )
    console.print(p)
    n_utt = sum(st.utterances.values())
    console.print(
        f"speakers: therapist {st.speakers['therapist']}, client {st.speakers['client']}; "
        f"labelled share {100 * sum(st.labelled.values()) / max(1, n_utt):.1f}%; "
        f"sessions without any rupture marker: {st.sessions_without_rupture}",
        markup=False,
    )


@corpus_app.command("agreement")
def corpus_agreement(
    file_a: Path = typer.Argument(..., help="Canonical JSONL file coded by coder A.", dir_okay=False),
    file_b: Path = typer.Argument(..., help="The same sessions and utterances coded by coder B.", dir_okay=False),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the full result as JSON here."),
    bootstrap: int = typer.Option(
        1000, "--bootstrap", min=0, help="Bootstrap resamples of sessions for the 95% CIs (0: no CIs)."
    ),
    seed: int = typer.Option(13, "--seed", help="Seed of the bootstrap resampling."),
    schema: Optional[Path] = SchemaOption,
) -> None:
    """Two-coder agreement: Cohen's kappa and Krippendorff's alpha per category, kappa per label,
    ICC(2,1) of per-session category counts, with session-bootstrap 95% CIs."""
    import json

    from ..atomic import atomic_write_text, output_target
    from ..corpus.agreement import agreement_files
    from .app import ProgressDisplay

    labels = load_schema_option(schema)
    if json_out is not None:
        output_target(json_out)  # refuse a folder before the bootstrap, not after
    with ProgressDisplay(transient=True) as show:
        result = agreement_files(file_a, file_b, labels, n_boot=bootstrap, seed=seed, progress=show)
    for t in agreement_tables(result):
        console.print(t)
    for c, r in result["categories"].items():
        if r["icc_reason"]:
            console.print(f"ICC not computed for {c}: {r['icc_reason']}", markup=False)
    console.print("overall alpha: agreement on each utterance's set of categories (nominal)", markup=False)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(result, indent=2) + "\n")
        err_console.print(f"wrote {json_out}", markup=False)


def agreement_tables(result: dict[str, Any]) -> list[Any]:
    """Rich tables of a :func:`~rupture_nlp.corpus.agreement.coder_agreement` result: per category
    (kappa, alpha, ICC with intervals), per label."""
    from ..corpus.agreement import fmt

    pct = 95 if result["bootstrap"]["n"] else None
    cap = (
        f"{pct}% CIs: bootstrap over sessions ({result['bootstrap']['n']} resamples, "
        f"seed {result['bootstrap']['seed']})"
        if pct
        else "no bootstrap intervals (--bootstrap 0)"
    )
    t = Table(
        title=f"agreement per category ({result['n_sessions']} sessions, {result['n_utterances']} utterances)",
        caption=cap,
    )
    t.add_column("category", no_wrap=True)
    for col in ("kappa", "alpha", "ICC(2,1) sessions", "agree %", "pos A/B"):
        t.add_column(col, justify="right", overflow="fold")  # a narrow terminal wraps, never cuts
    for c, r in result["categories"].items():
        t.add_row(
            c,
            fmt(r["kappa"], r["kappa_ci95"]),
            fmt(r["alpha"], r["alpha_ci95"]),
            fmt(r["icc"], r["icc_ci95"]),
            fmt(r["percent_agreement"], digits=1),
            f"{r['positives']['a']}/{r['positives']['b']}",
        )
    o = result["overall"]
    t.add_row("overall", "", fmt(o["alpha"], o["alpha_ci95"]), "", fmt(o["percent_agreement"], digits=1), "")
    lt = Table(title="agreement per label (Cohen's kappa)")
    lt.add_column("label", no_wrap=True)
    for col in ("kappa", "agree %", "pos A/B"):
        lt.add_column(col, justify="right", overflow="fold")
    for l, r in result["labels"].items():
        lt.add_row(
            l, fmt(r["kappa"]), fmt(r["percent_agreement"], digits=1), f"{r['positives']['a']}/{r['positives']['b']}"
        )
    return [t, lt]
