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

Progress goes to an optional :data:`~rupture_nlp.progress.ProgressCallback` (stage ``"tag"``, in
files); notices (resuming, starting over, a duplicate input skipped) to this module's logger.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .atomic import write_error
from .decision import apply_predictions
from .engines import ENGINES, failure_line, release_freed_memory
from .errors import RuptureError
from .progress import ProgressCallback, emit
from .records import Session
from .tag_journal import file_fingerprint, finish, journal_path, kept_sessions, open_journal, score_column

__all__ = ["TagInterrupted", "TagReport", "journal_path", "score_column", "tag_files"]

log = logging.getLogger(__name__)


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


# ------------------------------------------------------------------------------------------
class TagInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM turned into KeyboardInterrupt) during :func:`tag_files`; ``report``
    says what the journal keeps (``report.sessions`` sessions, resumable by the same call)."""

    def __init__(self, report: TagReport, journal: Path):
        super().__init__("interrupted")
        self.report, self.journal = report, journal


class _OutputFailed(RuptureError):
    """Writing the journal failed (disk full...): the whole run stops, the journal is kept."""


def _load_model(model: Any, threads: int | None, backend: str) -> Any:
    if isinstance(model, (str, Path)):
        from .model import RuptureClassifier

        return RuptureClassifier.from_pretrained(model, threads=threads, backend=backend)
    return model


def tag_files(
    inputs: Iterable[str | Path],
    model: Any,
    out: str | Path,
    csv: str | Path | None = None,
    *,
    format: str | None = None,
    speakers: Any = None,
    strict: bool = False,
    batch_utterances: int = 512,
    resume: bool = True,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    batch_size: int = 1,
    backend: str = "torch",
) -> TagReport:
    """Tag every session of every input file; see the module docstring for outputs and resuming.

    ``model``: a RuptureClassifier, or a model directory (loaded with ``threads`` torch threads
    only after the options are checked and the output is locked). ``format``/``speakers``/
    ``strict``: passed to ``rupture_nlp.ingest.load_sessions``. ``batch_utterances``: utterances
    per prediction batch (memory bound). ``progress``: called with ``ProgressEvent("tag", done,
    total, unit="files", message="N sessions[, M failed]")`` (``done``: input files finished, never
    decreasing; sessions: written so far, resumed ones included) at the start, after each tagged
    session is safely in the journal and after each file; an exception it raises stops the run
    (KeyboardInterrupt: as Ctrl-C). Resume notices and skipped duplicate inputs are logged on
    ``rupture_nlp.tagging``.

    ``engine``: ``"local"`` (this process) or ``"ray"`` (:mod:`rupture_nlp.engines.ray_engine`:
    files read and segmented by Ray tasks, predictions by a pool of ``workers`` Ray actors with
    ``threads`` torch threads each (default 1), each loading the model directory once; results
    stream back in input order into the same journal, so outputs, failures and resuming are
    those of the local engine, and a run interrupted under one engine resumes under the other).
    ``address``: None starts Ray inside this process on this machine (``workers`` CPUs, default
    all); ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` joins a running cluster, whose
    nodes must see the model directory and the inputs at the same paths. ``batch_size``:
    prediction batches (of ``batch_utterances``) per Ray actor call. With ``engine="ray"``,
    ``model`` must be a model directory. ``backend``: how a model directory is run, ``"torch"``,
    ``"openvino"`` or ``"openvino-int8"`` (:mod:`rupture_nlp.model.backends`; a loaded ``model``
    keeps its own).

    Returns a :class:`TagReport`; bad files are in ``report.failed`` (any error while reading,
    segmenting or predicting one file is that file's failure; the others go on). Session ids
    must be unique across the output: a file whose session id an earlier file already used
    fails. When no file succeeds, existing outputs are left untouched and nothing is written.
    A second run on the same ``out`` fails at once (see :mod:`rupture_nlp.locking`). Ctrl-C
    raises :class:`TagInterrupted`; a write failure of the journal (disk full) raises
    RuptureError naming the output, keeping what was written.
    """
    from .ingest import load_sessions
    from .locking import output_lock
    from .readers import check_format
    from .readers.speakers import parse_speakers

    t0 = time.perf_counter()
    if engine not in ENGINES:
        raise RuptureError(f"unknown engine {engine!r} (choose one of: {', '.join(ENGINES)})")
    if engine == "local" and (address is not None or workers is not None):
        raise RuptureError("--address and --workers need --engine ray")
    if engine == "ray" and not isinstance(model, (str, Path)):
        raise RuptureError("the ray engine needs a model directory (its workers load the model themselves)")
    from .model.backends import BACKENDS

    if backend not in BACKENDS:
        raise RuptureError(f"unknown backend {backend!r} (choose one of: {', '.join(BACKENDS)})")
    if workers is not None and workers < 1 or batch_size < 1 or batch_utterances < 1:
        raise RuptureError("workers, batch sizes and batch utterances must be at least 1")
    format = check_format(format)
    parse_speakers(speakers)  # bad options: one error before any model or file is touched
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
    jpath = journal_path(out)
    with output_lock(out, csv_path, extra_temps=(jpath,)):
        if engine == "ray":
            from .engines.ray_engine import RayEngine

            with RayEngine(
                model,
                address=address,
                workers=workers,
                threads=threads,
                batch_size=batch_size,
                batch_utterances=batch_utterances,
                format=format,
                speakers=speakers,
                strict=strict,
                backend=backend,
            ) as ray_engine:
                model_version, label_ids = ray_engine.model_identity()
                run = _TagRun(paths, model_version, label_ids, out, csv_path, jpath, t0, resume, progress)
                return _tag_ray_locked(run, ray_engine)
        model = _load_model(model, threads, backend)
        run = _TagRun(paths, model.model_version, model.schema.label_ids, out, csv_path, jpath, t0, resume, progress)
        return _tag_locked(
            run,
            model,
            batch_utterances,
            lambda path: load_sessions(path, format=format, speakers=speakers, strict=strict),
        )


# ------------------------------------------------------------------------------------------
# what both engines share: the journal, resuming, duplicate ids, failures, progress, _finish
# ------------------------------------------------------------------------------------------
@dataclass
class _FileRun:
    """One input file being tagged. ``seen``: its session ids an earlier run's journal holds."""

    index: int
    path: Path
    fp: str
    seen: dict[str, None]
    ids: list[str] = field(default_factory=list)
    n_file: int = 0  # sessions read
    n_new: int = 0  # sessions tagged and journaled now
    n_old: int = 0  # sessions already in the journal
    u_new: int = 0


def _fingerprint(path: Path) -> tuple[str | None, str | None]:
    """``(fingerprint, None)`` or ``(None, one-line failure)`` for an input path."""
    try:
        if path.exists() and not path.is_file():
            raise OSError(0, "not a regular file (a folder, device or pipe)")
        return file_fingerprint(path), None
    except OSError as e:
        return None, f"{path}: cannot read: {e.strerror}"


class _TagRun:
    """One tagging run's bookkeeping, engine-independent: the journal (opened, resumed or started
    over), the report, progress events, session-id ownership across the output, failures, and
    at the end the atomic outputs (:func:`~rupture_nlp.tag_journal.finish`). An engine calls, for input files in order,
    :meth:`open_file`; then per session read :meth:`admit` (False: already journaled) and per
    prediction batch :meth:`write_sessions`; then :meth:`end_file` or :meth:`fail`. All inside
    ``with run.running():``, then :meth:`finish`."""

    def __init__(
        self,
        paths: list[Path],
        model_version: str,
        label_ids: Sequence[str],
        out: Path,
        csv_path: Path | None,
        jpath: Path,
        t0: float,
        resume: bool,
        progress: ProgressCallback | None,
    ):
        self.paths, self.label_ids, self.out, self.csv_path, self.jpath = paths, list(label_ids), out, csv_path, jpath
        self.t0, self.progress = t0, progress
        self.report = TagReport(out=out, csv=csv_path, model_version=model_version)
        try:
            self.jf, self.state = open_journal(jpath, model_version, resume)
        except OSError as e:
            raise write_error(e, jpath) from None
        self.wanted: list[str] = []
        self.owner: dict[str, Path] = {}  # session id -> input file, over the whole output

    def jwrite(self, lines: list[str]) -> None:
        try:
            self.jf.writelines(lines)
            self.jf.flush()
            os.fsync(self.jf.fileno())
        except OSError as e:
            raise _OutputFailed(write_error(e, self.jpath).message, self.jpath) from None

    def tick(self, files_done: int, sessions: int) -> None:
        if self.progress is not None:
            failed = len(self.report.failed)
            emit(
                self.progress,
                "tag",
                files_done,
                len(self.paths),
                unit="files",
                message=f"{sessions:,} session{'' if sessions == 1 else 's'}"
                + (f", {failed:,} failed" if failed else ""),
            )

    @contextlib.contextmanager
    def running(self) -> Iterator["_TagRun"]:
        """Closes the journal; Ctrl-C (KeyboardInterrupt) becomes :class:`TagInterrupted`."""
        try:
            yield self
            self.tick(len(self.paths), self.report.sessions)
        except KeyboardInterrupt:
            self.jf.close()
            self.report.seconds = time.perf_counter() - self.t0
            self.report.sessions = kept_sessions(self.jpath)  # what a rerun will resume, the current file's too
            raise TagInterrupted(self.report, self.jpath) from None
        finally:
            self.jf.close()

    def needs_tagging(self, fp: str | None) -> bool:
        """Whether a file of this fingerprint may have to be read (not unreadable, not done)."""
        return fp is not None and fp not in self.state.done

    def open_file(
        self, i: int, path: Path, fingerprint: tuple[str | None, str | None] | None = None
    ) -> _FileRun | None:
        """Start input ``i``: None when there is nothing to tag (unreadable: a failure; same content
        as an earlier input; done in the resumed journal), else its :class:`_FileRun`."""
        self.tick(i, self.report.sessions)  # the previous file is done (the start: none is)
        self.report.files += 1
        fp, failure = fingerprint or _fingerprint(path)
        if fp is None:
            self.report.failed.append((str(path), failure))
            return None
        if fp in self.wanted:
            log.warning("%s: same content as an earlier input, skipped", path)
            return None
        seen = self.state.partial.get(fp, {})
        clash = next((sid for sid in sorted(seen) if sid in self.owner), None)
        if fp in self.state.done and clash is None:
            self.wanted.append(fp)
            self.owner.update({sid: path for sid in seen})
            self.report.resumed_files += 1
            self.report.resumed_sessions += self.state.counts.get(fp, 0)
            self.report.sessions += self.state.counts.get(fp, 0)
            return None
        self.jwrite([json.dumps({"begin": fp, "path": str(path)}) + "\n"])
        return _FileRun(i, path, fp, seen)

    def admit(self, fr: _FileRun, sid: str) -> bool:
        """A session read from the file: False when the journal has it already; RuptureError when
        an earlier file (or this one) already used its id."""
        fr.n_file += 1
        if sid in self.owner or sid in fr.ids:
            other = self.owner.get(sid, fr.path)
            raise RuptureError(
                f"session id {sid!r} is already used by {other}; rename one of "
                "the files (session ids come from file names)",
                fr.path,
            )
        fr.ids.append(sid)
        if sid in fr.seen:
            fr.n_old += 1
            return False
        return True

    def write_sessions(self, fr: _FileRun, sessions: Sequence[dict]) -> None:
        """Tagged sessions (dicts) of one prediction batch into the journal, then one tick each."""
        if not sessions:
            return
        self.jwrite([json.dumps({"fp": fr.fp, "session": s}, ensure_ascii=False) + "\n" for s in sessions])
        for s in sessions:
            fr.n_new += 1
            fr.u_new += len(s["utterances"])
            self.tick(fr.index, self.report.sessions + fr.n_old + fr.n_new)

    def fail(self, fr: _FileRun, message: str) -> None:
        """The file failed (``message``: its one line): nothing of it will be kept."""
        self.jwrite([json.dumps({"failed": fr.fp}) + "\n"])
        self.report.failed.append((str(fr.path), message))

    def end_file(self, fr: _FileRun) -> None:
        self.jwrite([json.dumps({"end": fr.fp, "n": fr.n_file}) + "\n"])
        self.report.resumed_sessions += fr.n_old
        self.report.sessions += fr.n_new + fr.n_old
        self.report.utterances += fr.u_new
        self.wanted.append(fr.fp)
        self.owner.update({sid: fr.path for sid in fr.ids})

    def finish(self) -> TagReport:
        if self.wanted:
            finish(self.jpath, self.out, self.csv_path, self.wanted, self.label_ids)
            self.jpath.unlink(missing_ok=True)
        elif not any(self.state.counts.values()):
            self.jpath.unlink(missing_ok=True)  # nothing of this or an earlier run to keep
        self.report.seconds = time.perf_counter() - self.t0
        return self.report


# ------------------------------------------------------------------------------------------
# engines
# ------------------------------------------------------------------------------------------
def _tag_locked(
    run: _TagRun, model: Any, batch_utterances: int, read: Callable[[Path], Iterable[Session]]
) -> TagReport:
    """The local engine: read, predict in batches of ``batch_utterances`` and journal, file by file."""
    with run.running():
        for i, path in enumerate(run.paths):
            fr = run.open_file(i, path)
            if fr is None:
                continue
            buf: list[Session] = []
            n_buf = 0

            def flush() -> None:
                nonlocal buf, n_buf
                if not buf:
                    return
                P = model.predict_proba(buf)
                apply_predictions(buf, P, model.schema, model.thresholds)
                run.write_sessions(fr, [s.to_dict() for s in buf])
                buf, n_buf = [], 0
                release_freed_memory()

            try:
                for s in read(path):
                    if not run.admit(fr, s.session_id):
                        continue
                    buf.append(s)
                    n_buf += len(s.utterances)
                    if n_buf >= batch_utterances:
                        flush()
                flush()
            except (_OutputFailed, KeyboardInterrupt):
                raise
            except Exception as e:  # noqa: BLE001 - one bad file must not stop the batch
                buf, n_buf = [], 0
                run.fail(fr, failure_line(e, path))
                continue
            run.end_file(fr)
    return run.finish()


def _tag_ray_locked(run: _TagRun, engine: Any) -> TagReport:
    """The Ray engine: the files that may need tagging go to the cluster at once; its results come
    back in input order (:meth:`RayEngine.results`: per file, prediction batches as local mode
    makes them, then the file's end) and are journaled here exactly as the local engine does."""
    prints = [_fingerprint(p) for p in run.paths]
    jobs = [
        (i, str(path), list(run.state.partial.get(fp, {})))
        for i, (path, (fp, _)) in enumerate(zip(run.paths, prints))
        if run.needs_tagging(fp)
    ]
    dispatched = {i for i, _, _ in jobs}
    with run.running():
        results = engine.results(jobs)
        try:
            for i, path in enumerate(run.paths):
                fr = run.open_file(i, path, prints[i])
                if i not in dispatched:
                    if fr is not None:  # done in the journal, but an earlier file now has one of its ids
                        try:
                            for sid in fr.seen:
                                run.admit(fr, sid)
                        except RuptureError as e:
                            run.fail(fr, failure_line(e, path))
                            continue
                        run.end_file(fr)  # (not reached: open_file resumes a file without a clash)
                    continue
                error: str | None = None
                for kind, payload in results.of_file(i):
                    if fr is None or error is not None:
                        continue  # drained: nothing to tag, or the file already failed
                    if kind == "end":
                        error = payload or None
                    elif kind == "error":
                        error = payload
                    else:
                        tagged = []
                        try:
                            for sid, session in payload:
                                if run.admit(fr, sid):
                                    tagged.append(session)
                        except RuptureError as e:
                            error = failure_line(e, path)
                            continue
                        run.write_sessions(fr, tagged)
                if fr is None:
                    continue
                if error is not None:
                    run.fail(fr, error)
                else:
                    run.end_file(fr)
        finally:
            results.close()
    return run.finish()
