"""Session and corpus reports: 3RS-style counts per segment, rupture-repair episodes, timelines.

``build_report(paths, out_dir)`` writes ``sessions.csv``, ``segments.csv``, ``episodes.csv``,
``README.txt`` (column documentation), ``index.html`` and ``sessions/<id>.html``.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..atomic import atomic_write, atomic_write_text
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


def _page_name(session_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", session_id) + ".html"


def build_report(inputs: Iterable[str | Path] | Iterable[Session], out_dir: str | Path, *,
                 schema: LabelSchema | None = None, segment_minutes: float = 5.0,
                 segment_utterances: int = 50, repair_window: int = 5, html: bool = True) -> ReportResult:
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
    srows, segrows, eprows, eps = corpus_tables(sessions, schema, segment_minutes=segment_minutes,
                                                segment_utterances=segment_utterances,
                                                repair_window=repair_window)
    files = []
    for name, rows in (("sessions.csv", srows), ("segments.csv", segrows), ("episodes.csv", eprows)):
        _write_csv(out / name, rows)
        files.append(out / name)
    doc = ["Columns of the rupture-nlp report tables", ""]
    for name, cols in COLUMNS.items():
        doc += [name] + [f"  {k}: {v}" for k, v in cols.items()] + [""]
    doc += [f"settings: segment_minutes={segment_minutes}, segment_utterances={segment_utterances}, "
            f"repair_window={repair_window}, schema={schema.name}"]
    atomic_write_text(out / "README.txt", "\n".join(doc) + "\n")
    files.append(out / "README.txt")
    if html:
        links = {s.session_id: f"sessions/{_page_name(s.session_id)}" for s in sessions}
        for s, srow in zip(sessions, srows):
            p = out / "sessions" / _page_name(s.session_id)
            atomic_write_text(p, session_page(
                s, schema, srow, [r for r in segrows if r["session_id"] == s.session_id],
                [r for r in eprows if r["session_id"] == s.session_id], eps[s.session_id],
                segment_minutes, segment_utterances))
            files.append(p)
        atomic_write_text(out / "index.html", index_page(srows, schema, links))
        files.append(out / "index.html")
    return ReportResult(out, len(sessions), len(eprows), files)
