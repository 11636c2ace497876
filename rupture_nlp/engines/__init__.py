"""Where ``rupture tag`` runs: ``local`` (this process, :mod:`rupture_nlp.tagging`) or ``ray``
(:mod:`rupture_nlp.engines.ray_engine`, a Ray cluster, embedded or remote). Both feed the same
journal (:mod:`rupture_nlp.tag_journal`, through ``tagging._TagRun``), so their outputs, failures and resuming are the same.

Importing this package is cheap: Ray is imported only when the ray engine runs.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any

from ..errors import file_failure

#: The engine names ``tag_files(engine=...)`` and ``rupture tag --engine`` accept.
ENGINES = ("local", "ray")


def failure_line(err: Exception, path: str | Path) -> str:
    """The one line that reports input file ``path`` as failed because of ``err`` (raised while
    reading, segmenting or tagging it): the file (and line) and what is wrong, no transcript text."""
    e = file_failure(err, path, "tagged")
    return str(e) if e.path else f"{path}: {e}"


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def release_freed_memory() -> None:
    """Hand memory freed by torch back to the operating system (glibc only).

    glibc keeps freed blocks in per-thread arenas, and every new batch shape leaves some behind,
    so without this the resident size of a long ``tag`` run creeps up batch after batch.
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
