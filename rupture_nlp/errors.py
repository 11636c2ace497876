"""One exception type for every problem a user can fix (bad input, bad settings).

The CLI prints such an error as one line (``error: FILE:LINE: message``), never a traceback.
Messages name the file and line and say what is wrong; they never quote transcript text.
"""

from __future__ import annotations

import os
from pathlib import Path


class RuptureError(Exception):
    """A user-facing error: bad input file, bad schema, bad model directory, unreachable server..."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return f"{where}{self.message}"


def file_failure(err: Exception, path: str | Path, doing: str) -> "RuptureError":
    """``err``, raised while ``doing`` something with one input file, as that file's one-line
    failure: a RuptureError stays as it is; any other error becomes ``PATH: could not be DOING
    (TypeName)`` — no message text, which may quote the transcript — unless ``RUPTURE_DEBUG`` is
    set, in which case it is re-raised for its traceback."""
    if isinstance(err, RuptureError):
        return err
    if os.environ.get("RUPTURE_DEBUG"):
        raise err
    return RuptureError(f"could not be {doing} ({type(err).__name__}); rerun with RUPTURE_DEBUG=1 for details", path)
