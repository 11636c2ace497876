"""The journal of a ``rupture tag`` run and the final outputs written from it.

While a run goes on, every finished session is appended to ``OUT.partial`` (JSON lines): a
header naming the journal kind, its version and the model version; then ``{"begin": fp}``,
``{"fp": fp, "session": {...}}`` per session, ``{"end": fp}`` or ``{"failed": fp}`` per input
file, where ``fp`` is the sha256 fingerprint of the input file. A rerun with the same model keeps
every record up to a torn last write, except those of failed files (:func:`open_journal`); the
final JSONL (and CSV) are written atomically from the journal in input order (:func:`finish`).
Both tagging engines (:mod:`rupture_nlp.tagging`, :mod:`rupture_nlp.engines.ray_engine`) write
through :class:`rupture_nlp.tagging._TagRun`, which owns one journal.
"""

from __future__ import annotations

import csv as csvlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from .atomic import atomic_write
from .model.base import file_sha256

log = logging.getLogger("rupture_nlp.tagging")

JOURNAL_KIND = "rupture-tag-journal"
JOURNAL_VERSION = 1
CSV_FIXED = ["session", "id", "speaker", "start", "end", "text", "labels"]


def journal_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".partial")


def score_column(label_id: str) -> str:
    """CSV column name of a label's score: ``score_`` + the id with non-alphanumerics as ``_``
    (valid variable names in R, SPSS and Stata)."""
    return "score_" + re.sub(r"[^0-9A-Za-z]+", "_", label_id).strip("_")


def file_fingerprint(path: Path) -> str:
    """The journal's key for an input file: ``sha256:`` + the hex digest of its bytes."""
    return "sha256:" + file_sha256(path)


# ------------------------------------------------------------------------------------------
# journal
# ------------------------------------------------------------------------------------------
@dataclass
class JournalState:
    done: set[str] = field(default_factory=set)  # fingerprints finished
    partial: dict[str, dict[str, None]] = field(default_factory=dict)  # fingerprint -> session ids, in order
    counts: dict[str, int] = field(default_factory=dict)  # fingerprint -> sessions kept


def _header(model_version: str) -> dict[str, Any]:
    return {"journal": JOURNAL_KIND, "version": JOURNAL_VERSION, "model_version": model_version}


def open_journal(path: Path, model_version: str, resume: bool) -> tuple[Any, JournalState]:
    """Open the journal for appending (creating or compacting it), logging what happens to an
    earlier run's journal. Returns (file, state)."""
    state = JournalState()
    keep: list[str] = []
    if resume and path.is_file():
        with path.open("r", encoding="utf-8", newline="") as f:
            first = f.readline()
            try:
                head = json.loads(first)
            except json.JSONDecodeError:
                head = None
            if not isinstance(head, dict) or head.get("journal") != JOURNAL_KIND:
                log.warning("unreadable journal of an earlier run: starting over")
            elif head.get("model_version") != model_version:
                log.info(
                    "earlier run used model %s, this one %s: starting over", head.get("model_version"), model_version
                )
            else:
                for line, rec in _resumable(f):
                    fp = rec.get("fp") or rec.get("end") or rec.get("begin")
                    if "end" in rec:
                        state.done.add(fp)
                    elif "session" in rec:
                        state.partial.setdefault(fp, {})[rec["session"]["session_id"]] = None
                        state.counts[fp] = state.counts.get(fp, 0) + 1
                    keep.append(line)
                if state.counts:
                    log.info("resuming an interrupted run from %s", path.name)
    with atomic_write(path) as f:
        f.write(json.dumps(_header(model_version)) + "\n")
        f.writelines(keep)
    return path.open("a", encoding="utf-8", newline=""), state


def _resumable(f: Any) -> list[tuple[str, dict]]:
    """The ``(line, record)`` pairs of a journal after its header that a rerun keeps: up to a torn
    or unreadable last write, without the records of files that failed (nor the failure marks)."""
    records: list[tuple[str, dict]] = []
    for line in f:
        if not line.endswith("\n"):
            break  # torn last write: ignore it
        try:
            records.append((line, json.loads(line)))
        except json.JSONDecodeError:
            break
    failed = {rec["failed"] for _, rec in records if "failed" in rec}
    return [
        (line, rec)
        for line, rec in records
        if (fp := rec.get("fp") or rec.get("end") or rec.get("begin")) is not None and fp not in failed
    ]


def kept_sessions(path: Path) -> int:
    """Session records of the journal that a rerun would resume (not of a failed file)."""
    with path.open("r", encoding="utf-8", newline="") as f:
        f.readline()
        return sum("session" in rec for _, rec in _resumable(f))


def _journal_sessions(path: Path, wanted: Sequence[str]) -> Iterator[dict]:
    """Session dicts of the journal whose input fingerprint is in ``wanted``, in input order.

    Within a fingerprint the journal order is kept; fingerprints are emitted in ``wanted``
    order (one pass per fingerprint only when the journal interleaves them).
    """
    order = {fp: i for i, fp in enumerate(wanted)}
    seq: list[str] = []
    with path.open("r", encoding="utf-8") as f:
        f.readline()
        for line in f:
            rec = json.loads(line)
            if "session" in rec and rec["fp"] in order and (not seq or seq[-1] != rec["fp"]):
                seq.append(rec["fp"])
    monotone = all(order[a] < order[b] for a, b in zip(seq, seq[1:]))
    passes = [None] if monotone else [fp for fp in wanted if fp in set(seq)]
    for target in passes:
        with path.open("r", encoding="utf-8") as f:
            f.readline()
            for line in f:
                rec = json.loads(line)
                if "session" in rec and rec["fp"] in order and (target is None or rec["fp"] == target):
                    yield rec["session"]


# ------------------------------------------------------------------------------------------
# output
# ------------------------------------------------------------------------------------------
def _csv_rows(session: dict, label_ids: Sequence[str]) -> Iterator[list[Any]]:
    for u in session["utterances"]:
        scores = u.get("scores") or {}
        yield (
            [
                session["session_id"],
                u["id"],
                u["speaker"],
                "" if u.get("start") is None else u["start"],
                "" if u.get("end") is None else u["end"],
                u["text"],
                ";".join(u.get("labels") or []),
            ]
            + [scores.get(l, "") for l in label_ids]
        )


def finish(journal: Path, out: Path, csv_path: Path | None, wanted: Sequence[str], label_ids: Sequence[str]) -> None:
    with atomic_write(out) as fo:
        if csv_path is None:
            for s in _journal_sessions(journal, wanted):
                fo.write(json.dumps(s, ensure_ascii=False) + "\n")
        else:
            with atomic_write(csv_path) as fc:
                w = csvlib.writer(fc, lineterminator="\n")
                w.writerow(CSV_FIXED + [score_column(l) for l in label_ids])
                for s in _journal_sessions(journal, wanted):
                    fo.write(json.dumps(s, ensure_ascii=False) + "\n")
                    w.writerows(_csv_rows(s, label_ids))
