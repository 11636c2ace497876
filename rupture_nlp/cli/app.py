"""The typer application and the helpers every command shares (errors, progress, options).

Each command group lives in its own module (``cli/segment.py``, ``cli/model.py``, ...) and
registers itself on :data:`app`; this is the only package that knows all the stages.

Progress: library calls take a :data:`rupture_nlp.progress.ProgressCallback`; a command passes
them a :class:`ProgressDisplay`, which draws a rich bar on a terminal and otherwise (a log file,
a batch job) prints one plain line at most every :data:`PROGRESS_INTERVAL` seconds and at the
end. Messages for people come from the library's loggers: INFO and WARNING records of the
``rupture_nlp`` logger are printed on stderr, one line each (``warning: `` before warnings).
"""

from __future__ import annotations

import logging
import os
from enum import Enum
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..locking import lock_path
from ..progress import ProgressEvent
from ..readers import extensions
from ..tagging import journal_path

log = logging.getLogger(__name__)

#: Seconds between two plain progress lines when stderr is not a terminal (tests lower it).
PROGRESS_INTERVAL = 30.0
#: ``RUPTURE_PROGRESS=1`` draws the bar even when stderr is not a terminal; ``0``: no progress at all.
PROGRESS_ENV = "RUPTURE_PROGRESS"

app = typer.Typer(
    name="rupture",
    help="Tag alliance ruptures (3RS withdrawal / confrontation markers) and repair strategies "
    "in psychotherapy transcripts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ls_app = typer.Typer(help="Label Studio: server, labelling config, push tasks, pull annotations.", no_args_is_help=True)
corpus_app = typer.Typer(help="Inspect annotated corpora.", no_args_is_help=True)
app.add_typer(ls_app, name="ls")
app.add_typer(corpus_app, name="corpus")

console = Console(stderr=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class _LogLines(logging.Handler):
    """INFO and WARNING records of the library (resume notices, a file's repairs, ...) as one line
    each on stderr (``warning: ...`` for warnings, ``error: ...`` for errors), printed through
    :data:`err_console` so that they keep clear of the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not stop a run
            self.handleError(record)
            return
        if record.levelno >= logging.ERROR:
            msg = f"error: {msg}"
        elif record.levelno >= logging.WARNING:
            msg = f"warning: {msg}"
        err_console.print(msg, markup=False, highlight=False)


_library_log = logging.getLogger("rupture_nlp")
if not any(isinstance(h, _LogLines) for h in _library_log.handlers):
    _library_log.addHandler(_LogLines(logging.INFO))
    if _library_log.level == logging.NOTSET or _library_log.level > logging.INFO:
        _library_log.setLevel(logging.INFO)

SchemaOption = typer.Option(
    None, "--schema", help="Label schema file (YAML/JSON); default: the 3RS schema.", exists=False, dir_okay=False
)


def report_error(err: BaseException) -> None:
    """Print one error line to stderr (no traceback, no transcript text)."""
    err_console.print(f"[bold red]error:[/] {err}", markup=True, highlight=False)


def _rich_bar(transient: bool, disable: bool = False) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=disable,
    )


def duration(seconds: float) -> str:
    """``45s``, ``2m31s``, ``1h05m``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def progress_line(event: ProgressEvent, seconds: float) -> str:
    """``tag: 120/500 files, 1,480 sessions (2m31s)``: counts and the library's short status only."""
    count = f"{event.done:,}" if event.total is None else f"{event.done:,}/{event.total:,}"
    return (
        f"{event.stage}: {count} {event.unit}"
        + (f", {event.message}" if event.message else "")
        + f" ({duration(seconds)})"
    )


def progress_mode() -> str:
    """``bar`` (stderr is a terminal, or ``RUPTURE_PROGRESS=1``), ``lines`` (it is not) or ``off``
    (``RUPTURE_PROGRESS=0``)."""
    forced = os.environ.get(PROGRESS_ENV, "").strip()
    if forced == "1":
        return "bar"
    if forced == "0":
        return "off"
    return "bar" if sys.stderr.isatty() else "lines"


class ProgressDisplay:
    """The CLI end of :mod:`rupture_nlp.progress`: a ``ProgressCallback`` to hand to library calls,
    used as a context manager around them::

        with ProgressDisplay() as show:
            rep = tag_files(files, model, out, progress=show)

    On a terminal every stage gets a rich bar. Otherwise one plain line (:func:`progress_line`)
    goes to stderr when an event comes :data:`PROGRESS_INTERVAL` seconds or more after the last
    line, again from a background thread when the library is quiet that long (the last state, its
    time updated, so a log file never stays silent longer than the interval), and once at the
    end. Events carry no transcript text, so neither do the lines. ``transient``: the bar
    disappears at the end (plain mode prints its final line all the same).
    """

    def __init__(self, *, transient: bool = False, mode: str | None = None):
        self.mode = mode or progress_mode()
        self.transient = transient
        self._bar: Progress | None = None
        self._tasks: dict[str, object] = {}
        self._last: ProgressEvent | None = None
        self._last_line: str | None = None
        self._t0 = self._t_line = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "ProgressDisplay":
        self._t0 = self._t_line = time.monotonic()
        if self.mode == "bar":
            self._bar = _rich_bar(self.transient)
            self._bar.start()
        elif self.mode == "lines":
            self._thread = threading.Thread(target=self._heartbeat, name="rupture-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
            self._print(final=True)

    def __call__(self, event: ProgressEvent) -> None:
        if self._bar is not None:
            desc = event.stage + (f" ({event.message})" if event.message else "")
            task = self._tasks.get(event.stage)
            if task is None:
                self._tasks[event.stage] = self._bar.add_task(desc, total=event.total, completed=event.done)
            else:
                self._bar.update(task, description=desc, total=event.total, completed=event.done)
        elif self.mode == "lines":
            self._last = event
            self._print()

    def _print(self, final: bool = False) -> None:
        with self._lock:
            event, now = self._last, time.monotonic()
            if event is None or (not final and now - self._t_line < PROGRESS_INTERVAL):
                return
            line = progress_line(event, now - self._t0)
            if final and line == self._last_line:
                return
            self._t_line, self._last_line = now, line
            err_console.print(line, markup=False, highlight=False)

    def _heartbeat(self) -> None:
        while True:
            with self._lock:  # nothing to repeat before the first event: wait a whole interval
                due = (self._t_line + PROGRESS_INTERVAL - time.monotonic()) if self._last else PROGRESS_INTERVAL
            if self._stop.wait(min(max(due, 0.05), 5.0)):
                return
            self._print()


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
    files: set[Path] = set()
    for p in (out, *others):
        if p is not None:
            files |= {p, journal_path(p), lock_path(p)}
    return {f.resolve() for f in files}


def expand_inputs(inputs: Iterable[Path], exclude: Iterable[Path] = ()) -> list[Path]:
    """Files as given; folders expand to the transcript files inside them (sorted; hidden files,
    the run's own outputs in ``exclude`` and files that are clearly not transcripts skipped, with
    one INFO line naming what was skipped). Explicitly named files are always kept."""
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
    if skipped:
        names = ", ".join(q.name for q in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        log.info("skipped %d file(s) in input folders that are not transcripts (%s)", len(skipped), names)
    return out


# --------------------------------------------------------------------------- choices
class Weights(str, Enum):
    """``rupture train --weights``: what fine-tuning trains."""

    full = "full"
    lora = "lora"


class Arch(str, Enum):
    """``rupture train --arch``: the model architecture (``rupture_nlp.model.architectures``)."""

    session = "session"
    cross = "cross"


class Pooling(str, Enum):
    """``rupture train --pooling``: how utterance tokens become one vector."""

    mean = "mean"
    cls = "cls"


class PushOrder(str, Enum):
    """``rupture ls push --order``: the order annotators see tasks in."""

    session = "session"
    uncertainty = "uncertainty"


class Policy(str, Enum):
    """``rupture ls pull --policy``: how the annotations of several annotators are combined."""

    latest = "latest"
    majority = "majority"


class Backend(str, Enum):
    """``rupture tag --backend``: how the network runs (``rupture_nlp.model.backends.BACKENDS``)."""

    torch = "torch"
    openvino = "openvino"
    openvino_int8 = "openvino-int8"


class Engine(str, Enum):
    """``rupture tag --engine``: where the tagging runs (``rupture_nlp.engines.ENGINES``)."""

    local = "local"
    ray = "ray"
