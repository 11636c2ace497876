"""Segments and rupture-repair episodes of one session.

Terms (3RS): *rupture markers* are labels of the non-repair categories (withdrawal,
confrontation); *repair strategies* are labels of the ``repair`` category.

Episode rule (``window`` = N utterances):

1. An episode starts at the first utterance carrying a rupture marker that is not yet part of
   an episode. Further marked utterances join it while each comes within ``window`` utterances of
   the previous one and no repair has happened yet.
2. Its repair is the first repair-labelled utterance within ``window`` utterances after the last
   marker. None → outcome ``no_repair``.
3. The repair goes on while more repair utterances follow within ``window`` of each other with
   no new marker between them. If a rupture marker occurs within ``window`` utterances after the
   repair began (between or after its repair utterances) the outcome is ``unresolved`` (the markers
   continued); otherwise ``resolved``. Such a marker starts the next episode, so episodes can
   overlap: the follow-up window of one holds the start of the next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..records import Session, Utterance
from ..schema import LabelSchema

REPAIR = "repair"


def marker_kinds(u: Utterance, schema: LabelSchema, repair_category: str = REPAIR) -> tuple[list[str], list[str]]:
    """(rupture marker labels, repair labels) of one utterance; labels outside the schema are ignored."""
    known = set(schema.label_ids)
    labs = [l for l in (u.labels or []) if l in known]
    return (
        [l for l in labs if schema.category_of(l) != repair_category],
        [l for l in labs if schema.category_of(l) == repair_category],
    )


def has_times(session: Session) -> bool:
    return any(u.start is not None for u in session.utterances)


def segment_index(session: Session, segment_minutes: float = 5.0, segment_utterances: int = 50) -> list[int]:
    """Segment number (0-based) of every utterance.

    With times: ``floor(start / (segment_minutes * 60))`` — an utterance starting exactly on a
    boundary (e.g. 300.0 s) opens the next segment; an utterance without a start takes the segment
    of the one before it. Without any times: consecutive blocks of ``segment_utterances`` utterances.
    """
    if segment_minutes <= 0 or segment_utterances <= 0:
        raise ValueError("segment length must be positive")
    if not has_times(session):
        return [i // segment_utterances for i in range(len(session.utterances))]
    width = segment_minutes * 60.0
    out, last = [], 0
    for u in session.utterances:
        if u.start is not None:
            last = int(math.floor(u.start / width + 1e-9))
        out.append(last)
    return out


@dataclass
class Episode:
    """One rupture episode; indexes are positions in ``session.utterances``."""

    markers: list[int] = field(default_factory=list)
    repairs: list[int] = field(default_factory=list)
    outcome: str = "no_repair"  # resolved | unresolved | no_repair

    @property
    def first(self) -> int:
        return self.markers[0]

    @property
    def last(self) -> int:
        return self.markers[-1]

    @property
    def repaired(self) -> bool:
        return bool(self.repairs)


def find_episodes(
    session: Session, schema: LabelSchema, window: int = 5, repair_category: str = REPAIR
) -> list[Episode]:
    """Rupture episodes of a session in order of their first marker (see module docstring)."""
    if window < 1:
        raise ValueError("repair window must be at least 1 utterance")
    kinds = [marker_kinds(u, schema, repair_category) for u in session.utterances]
    is_marker = [bool(m) for m, _ in kinds]
    is_repair = [bool(r) for _, r in kinds]
    n = len(kinds)
    episodes: list[Episode] = []
    i = 0
    while i < n:
        if not is_marker[i]:
            i += 1
            continue
        ep = Episode(markers=[i])
        j = i + 1
        # 1. the run of markers, until a repair or a gap longer than the window
        while j < n and j - ep.last <= window and not is_repair[j]:
            if is_marker[j]:
                ep.markers.append(j)
            j += 1
        # 2. the first repair within the window after the last marker
        rep = next((k for k in range(ep.last + 1, min(n, ep.last + window + 1)) if is_repair[k]), None)
        if rep is None:
            ep.outcome = "no_repair"
            episodes.append(ep)
            i = next((k for k in range(ep.last + 1, n) if is_marker[k]), n)
            continue
        ep.repairs.append(rep)
        # 3. the repair sequence and the follow-up window
        nxt_marker = None
        k = rep + 1
        while k < n and k - ep.repairs[-1] <= window:
            if is_marker[k]:
                nxt_marker = k
                break
            if is_repair[k]:
                ep.repairs.append(k)
            k += 1
        ep.outcome = "unresolved" if nxt_marker is not None else "resolved"
        episodes.append(ep)
        i = nxt_marker if nxt_marker is not None else next((m for m in range(ep.repairs[-1] + 1, n) if is_marker[m]), n)
    return episodes
