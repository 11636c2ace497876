"""The typer application and the helpers every command shares (errors, progress, options).

Each command group lives in its own module (``cli/segment.py``, ``cli/model.py``, ...) and
registers itself on :data:`app`; this is the only package that knows all the stages.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Optional

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from ..errors import RuptureError

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


def expand_inputs(inputs: Iterable[Path]) -> list[Path]:
    """Files as given; directories expand to the files inside them (sorted, hidden files skipped)."""
    out: list[Path] = []
    for p in inputs:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and not any(
                part.startswith(".") for part in q.relative_to(p).parts))
        else:
            out.append(p)
    return out
