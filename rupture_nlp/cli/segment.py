"""CLI command ``rupture segment``, and the transcript-reading options other commands reuse.

    rupture segment INPUT... --out FILE.jsonl [--format F] [--speakers "NAME=therapist,NAME=client"
                    | --speakers-from-first] [--strict]

``FormatOption``, ``SpeakersOption``, ``SpeakersFromFirstOption`` and ``StrictOption`` are those
options; a command that reads transcripts declares the ones it supports, e.g.
``format: Optional[str] = FormatOption``, and turns the two speaker options into the one
``speakers`` value of the readers with :func:`speakers_option`.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import RuptureError
from ..readers import check_format, format_names
from .app import ProgressDisplay, app, err_console, expand_inputs, report_error, run_files


def _check_format(value: Optional[str]) -> Optional[str]:
    try:
        return check_format(value)
    except RuptureError:
        raise typer.BadParameter(f"choose one of {', '.join(format_names())}") from None


FormatOption = typer.Option(
    None,
    "--format",
    "-f",
    callback=_check_format,
    metavar="FORMAT",
    help=f"Input format for every input ({', '.join(format_names())}); default: detected per file from "
    "content and extension.",
)
SpeakersOption = typer.Option(
    None,
    "--speakers",
    metavar="MAP",
    help="Roles of speaker names other than T/C/P, Therapist, Client, Patient, Counselor: "
    '"DR. LEE=therapist,MARIA=client" (names match in any case).',
)
SpeakersFromFirstOption = typer.Option(
    False,
    "--speakers-from-first",
    help="Unknown speaker names: the first to speak is the therapist, the other the client (batch jobs "
    "where names differ per file; check the output).",
)
StrictOption = typer.Option(
    False,
    "--strict",
    help="Refuse transcripts with small timestamp glitches or damaged encoding instead of repairing them "
    "with a warning.",
)


def speakers_option(speakers: Optional[str], from_first: bool) -> Optional[str]:
    """The ``speakers`` value of ``--speakers``/``--speakers-from-first`` (not both)."""
    if from_first:
        if speakers:
            raise typer.BadParameter("give either --speakers or --speakers-from-first, not both")
        return "first"
    return speakers


@app.command()
def segment(
    inputs: List[Path] = typer.Argument(
        ..., metavar="INPUT...", help=f"Transcript files ({', '.join(format_names())}) or folders."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Canonical session JSONL to write (atomically)."),
    format: Optional[str] = FormatOption,
    speakers: Optional[str] = SpeakersOption,
    speakers_from_first: bool = SpeakersFromFirstOption,
    strict: bool = StrictOption,
) -> None:
    """Read transcripts, split turns into utterances with ids and times, write canonical JSONL.

    Each transcript file is one session (id from its file name); canonical JSONL input passes
    through unchanged. Bad files are reported one line each and skipped; the exit code is 1 if
    any file failed.
    """
    from ..ingest import segment_files
    from ..locking import output_lock
    from ..readers.speakers import parse_speakers

    speakers = speakers_option(speakers, speakers_from_first)
    parse_speakers(speakers)  # a bad mapping: one error line before any work
    files = expand_inputs(inputs, exclude=run_files(out))
    if not files:
        report_error("no input files")
        raise typer.Exit(1)
    with output_lock(out), ProgressDisplay() as show:
        rep = segment_files(files, out, format=format, speakers=speakers, progress=show, strict=strict)
    for err in rep.failures:
        report_error(err)
    failed = len(rep.failures)
    if rep.files_ok:
        err_console.print(
            f"wrote {rep.sessions} session(s), {rep.utterances} utterances from "
            f"{rep.files_ok} file(s) to {out}" + (f"; {failed} file(s) failed" if failed else ""),
            markup=False,
        )
    else:
        err_console.print(f"no output written: all {failed} file(s) failed", markup=False)
    if failed:
        raise typer.Exit(1)
