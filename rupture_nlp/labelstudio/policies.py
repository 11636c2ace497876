"""Resolve several annotations of the same task into one label set per utterance.

``latest``: the most recently updated annotation (ties: the higher annotation id);
``majority``: a label stays on an utterance when more than half of the annotations gave it.
(Keeping one annotator's annotations only is a filter applied before, in :mod:`.pull`.)
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from ..errors import RuptureError
from .parse import Annotation

POLICIES = ("latest", "majority")


def check_policy(policy: str) -> None:
    """RuptureError unless ``policy`` is one of :data:`POLICIES`."""
    if policy not in POLICIES:
        raise RuptureError(f"--policy must be one of {', '.join(POLICIES)}, not '{policy}'")


def _time(s: str) -> datetime:
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min


def resolve(annotations: list[Annotation], policy: str) -> dict[str, set[str]]:
    """One label set per utterance id from several annotations of the same task."""
    if not annotations:
        return {}
    if policy == "latest":
        return max(annotations, key=lambda a: (_time(a.updated_at), a.id)).labels
    if policy == "majority":
        n = len(annotations)
        out: dict[str, set[str]] = {}
        for uid in annotations[0].labels:
            counts: dict[str, int] = defaultdict(int)
            for a in annotations:
                for l in a.labels.get(uid, ()):
                    counts[l] += 1
            out[uid] = {l for l, c in counts.items() if c * 2 > n}
        return out
    check_policy(policy)
    raise AssertionError("unreachable")  # pragma: no cover
