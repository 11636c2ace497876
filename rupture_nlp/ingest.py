"""Ingestion: any supported transcript file in, segmented canonical sessions out.

>>> from rupture_nlp.ingest import load_sessions
>>> for session in load_sessions("session03.vtt", speakers="DR. LEE=therapist,MARIA=client"):
...     print(session.session_id, len(session.utterances))

Transcript files (txt, csv/tsv, vtt, srt) hold one session each: they are read
(:mod:`rupture_nlp.readers`), turned into a spaCy Doc and segmented
(:mod:`rupture_nlp.segment`). Canonical JSONL passes through unchanged (same utterances, ids,
labels), streamed one session at a time. :func:`load_docs` gives the spaCy Docs instead.
Every problem with an input raises :class:`~rupture_nlp.errors.RuptureError` naming the file
(and line). Small damage (a timestamp slipping back a second, control characters, lines in
another encoding) is repaired, recorded in the session's ``meta["repairs"]`` and logged as one
warning line per file (see :mod:`rupture_nlp.readers`); ``strict=True`` refuses it instead.

spaCy (and :mod:`rupture_nlp.segment`) is imported on first use, so that code that only
streams canonical JSONL through :func:`load_sessions` does not pay for importing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping

from .atomic import atomic_write
from .errors import RuptureError, file_failure
from .progress import ProgressCallback, emit
from .readers import Turn, check_file, check_format, detect_format, format_names, get_format, read_turns
from .readers.encoding import decode_head
from .readers.registry import SessionReader
from .readers.speakers import parse_speakers
from .records import Session

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

__all__ = [
    "load_sessions",
    "load_docs",
    "make_pipeline",
    "default_pipeline",
    "session_id_from_path",
    "segment_files",
    "SegmentReport",
]

Speakers = str | Mapping[str, str] | None
#: Keys of the reader's meta that a transcript session keeps, besides the source fields.
_KEPT_META = ("header", "repairs", "notices", "speakers_from_first")


def make_pipeline(overrides: dict | None = None) -> Language:
    """The segmentation pipeline (``spacy.blank("en")`` + rupture components); see
    :func:`rupture_nlp.segment.make_pipeline` for ``overrides``."""
    from .segment import make_pipeline as _make_pipeline

    return _make_pipeline(overrides)


@lru_cache(maxsize=1)
def default_pipeline() -> Language:
    """One shared default pipeline per process (built on first use)."""
    return make_pipeline()


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_ALPHA_SUFFIX = re.compile(r"\.[A-Za-z]{1,12}$")


def session_id_from_path(path: str | Path) -> str:
    """A stable session id from a file name: the name without its alphabetic suffixes
    (``b1-cbt-01.timestamped.txt`` -> ``b1-cbt-01``), other characters than letters, digits,
    ``_ . -`` replaced by ``-``."""
    name = Path(path).name
    while True:
        stripped = _ALPHA_SUFFIX.sub("", name)
        if stripped == name or not stripped:
            break
        name = stripped
    sid = _UNSAFE.sub("-", name).strip("-._")
    return sid or "session"


def _time_source(turns: list[Turn]) -> str:
    pieces = [p for t in turns for p in t.pieces]
    starts = sum(p.start is not None for p in pieces)
    ends = sum(p.end is not None for p in pieces)
    if starts == ends == len(pieces):
        return "source"
    if starts == len(pieces):
        return "starts"
    return "partial" if starts or ends else "none"


def __getattr__(name: str):
    """``FORMATS``: the names of the input formats registered now."""
    if name == "FORMATS":
        return tuple(format_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _session_reader(path: Path, fmt: str | None, head: bytes) -> SessionReader | None:
    """How to stream the sessions of a file whose format holds whole sessions (canonical
    JSONL); None for a transcript (one session, to be segmented)."""
    return get_format(fmt or detect_format(path, decode_head(head))).sessions


def load_docs(
    path: str | Path,
    *,
    format: str | None = None,
    speakers: Speakers = None,
    nlp: Language | None = None,
    strict: bool = False,
) -> Iterator[Doc]:
    """The sessions of a file as processed spaCy Docs (see :mod:`rupture_nlp.segment` for their
    attributes). Canonical JSONL sessions become Docs without re-segmentation. ``strict``: as
    for :func:`load_sessions`."""
    path = Path(path)
    fmt = check_format(format)
    parse_speakers(speakers)  # a bad mapping fails before any file is read
    nlp = nlp or default_pipeline()
    head = check_file(path)
    sessions = _session_reader(path, fmt, head)
    if sessions is not None:
        from .segment import session_to_doc

        for session in sessions(path):
            try:
                doc = session_to_doc(nlp, session)
            except RuptureError as e:  # a session too long for one Doc
                raise RuptureError(e.message, e.path or path, e.line) from None
            yield doc
        return
    yield _transcript_doc(path, fmt, speakers, nlp, head, strict)


def _transcript_doc(
    path: Path, fmt: str | None, speakers: Speakers, nlp: Language, head: bytes, strict: bool, record_only: bool = False
) -> Doc:
    """The processed Doc of a transcript file; ``record_only``: a Doc only for
    :func:`~rupture_nlp.segment.doc_to_session` (see ``make_record_doc``)."""
    from .segment import MAX_SESSION_CHARS, make_doc, make_record_doc

    turns, raw_meta = read_turns(path, format=fmt, speakers=speakers, head=head, strict=strict)
    size = sum(len(t.text) + 1 for t in turns) - 1
    if size > MAX_SESSION_CHARS:
        raise RuptureError(
            f"session too long to segment ({size:,} characters of text; the limit is "
            f"{MAX_SESSION_CHARS:,}): split the transcript into several files",
            path,
        )
    meta = {
        "source_file": raw_meta["source_file"],
        "source_format": raw_meta["source_format"],
        "source_encoding": raw_meta["source_encoding"],
        "time_source": _time_source(turns),
    }
    meta.update((k, raw_meta[k]) for k in _KEPT_META if raw_meta.get(k))
    doc = (make_record_doc if record_only else make_doc)(nlp, turns, session_id=session_id_from_path(path), meta=meta)
    return nlp(doc)


def load_sessions(
    path: str | Path,
    *,
    format: str | None = None,
    speakers: Speakers = None,
    nlp: Language | None = None,
    strict: bool = False,
) -> Iterator[Session]:
    """Read any supported transcript file and yield its segmented canonical sessions.

    ``format``: an input format's name or alias (:mod:`rupture_nlp.readers.registry`: ``txt,
    csv, tsv, vtt, srt, jsonl`` and any other registered; default: detected from content and
    extension). ``speakers``: ``"NAME=therapist,NAME=client"`` or a dict, for speaker names
    other than the built-in ones, or ``"first"``: the first speaker to talk is the therapist,
    the other the client (see :mod:`rupture_nlp.readers.speakers`). ``nlp``: a pipeline from
    :func:`make_pipeline` (default: a shared one). ``strict``: refuse small damage (see
    :mod:`rupture_nlp.readers`) instead of repairing it. A transcript file gives
    one session, its id from the file name, with what was repaired in ``meta["repairs"]`` and
    what was noticed in ``meta["notices"]``; canonical JSONL passes through unchanged,
    streamed. Raises RuptureError on bad input.
    """
    path = Path(path)
    fmt = check_format(format)
    parse_speakers(speakers)
    head = check_file(path)
    sessions = _session_reader(path, fmt, head)
    if sessions is not None:
        yield from sessions(path)
        return
    from .segment import doc_to_session

    yield doc_to_session(_transcript_doc(path, fmt, speakers, nlp or default_pipeline(), head, strict))


def _json_lines(
    path: Path, fmt: str | None, speakers: Speakers, nlp: Language, plain: bool, strict: bool
) -> Iterator[tuple[str, int, str]]:
    """``(session_id, number of utterances, JSON line without newline)`` of each session of a
    file: exactly ``load_sessions`` followed by ``Session.to_json``. With the plain pipeline
    (``plain``: ``plain_pipeline(nlp)``) a transcript's Doc is one of ``make_record_doc``
    (no span groups: the record is all that is written)."""
    sessions: Iterable[Session] | None = None
    if plain:
        head = check_file(path)
        if _session_reader(path, fmt, head) is None:
            from .segment import doc_to_session

            sessions = [doc_to_session(_transcript_doc(path, fmt, speakers, nlp, head, strict, record_only=True))]
    for session in sessions or load_sessions(path, format=fmt, speakers=speakers, nlp=nlp, strict=strict):
        yield session.session_id, len(session.utterances), session.to_json()


# --------------------------------------------------------------------------- batches
@dataclass
class SegmentReport:
    """What :func:`segment_files` did: files read, sessions and utterances written, and one
    RuptureError per failed file (naming the file and line), in input order."""

    files_ok: int = 0
    sessions: int = 0
    utterances: int = 0
    failures: list[RuptureError] = field(default_factory=list)


def segment_files(
    inputs: Iterable[str | Path],
    out: str | Path,
    *,
    format: str | None = None,
    speakers: Speakers = None,
    nlp: Language | None = None,
    progress: ProgressCallback | None = None,
    strict: bool = False,
) -> SegmentReport:
    """Segment many files into one canonical JSONL file, written atomically.

    A file that fails contributes nothing (its partial output is rolled back), its error goes to
    ``report.failures`` and the batch goes on. ``progress`` is called with
    ``ProgressEvent("segment", files done, files, unit="files", message="N sessions[, M failed]")``
    at the start and after each file; an exception it raises (KeyboardInterrupt) stops the batch
    and leaves no output. Session ids must be unique across the output: a second file with the
    same id fails. When no file succeeds, ``out`` is left untouched. Bad ``format``/``speakers``
    raise RuptureError at once. ``strict``: as for :func:`load_sessions`.
    """
    fmt = check_format(format)
    parse_speakers(speakers)
    out = Path(out)
    inputs = [Path(p) for p in inputs]
    out_exists, out_real = out.exists(), None
    for p in inputs:
        if out_exists and p.exists():
            real = p.resolve()
            out_real = out_real or out.resolve()
            if real == out_real:
                raise RuptureError("the output file is also an input; choose another --out", out)
    nlp = nlp or default_pipeline()
    from .segment import plain_pipeline

    plain = plain_pipeline(nlp)
    report = SegmentReport()
    seen: dict[str, Path] = {}

    def tick(files_done: int) -> None:
        if progress is not None:
            n, failed = report.sessions, len(report.failures)
            emit(
                progress,
                "segment",
                files_done,
                len(inputs),
                unit="files",
                message=f"{n:,} session{'' if n == 1 else 's'}" + (f", {failed:,} failed" if failed else ""),
            )

    class _NothingWritten(Exception):
        pass

    try:
        with atomic_write(out) as f:
            tick(0)
            for i, path in enumerate(inputs, 1):
                mark = f.tell()
                new_ids: list[str] = []
                n_sess = n_utt = 0
                try:
                    for sid, n_utts, line in _json_lines(path, fmt, speakers, nlp, plain, strict):
                        if sid in seen or sid in new_ids:
                            other = seen.get(sid, path)
                            raise RuptureError(
                                f"session id {sid!r} is already used by {other}; rename one of the files", path
                            )
                        new_ids.append(sid)
                        f.write(line + "\n")
                        n_sess += 1
                        n_utt += n_utts
                except Exception as e:  # noqa: BLE001 - one bad file must not stop the batch
                    e = file_failure(e, path, "read")
                    f.seek(mark)
                    f.truncate()
                    report.failures.append(e)
                else:
                    report.files_ok += 1
                    report.sessions += n_sess
                    report.utterances += n_utt
                    seen.update({sid: path for sid in new_ids})
                tick(i)
            if report.files_ok == 0:
                raise _NothingWritten
    except _NothingWritten:
        pass
    return report
