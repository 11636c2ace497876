"""One exception type for every problem a user can fix (bad input, bad settings).

The CLI prints such an error as one line (``error: FILE:LINE: message``), never a traceback.
Messages name the file and line and say what is wrong; they never quote transcript text.
"""
from __future__ import annotations

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
