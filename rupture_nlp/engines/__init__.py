"""Where ``rupture tag`` runs: ``local`` (this process, :mod:`rupture_nlp.tagging`) or ``ray``
(:mod:`rupture_nlp.engines.ray_engine`, a Ray cluster, embedded or remote). Both feed the same
journal (:mod:`rupture_nlp.tagging`), so their outputs, failures and resuming are the same.

Importing this package is cheap: Ray is imported only when the ray engine runs.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import file_failure

#: The engine names ``tag_files(engine=...)`` and ``rupture tag --engine`` accept.
ENGINES = ("local", "ray")


def failure_line(err: Exception, path: str | Path) -> str:
    """The one line that reports input file ``path`` as failed because of ``err`` (raised while
    reading, segmenting or tagging it): the file (and line) and what is wrong, no transcript text."""
    e = file_failure(err, path, "tagged")
    return str(e) if e.path else f"{path}: {e}"
