"""One run per output: an exclusive lock beside each output file or folder.

``with output_lock(out): ...`` takes a non-blocking exclusive lock on ``OUT.lock`` (through
``filelock``; the file holds the owner's pid). A second run on the same output fails at once
with a one-line :class:`~rupture_nlp.errors.RuptureError` naming the process that holds it.
Once the lock is held, temporary files a killed run left beside the output are removed. The
``.lock`` file is removed before the lock is released (filelock >= 4.3 notices a lock taken on
a removed file and retries); a killed run leaves an unlocked ``.lock`` file that the next run
simply takes over.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import filelock

from .atomic import output_target, stale_temp_files
from .errors import RuptureError


def lock_path(out: str | Path) -> Path:
    """The lock file of an output: ``OUT.lock`` beside it (a symlinked output: beside its target)."""
    out = Path(out)
    real = out.resolve() if out.is_symlink() else out
    return real.with_name(real.name + ".lock")


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


@contextlib.contextmanager
def output_lock(*outputs: str | Path | None, extra_temps: tuple[str | Path, ...] = ()) -> Iterator[None]:
    """Hold the locks of ``outputs`` (``None`` entries are skipped) for the ``with`` block.

    Each output is first checked with :func:`rupture_nlp.atomic.output_target` (a device or a
    folder where a file is expected is refused). After locking, stale ``.NAME.*.tmp`` files of
    every output and of ``extra_temps`` (e.g. a journal) are removed.
    """
    with contextlib.ExitStack() as stack:
        for out in outputs:
            if out is None:
                continue
            out = Path(out)
            if not out.is_dir():
                output_target(out)
            lp = lock_path(out)
            try:
                lp.parent.mkdir(parents=True, exist_ok=True)
                lock = filelock.FileLock(str(lp), timeout=0, mode=0o600)
                lock.acquire()
            except filelock.Timeout:
                raise RuptureError(
                    f"{_holder(lp)} is already writing this output; wait for it to finish or choose another output", out
                ) from None
            except OSError as e:
                raise RuptureError(f"cannot lock this output ({lp.name}): {e.strerror}", out) from None
            stack.callback(lock.release)
            lp.write_text(f"{os.getpid()}\n", encoding="ascii")
            stack.callback(_remove, lp)
            for temp in stale_temp_files(out) + [t for e in extra_temps for t in stale_temp_files(e)]:
                with contextlib.suppress(OSError):
                    temp.unlink()
        yield


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
