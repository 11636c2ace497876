"""Batch tagging: transcripts in, tagged canonical JSONL (and CSV) out — streaming and resumable.

``tag_files(inputs, model, out, csv=None)`` reads every input through the ingestion pipeline
(any supported transcript format; canonical JSONL passes through with its utterances and ids
unchanged), predicts labels and scores with a :class:`~rupture_nlp.model.RuptureClassifier`
in batches of a few hundred utterances (bounded memory whatever the corpus size), and writes:

* ``out``: canonical JSONL, one tagged session per line, in input order;
* ``csv`` (optional): one row per utterance — session, id, speaker, start, end, text, labels
  (``;``-separated), then one score column per label (``score_<label>``, ``/`` -> ``_``).

Resumable: while it runs, finished sessions go to a journal ``OUT.partial`` (JSON lines; the
first names the model version, every file's records carry the sha256 of its input). After an
interruption a rerun with the same model skips every input file already done and every session
already written for a half-done file; with another model it starts over. The final files
appear atomically, and the journal is removed, only at the end. A file that cannot be read or
parsed is reported (one line, file and line) and contributes nothing; the others go on.
"""
from __future__ import annotations

import csv as csvlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .atomic import atomic_write
from .decision import apply_predictions
from .errors import RuptureError
from .records import Session, read_sessions

JOURNAL_KIND = "rupture-tag-journal"
JOURNAL_VERSION = 1
CSV_FIXED = ["session", "id", "speaker", "start", "end", "text", "labels"]


@dataclass
class TagReport:
    """What a tagging run did. ``failed``: (path, one-line reason) per bad input file."""

    out: Path
    csv: Path | None
    model_version: str
    files: int = 0
    sessions: int = 0
    utterances: int = 0
    resumed_sessions: int = 0
    resumed_files: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def journal_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".partial")


def score_column(label_id: str) -> str:
    """CSV column name of a label's score: ``score_`` + the id with non-alphanumerics as ``_``
    (valid variable names in R, SPSS and Stata)."""
    return "score_" + re.sub(r"[^0-9A-Za-z]+", "_", label_id).strip("_")


def file_fingerprint(path: Path) -> str:
    from .model.base import file_sha256
    return "sha256:" + file_sha256(path)


# ------------------------------------------------------------------------------------------
# input
# ------------------------------------------------------------------------------------------
class _Reader:
    """Reads any supported input; uses the ingestion pipeline when it is available."""

    def __init__(self, format: str | None, speakers: Any):
        self.format, self.speakers = format, speakers
        try:
            from . import ingest  # noqa: F401
            self._ingest = ingest
        except ImportError:
            self._ingest = None

    def __call__(self, path: Path) -> Iterator[Session]:
        if self._ingest is None:
            if path.suffix.lower() not in (".jsonl", ".json") and self.format not in ("jsonl", "canonical"):
                raise RuptureError("only canonical JSONL can be read (the ingestion module is not installed)", path)
            yield from read_sessions(path)
            return
        yield from self._ingest.load_sessions(path, format=self.format, speakers=self.speakers)


# ------------------------------------------------------------------------------------------
# journal
# ------------------------------------------------------------------------------------------
@dataclass
class _JournalState:
    done: set[str] = field(default_factory=set)                    # fingerprints finished
    partial: dict[str, set[str]] = field(default_factory=dict)     # fingerprint -> session ids
    counts: dict[str, int] = field(default_factory=dict)           # fingerprint -> sessions kept


def _header(model_version: str) -> dict[str, Any]:
    return {"journal": JOURNAL_KIND, "version": JOURNAL_VERSION, "model_version": model_version}


def _open_journal(path: Path, model_version: str, resume: bool) -> tuple[Any, _JournalState, str | None]:
    """Open the journal for appending (creating or compacting it). Returns (file, state, note)."""
    state = _JournalState()
    note = None
    keep: list[str] = []
    if resume and path.is_file():
        with path.open("r", encoding="utf-8", newline="") as f:
            first = f.readline()
            try:
                head = json.loads(first)
            except json.JSONDecodeError:
                head = None
            if not isinstance(head, dict) or head.get("journal") != JOURNAL_KIND:
                note = "unreadable journal of an earlier run: starting over"
            elif head.get("model_version") != model_version:
                note = (f"earlier run used model {head.get('model_version')}, this one {model_version}: "
                        "starting over")
            else:
                failed: set[str] = set()
                lines: list[tuple[str, dict]] = []
                for line in f:
                    if not line.endswith("\n"):
                        break  # torn last write: ignore it
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        break
                    lines.append((line, rec))
                    if "failed" in rec:
                        failed.add(rec["failed"])
                for line, rec in lines:
                    fp = rec.get("fp") or rec.get("end") or rec.get("begin")
                    if fp is None or fp in failed:
                        continue
                    if "end" in rec:
                        state.done.add(fp)
                    elif "session" in rec:
                        state.partial.setdefault(fp, set()).add(rec["session"]["session_id"])
                        state.counts[fp] = state.counts.get(fp, 0) + 1
                    keep.append(line)
                n = sum(state.counts.values())
                note = f"resuming an interrupted run: {n} session(s) already tagged" if n else None
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        f.write(json.dumps(_header(model_version)) + "\n")
        f.writelines(keep)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path.open("a", encoding="utf-8", newline=""), state, note


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
        yield ([session["session_id"], u["id"], u["speaker"],
                "" if u.get("start") is None else u["start"], "" if u.get("end") is None else u["end"],
                u["text"], ";".join(u.get("labels") or [])]
               + [scores.get(l, "") for l in label_ids])


def _finish(journal: Path, out: Path, csv_path: Path | None, wanted: Sequence[str], label_ids: Sequence[str]) -> None:
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


# ------------------------------------------------------------------------------------------
def tag_files(inputs: Iterable[str | Path], model: Any, out: str | Path, csv: str | Path | None = None, *,
              format: str | None = None, speakers: Any = None, batch_utterances: int = 512,
              resume: bool = True, on_file: Callable[[Path, int], None] | None = None,
              on_session: Callable[[Session], None] | None = None,
              on_note: Callable[[str], None] | None = None) -> TagReport:
    """Tag every session of every input file; see the module docstring for outputs and resuming.

    ``model``: a RuptureClassifier or a model directory. ``format``/``speakers``: passed to
    ``rupture_nlp.ingest.load_sessions``. ``batch_utterances``: utterances per prediction batch
    (memory bound). Callbacks: ``on_file(path, sessions_in_file)`` after each input,
    ``on_session(session)`` after each tagged session is safely in the journal, ``on_note(text)``
    for resume notices. Returns a :class:`TagReport`; bad files are in ``report.failed``.
    """
    t0 = time.perf_counter()
    if isinstance(model, (str, Path)):
        from .model import RuptureClassifier
        model = RuptureClassifier.from_pretrained(model)
    out = Path(out)
    csv_path = Path(csv) if csv is not None else None
    paths = [Path(p) for p in inputs]
    if not paths:
        raise RuptureError("no input files")
    for target in [out] + ([csv_path] if csv_path else []):
        if any(p.exists() and target.exists() and p.resolve() == target.resolve() for p in paths):
            raise RuptureError("the output file is also an input; choose another --out/--csv", target)
    if csv_path is not None and csv_path.resolve() == out.resolve():
        raise RuptureError("--csv and --out must be different files", csv_path)
    report = TagReport(out=out, csv=csv_path, model_version=model.model_version)
    label_ids = model.schema.label_ids
    jpath = journal_path(out)
    jf, state, note = _open_journal(jpath, model.model_version, resume)
    if note and on_note:
        on_note(note)
    read = _Reader(format, speakers)
    wanted: list[str] = []
    try:
        for path in paths:
            report.files += 1
            try:
                fp = file_fingerprint(path)
            except OSError as e:
                report.failed.append((str(path), f"{path}: cannot read: {e.strerror}"))
                continue
            if fp in wanted:
                if on_note:
                    on_note(f"{path}: same content as an earlier input, skipped")
                continue
            if fp in state.done:
                wanted.append(fp)
                report.resumed_files += 1
                report.resumed_sessions += state.counts.get(fp, 0)
                report.sessions += state.counts.get(fp, 0)
                if on_file:
                    on_file(path, state.counts.get(fp, 0))
                continue
            seen = state.partial.get(fp, set())
            n_file = 0
            buf: list[Session] = []
            n_buf = 0

            def flush() -> None:
                nonlocal buf, n_buf
                if not buf:
                    return
                P = model.predict_proba(buf)
                apply_predictions(buf, P, model.schema, model.thresholds)
                for s in buf:
                    jf.write(json.dumps({"fp": fp, "session": s.to_dict()}, ensure_ascii=False) + "\n")
                jf.flush()
                os.fsync(jf.fileno())
                for s in buf:
                    report.sessions += 1
                    report.utterances += len(s.utterances)
                    if on_session:
                        on_session(s)
                buf, n_buf = [], 0

            try:
                jf.write(json.dumps({"begin": fp, "path": str(path)}) + "\n")
                for s in read(path):
                    n_file += 1
                    if s.session_id in seen:
                        report.resumed_sessions += 1
                        report.sessions += 1
                        continue
                    buf.append(s)
                    n_buf += len(s.utterances)
                    if n_buf >= batch_utterances:
                        flush()
                flush()
            except RuptureError as e:
                buf, n_buf = [], 0
                jf.write(json.dumps({"failed": fp}) + "\n")
                jf.flush()
                report.failed.append((str(path), str(e) if e.path else f"{path}: {e}"))
                continue
            jf.write(json.dumps({"end": fp, "n": n_file}) + "\n")
            jf.flush()
            os.fsync(jf.fileno())
            wanted.append(fp)
            if on_file:
                on_file(path, n_file)
    finally:
        jf.close()
    _finish(jpath, out, csv_path, wanted, label_ids)
    jpath.unlink(missing_ok=True)
    report.seconds = time.perf_counter() - t0
    return report
