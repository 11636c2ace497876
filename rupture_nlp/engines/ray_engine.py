"""``rupture tag --engine ray``: the tagging work on a Ray cluster (Ray Data), the journal on the driver.

The pipeline, as one streaming Ray Dataset:

1. the input files still to tag (one row each: its position, its path as given, the session ids
   the journal already holds) - ``ray.data.from_items``;
2. read + segment, one Ray task per file (``map_batches`` with a generator, no CPU reserved so
   that the prediction actors may take every core): the project's own readers
   (:func:`rupture_nlp.ingest.load_sessions`). Each file gives rows of prediction batches cut
   exactly as the local engine cuts them (the sessions of one file until ``batch_utterances``
   new utterances), then one ``end`` row (with the file's one-line failure, if any);
3. prediction by a fixed pool of ``workers`` Ray actors (``ActorPoolStrategy``), each loading the
   model directory once with ``threads`` torch threads: ``model.predict_proba`` then
   :func:`rupture_nlp.decision.apply_predictions` per batch, as the local engine does;
4. the driver iterates the results (``iter_batches``, streaming, ``preserve_order``) and hands
   them, file by file in input order, to the journal of :mod:`rupture_nlp.tagging`. A small
   reorder buffer keyed by (file, row) makes the order independent of how Ray delivers blocks;
   it holds at most what Ray has in flight.

Sessions travel between stages as ``Session.to_dict()`` dicts in JSON text (Arrow columns need one
type per column; session metadata varies). Ray is imported only here, and this module only when
the ray engine runs. Relative paths are resolved on the workers against the driver's working
directory when the worker sees it (same machine, shared file system), so messages name the files
as the user gave them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import RuptureError
from . import failure_line, release_freed_memory

log = logging.getLogger(__name__)

#: bytes of object store for an embedded Ray (the rows are small; results stream to the driver)
EMBEDDED_OBJECT_STORE = 512 * 1024**2
#: Ray's loggers and the level they are held at (only warnings reach rupture's stderr; the notice
#: that progress bars are off - rupture draws its own - not even that)
_QUIET_LOGGERS = {
    "ray": logging.WARNING,
    "ray.data": logging.WARNING,
    "ray.data._internal.progress": logging.ERROR,
    # the notice that a new local instance has token authentication (Ray's default)
    "ray._private.authentication.authentication_token_setup": logging.ERROR,
}
#: Environment Ray reads at start-up, set unless the user set it: no C++ log lines below FATAL
#: on the driver's stderr (Ray Data's actors always get their arguments through the object
#: store, which its core worker reports at ERROR level on every run; real failures still
#: arrive as Python exceptions). Ray then says once that it set this level (one line).
_RAY_ENV = {"RAY_BACKEND_LOG_LEVEL": "fatal", "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}


def _quiet() -> None:
    for name, level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    # Ray Data's advice to feed more blocks when a run has fewer files than workers
    warnings.filterwarnings("ignore", message=r"The (maximum|minimum) number of concurrent", category=UserWarning)


@contextlib.contextmanager
def _in_dir(cwd: str) -> Iterator[None]:
    """Run with the driver's working directory when this node has it (relative input paths)."""
    here = os.getcwd()
    moved = cwd != here and os.path.isdir(cwd)
    if moved:
        os.chdir(cwd)
    try:
        yield
    finally:
        if moved:
            os.chdir(here)


def _model_identity(cwd: str, model_dir: str) -> tuple[str, list[str]] | tuple[None, str]:
    """On a worker: (model_version, label ids) of the model directory, or (None, one-line error)."""
    from ..model import RuptureClassifier

    try:
        with _in_dir(cwd):
            m = RuptureClassifier.from_pretrained(model_dir, threads=1)
    except RuptureError as e:
        return None, str(e)
    return m.model_version, list(m.schema.label_ids)


def _read_files(
    batch: Any, *, cwd: str, batch_utterances: int, format: str | None, speakers: Any, strict: bool
) -> Iterator[Any]:
    """Ray Data UDF (a task per call): the files of ``batch`` as rows of prediction batches, then
    an ``end`` row each. Never raises for a bad file: its failure goes into the ``end`` row."""
    import pyarrow as pa
    from ..ingest import load_sessions

    def rows(idx: int, name: str, kinds: list[str], data: list[str], seq0: int) -> Any:
        n = len(kinds)
        return pa.table(
            {
                "idx": pa.array([idx] * n, pa.int64()),
                "seq": pa.array(range(seq0, seq0 + n), pa.int64()),
                "name": pa.array([name] * n, pa.large_string()),
                "kind": pa.array(kinds, pa.string()),
                "data": pa.array(data, pa.large_string()),
            }
        )

    for job in batch.to_pylist():
        idx, name, skip = job["idx"], job["path"], set(json.loads(job["skip"]))
        seq = 0
        entries: list[list[Any]] = []
        n_new = 0
        try:
            with _in_dir(cwd):
                for s in load_sessions(name, format=format, speakers=speakers, strict=strict):
                    if s.session_id in skip:
                        entries.append([s.session_id, None])
                        continue
                    entries.append([s.session_id, s.to_dict()])
                    n_new += len(s.utterances)
                    if n_new >= batch_utterances:
                        yield rows(idx, name, ["batch"], [json.dumps(entries)], seq)
                        seq, entries, n_new = seq + 1, [], 0
            error = ""
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the batch
            entries, error = [], failure_line(e, name)
        if entries:
            yield rows(idx, name, ["batch"], [json.dumps(entries)], seq)
            seq += 1
        yield rows(idx, name, ["end"], [error], seq)


class _Predictor:
    """Ray Data UDF class: one per actor, the model loaded once; tags the ``batch`` rows."""

    def __init__(self, cwd: str, model_dir: str, threads: int, backend: str = "torch"):
        from ..model import RuptureClassifier

        with _in_dir(cwd):
            self.model = RuptureClassifier.from_pretrained(model_dir, threads=threads, backend=backend)

    def __call__(self, table: Any) -> Any:
        import pyarrow as pa
        from ..decision import apply_predictions
        from ..records import Session

        kinds, data = table.column("kind").to_pylist(), table.column("data").to_pylist()
        names = table.column("name").to_pylist()
        for r, kind in enumerate(kinds):
            if kind != "batch":
                continue
            entries = json.loads(data[r])
            sessions = [Session.from_dict(d) for _, d in entries if d is not None]
            try:
                P = self.model.predict_proba(sessions)
                apply_predictions(sessions, P, self.model.schema, self.model.thresholds)
            except Exception as e:  # noqa: BLE001 - that file's failure, not the run's
                kinds[r], data[r] = "error", failure_line(e, names[r])
                continue
            tagged = iter(sessions)
            data[r] = json.dumps([[sid, None if d is None else next(tagged).to_dict()] for sid, d in entries])
        release_freed_memory()
        return table.set_column(table.schema.get_field_index("kind"), "kind", pa.array(kinds, pa.string())).set_column(
            table.schema.get_field_index("data"), "data", pa.array(data, pa.large_string())
        )


class Results:
    """The results of :meth:`RayEngine.results`, pulled by the driver file by file in input order."""

    def __init__(self, make_iter: Any, order: Sequence[int]):
        self._make_iter = make_iter
        self._order = list(order)
        self._pos = 0
        self._buffer: dict[tuple[int, int], dict] = {}
        self._it: Iterator[dict] | None = None
        self.max_buffered = 0

    def _rows(self) -> Iterator[dict]:
        for table in self._make_iter():
            yield from table.to_pylist()

    def _get(self, key: tuple[int, int]) -> dict:
        if key in self._buffer:
            return self._buffer.pop(key)
        if self._it is None:
            self._it = self._rows()
        try:
            for row in self._it:
                got = (row["idx"], row["seq"])
                if got == key:
                    return row
                self._buffer[got] = row  # Ray delivered out of order: keep until its turn
                self.max_buffered = max(self.max_buffered, len(self._buffer))
        except RuptureError:
            raise
        except Exception as e:  # noqa: BLE001 - a cluster failure: one line, the journal keeps the work
            raise RuptureError(
                f"the Ray run failed ({type(e).__name__}); what was tagged is kept in the "
                "journal, rerun the same command to resume"
            ) from None
        raise RuptureError("the Ray run ended before every file was tagged; rerun the same command to resume")

    def of_file(self, i: int) -> Iterator[tuple[str, Any]]:
        """The results of input file ``i`` (the next one sent): ``("batch", [(session id, tagged
        session dict or None when the journal has it)...])`` per prediction batch, ``("error",
        line)`` for a batch that failed, and last ``("end", line or "")``."""
        if self._pos >= len(self._order) or self._order[self._pos] != i:
            raise ValueError(f"results of file {i} asked out of order")
        seq = 0
        while True:
            row = self._get((i, seq))
            kind = row["kind"]
            if kind == "batch":
                yield kind, [(sid, d) for sid, d in json.loads(row["data"])]
            else:
                if kind == "end":
                    self._pos += 1
                yield kind, row["data"]
                if kind == "end":
                    return
            seq += 1

    def close(self) -> None:
        """Stop the dataset's execution (an early end: Ctrl-C, a write error)."""
        if self._it is not None:
            self._it.close()
            self._it = None
        self._buffer.clear()


def _check_reachable(address: str, seconds: float = 10.0) -> None:
    """A one-line error at once for a cluster address nothing listens on (Ray itself would retry
    for minutes). ``auto`` and addresses without a port are left to Ray."""
    import socket

    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise RuptureError(
            f"cannot reach the Ray cluster at {address} ({reason}); is its head running "
            "(ray start --head) and is the port its GCS port (or the Ray Client port for ray://)?"
        ) from None


class RayEngine:
    """A Ray connection for one tagging run (a context manager).

    ``address`` None starts Ray inside this process (``ray.init`` with ``workers * threads`` CPUs,
    default all of them, no dashboard, worker logs not forwarded) and shuts it down at the end;
    else it connects to that cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) and disconnects
    at the end, which also ends this run's tasks and actors there. If Ray is already initialised
    in this process (a caller's own ``ray.init``), that connection is used and left open.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        address: str | None = None,
        workers: int | None = None,
        threads: int | None = None,
        batch_size: int = 1,
        batch_utterances: int = 512,
        format: str | None = None,
        speakers: Any = None,
        strict: bool = False,
        backend: str = "torch",
    ):
        self.model_dir, self.address, self.workers = str(model_dir), address, workers
        self.backend = backend
        self.threads = int(threads or 1)
        self.batch_size, self.batch_utterances = int(batch_size), int(batch_utterances)
        self.read_options = {"format": format, "speakers": speakers, "strict": strict}
        self.cwd = os.getcwd()
        self._owned = False
        self._results: Results | None = None

    # -- connection ---------------------------------------------------------------------------
    def __enter__(self) -> "RayEngine":
        for k, v in _RAY_ENV.items():
            os.environ.setdefault(k, v)
        try:
            import ray
        except ImportError:
            raise RuptureError("the ray engine needs Ray: pip install 'ray[data]'") from None
        _quiet()
        if not ray.is_initialized():
            common = {"log_to_driver": False, "logging_level": logging.WARNING}
            self._owned = True
            try:
                if self.address is None:
                    cpus = (self.workers or max(1, (os.cpu_count() or 1) // self.threads)) * self.threads
                    ray.init(
                        num_cpus=cpus, object_store_memory=EMBEDDED_OBJECT_STORE, include_dashboard=False, **common
                    )
                else:
                    _check_reachable(self.address)
                    ray.init(address=self.address, **common)
            except RuptureError:
                self._owned = False
                raise
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
                ray.shutdown()
                self._owned = False
                where = "start Ray on this machine" if self.address is None else f"connect to Ray at {self.address}"
                raise RuptureError(f"could not {where} ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
            except BaseException:  # Ctrl-C while Ray starts: stop what started
                self.__exit__()
                raise
        try:
            if self.workers is None:
                cpus = int(ray.cluster_resources().get("CPU", 1))
                self.workers = max(1, cpus // self.threads)
        except BaseException:
            self.__exit__()
            raise
        _quiet()  # ray.init configures its loggers again
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._results is not None:
            self._results.close()
        if self._owned:
            import ray

            ray.shutdown()
            self._owned = False

    # -- work -----------------------------------------------------------------------------------
    def model_identity(self) -> tuple[str, list[str]]:
        """(model_version, label ids), from the model directory as a worker sees it."""
        import ray

        task = ray.remote(num_cpus=0, max_calls=1)(_model_identity)
        version, labels = ray.get(task.remote(self.cwd, self.model_dir))
        if version is None:
            raise RuptureError(labels)
        return version, labels

    def dataset(self, jobs: Sequence[tuple[int, str, list[str]]]) -> Any:
        """The Ray Dataset of the run: ``jobs`` are (input position, path as given, session ids
        the journal holds) of the files to tag, in input order."""
        import ray
        import ray.data

        _quiet()  # importing ray.data configures its loggers again
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.verbose_stats_logs = False
        items = [{"idx": i, "path": p, "skip": json.dumps(skip)} for i, p, skip in jobs]
        ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 2000)))
        ds = ds.map_batches(
            _read_files,
            batch_size=1,
            batch_format="pyarrow",
            num_cpus=0,
            compute=ray.data.TaskPoolStrategy(size=max(1, min(len(items), 2 * self.workers))),
            fn_kwargs={"cwd": self.cwd, "batch_utterances": self.batch_utterances, **self.read_options},
        )
        return ds.map_batches(
            _Predictor,
            batch_size=self.batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=self.threads,
            fn_constructor_kwargs={
                "cwd": self.cwd,
                "model_dir": self.model_dir,
                "threads": self.threads,
                "backend": self.backend,
            },
        )

    def results(self, jobs: Sequence[tuple[int, str, list[str]]]) -> Results:
        """The streamed results of ``jobs`` (see :meth:`dataset`); nothing runs until they are read."""
        if not jobs:
            self._results = Results(lambda: iter(()), [])
            return self._results
        ds = self.dataset(jobs)
        self._results = Results(
            lambda: ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1),
            [i for i, _, _ in jobs],
        )
        return self._results
