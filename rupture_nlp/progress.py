"""One progress protocol for long library calls (training, tagging, Label Studio pushes).

Library code never draws progress itself and never imports rich: a long call takes an optional
``progress`` callback and calls it with :class:`ProgressEvent` values; messages for people go to
``logging.getLogger(__name__)``. The CLI turns events into a rich bar on a terminal, or into a plain
line at most every 30 seconds when stdout/stderr is a log file (``rupture_nlp/cli/app.py``).

    def tag_files(..., progress: ProgressCallback | None = None):
        emit(progress, "tag", done=i, total=n, unit="files")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ProgressEvent:
    """``stage``: what is running (``"train"``, ``"tag"``, ``"push"`` ...); ``done`` of ``total``
    ``unit`` (``total`` None when unknown); ``message``: a short status without transcript text."""

    stage: str
    done: int
    total: int | None = None
    unit: str = "items"
    message: str | None = None


ProgressCallback = Callable[[ProgressEvent], None]


def emit(
    progress: ProgressCallback | None,
    stage: str,
    done: int,
    total: int | None = None,
    *,
    unit: str = "items",
    message: str | None = None,
) -> None:
    """Call ``progress`` (if any) with one event."""
    if progress is not None:
        progress(ProgressEvent(stage, done, total, unit, message))
