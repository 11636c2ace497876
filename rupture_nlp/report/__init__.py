"""Session and corpus reports: 3RS-style counts per segment, rupture-repair episodes, timelines.

``build_report(paths, out_dir)`` writes ``sessions.csv``, ``segments.csv``, ``episodes.csv``,
``README.txt`` (column documentation), ``index.html`` and one page per session in ``sessions/``
(named by the session id; ids that are not plain file names get a slug plus a hash of the id).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..atomic import atomic_write, atomic_write_text
from ..errors import RuptureError
from ..records import Session, read_sessions
from ..schema import LabelSchema, load_schema
from .episodes import Episode, find_episodes, segment_index  # noqa: F401  (public API)
from .html import index_page, session_page
from .tables import COLUMNS, corpus_tables

__all__ = ["build_report", "ReportResult", "find_episodes", "segment_index", "corpus_tables"]


@dataclass
class ReportResult:
    out_dir: Path
    n_sessions: int
    n_episodes: int
    files: list[Path]


def _write_csv(path: Path, rows: Sequence[dict]) -> None:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with atomic_write(path) as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})


def _slug(session_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", session_id).strip("._-")[:80] or "session"


def _hashed_name(session_id: str) -> str:
    return f"{_slug(session_id)}-{hashlib.sha256(session_id.encode('utf-8')).hexdigest()[:10]}.html"


def page_names(session_ids: Sequence[str]) -> dict[str, str]:
    """Session id -> file name of its page: ``<id>.html`` when the id is a plain file name,
    otherwise (or when names would clash, also case-insensitively) a slug plus a short hash
    of the id, so ``a/b`` and ``a_b`` never share a page. The same ids give the same names in
    any order; only ids whose names clash case-insensitively (``A1``, ``a1``) depend on each other."""
    names = {sid: (f"{sid}.html" if _slug(sid) == sid else _hashed_name(sid)) for sid in session_ids}
    while True:
        count = Counter(n.casefold() for n in names.values())
        clash = [sid for sid, n in names.items() if count[n.casefold()] > 1 and n != _hashed_name(sid)]
        if not clash:
            return names
        for sid in clash:
            names[sid] = _hashed_name(sid)


def build_report(
    inputs: Iterable[str | Path] | Iterable[Session],
    out_dir: str | Path,
    *,
    schema: LabelSchema | None = None,
    segment_minutes: float = 5.0,
    segment_utterances: int = 50,
    repair_window: int = 5,
    html: bool = True,
) -> ReportResult:
    """Build the report for canonical sessions (paths to JSONL files, or Session objects).

    ``segment_minutes``: segment length when the session has times; ``segment_utterances``:
    segment length without times; ``repair_window``: utterances within which a repair must
    follow a marker (and within which renewed markers make the repair unresolved).
    """
    schema = schema or load_schema()
    out = Path(out_dir)
    items = list(inputs)
    sessions: list[Session] = []
    for it in items:
        if isinstance(it, Session):
            sessions.append(it)
        else:
            sessions.extend(read_sessions(it))
    if not sessions:
        one = [it for it in items if not isinstance(it, Session)]
        raise RuptureError("no sessions to report (nothing written)", one[0] if len(one) == 1 else None)
    seen: set[str] = set()
    for s in sessions:
        if s.session_id in seen:
            raise RuptureError(
                f"session id {s.session_id!r} occurs more than once in the input; "
                "a report needs unique session ids (nothing written)"
            )
        seen.add(s.session_id)
    srows, segrows, eprows, eps = corpus_tables(
        sessions,
        schema,
        segment_minutes=segment_minutes,
        segment_utterances=segment_utterances,
        repair_window=repair_window,
    )
    files = []
    for name, rows in (("sessions.csv", srows), ("segments.csv", segrows), ("episodes.csv", eprows)):
        _write_csv(out / name, rows)
        files.append(out / name)
    doc = ["Columns of the rupture-nlp report tables", ""]
    for name, cols in COLUMNS.items():
        doc += [name] + [f"  {k}: {v}" for k, v in cols.items()] + [""]
    doc += [
        f"settings: segment_minutes={segment_minutes}, segment_utterances={segment_utterances}, "
        f"repair_window={repair_window}, schema={schema.name}"
    ]
    atomic_write_text(out / "README.txt", "\n".join(doc) + "\n")
    files.append(out / "README.txt")
    if html:
        names = page_names([s.session_id for s in sessions])
        links = {sid: f"sessions/{name}" for sid, name in names.items()}
        for s, srow in zip(sessions, srows):
            p = out / "sessions" / names[s.session_id]
            atomic_write_text(
                p,
                session_page(
                    s,
                    schema,
                    srow,
                    [r for r in segrows if r["session_id"] == s.session_id],
                    [r for r in eprows if r["session_id"] == s.session_id],
                    eps[s.session_id],
                    segment_minutes,
                    segment_utterances,
                ),
            )
            files.append(p)
        atomic_write_text(out / "index.html", index_page(srows, schema, links))
        files.append(out / "index.html")
    return ReportResult(out, len(sessions), len(eprows), files)
