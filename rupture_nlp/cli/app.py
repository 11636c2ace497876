"""The typer application and the helpers every command shares (errors, progress, options).

Each command group lives in its own module (``cli/segment.py``, ``cli/model.py``, ...) and
registers itself on :data:`app`; this is the only package that knows all the stages.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from ..errors import RuptureError
from ..readers import extensions

app = typer.Typer(
    name="rupture",
    help="Tag alliance ruptures (3RS withdrawal / confrontation markers) and repair strategies "
         "in psychotherapy transcripts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ls_app = typer.Typer(help="Label Studio: server, labelling config, push tasks, pull annotations.",
                     no_args_is_help=True)
corpus_app = typer.Typer(help="Inspect annotated corpora.", no_args_is_help=True)
app.add_typer(ls_app, name="ls")
app.add_typer(corpus_app, name="corpus")

console = Console(stderr=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class _WarningLines(logging.Handler):
    """WARNING records of the library (a file's repairs, ...) as one ``warning: ...`` line each
    on stderr, printed through :data:`err_console` so that they keep clear of the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(f"warning: {record.getMessage()}", markup=False, highlight=False)


if not logging.getLogger("rupture_nlp").handlers:
    logging.getLogger("rupture_nlp").addHandler(_WarningLines(logging.WARNING))

SchemaOption = typer.Option(None, "--schema", help="Label schema file (YAML/JSON); default: the 3RS schema.",
                            exists=False, dir_okay=False)


def report_error(err: BaseException) -> None:
    """Print one error line to stderr (no traceback, no transcript text)."""
    err_console.print(f"[bold red]error:[/] {err}", markup=True, highlight=False)


def fail(err: BaseException | str, code: int = 1) -> "typer.Exit":
    report_error(err if isinstance(err, BaseException) else RuptureError(str(err)))
    return typer.Exit(code)


def progress(transient: bool = False) -> Progress:
    """A rich progress bar on stderr (hidden when stderr is not a terminal unless forced)."""
    return Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err_console, transient=transient,
                    disable=not (sys.stderr.isatty() or os.environ.get("RUPTURE_PROGRESS") == "1"))


def load_schema_option(path: Optional[Path]):
    from ..schema import load_schema
    return load_schema(path)


_NOT_TRANSCRIPT_NAMES = ("readme", "license", "licence", "changelog", "notice")


def _looks_like_transcript(path: Path) -> bool:
    """In a folder, only files with a transcript extension count (``.json`` only when it holds
    canonical sessions); READMEs and licences never do."""
    name = path.name.lower()
    if name.startswith(_NOT_TRANSCRIPT_NAMES):
        return False
    suffix = path.suffix.lower()
    if suffix not in extensions():
        return False
    if suffix == ".json":
        try:
            with path.open("rb") as f:
                return b'"utterances"' in f.read(65536)
        except OSError:
            return True  # let the reader report it
    return True


def run_files(out: Path | None, *others: Path | None) -> set[Path]:
    """Files a run writes beside ``out`` (output, journal, lock, CSV): never inputs of that run."""
    from ..locking import lock_path
    files: set[Path] = set()
    for p in (out, *others):
        if p is not None:
            files |= {p, p.with_name(p.name + ".partial"), lock_path(p)}
    return {f.resolve() for f in files}


def expand_inputs(inputs: Iterable[Path], exclude: Iterable[Path] = (),
                  note: Callable[[str], None] | None = None) -> list[Path]:
    """Files as given; folders expand to the transcript files inside them (sorted; hidden files,
    the run's own outputs in ``exclude`` and files that are clearly not transcripts skipped, with
    one ``note`` naming what was skipped). Explicitly named files are always kept."""
    exclude = {Path(p).resolve() for p in exclude}
    out: list[Path] = []
    skipped: list[Path] = []
    for p in inputs:
        if p.is_dir():
            for q in sorted(p.rglob("*")):
                if not q.is_file() or any(part.startswith(".") for part in q.relative_to(p).parts):
                    continue
                if q.resolve() in exclude:
                    continue
                if _looks_like_transcript(q):
                    out.append(q)
                else:
                    skipped.append(q)
        else:
            out.append(p)
    if skipped and note:
        names = ", ".join(q.name for q in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        note(f"skipped {len(skipped)} file(s) in input folders that are not transcripts ({names})")
    return out
