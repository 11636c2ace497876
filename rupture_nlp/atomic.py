"""Atomic file output: a file appears complete under its final name, or not at all.

Guarantees of :func:`atomic_write` (listed in ``docs/reliability.md``):

* the content goes to a temporary file beside the target (``.NAME.XXXX.tmp``), is fsynced and
  renamed over the target only when the ``with`` block ends without an exception;
* a symlink is written through: the file it points to is replaced, the link stays a link;
* an existing target that is not a regular file (a device such as ``/dev/full``, a folder, a
  FIFO) is refused with a :class:`~rupture_nlp.errors.RuptureError` before anything is written;
* a new file gets mode 0600 (transcripts are clinical data); a replaced file keeps its mode;
* a full disk or another write failure is a one-line error naming the output, not the input.

:func:`atomic_dir` does the same for a whole directory (a saved baseline).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator

from .errors import RuptureError

NEW_FILE_MODE = 0o600
# errors of the output side: a write that fails with one of these is the output's failure
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def output_target(path: str | Path) -> Path:
    """The file an output named ``path`` really replaces: a symlink's target (written through),
    else ``path``. Raises RuptureError when that exists and is not a regular file."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    try:
        st = path.stat()
    except FileNotFoundError:
        return path
    except OSError as e:
        raise RuptureError(f"cannot use this output: {e.strerror}", path) from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise RuptureError(f"output exists and is {kind}; refusing to replace it", path)
    return path


def write_error(err: OSError, path: str | Path) -> RuptureError:
    """A one-line error for a failed write of ``path`` (disk full named as such)."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return RuptureError("no space left on the device while writing this output", path)
    return RuptureError(f"cannot write this output: {err.strerror or type(err).__name__}", path)


def stale_temp_files(path: str | Path) -> list[Path]:
    """Temporary files a killed :func:`atomic_write` of ``path`` may have left behind."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success fsync and rename it over ``path``.

    On any exception (including KeyboardInterrupt) the temporary file is removed and
    ``path`` is left as it was. See the module docstring for symlinks, modes and refusals.
    """
    path = output_target(path)
    old_mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else NEW_FILE_MODE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise write_error(e, path) from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding, newline=None if "b" in mode else "") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), old_mode)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and (e.errno in WRITE_ERRNOS or e.filename in (tmp, str(path))):
            raise write_error(e, path) from None
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it to ``target`` when done.

    On any exception the temporary directory is removed and ``target`` is left as it was;
    an existing ``target`` is replaced only after the new one is complete.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "x")
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old / "x", target)  # put the previous version back
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
