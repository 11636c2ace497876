"""Times of utterances from the times a transcript gives, by word position.

Every piece of a session (line, row or cue) occupies a stretch of *word positions* (words
counted from the start of the session). The times the source gives are anchors on that axis:
a piece's start at its first word position, its end just after its last word. Any other
position gets its time by linear interpolation between the neighbouring anchors, that is in
proportion to the words spoken; before the first or after the last anchor a nominal speaking
rate extends the line. At a position where one piece ends and the next begins two anchors
meet (the end of one, the start of the other, with the pause between them): an utterance
*starting* there takes the start anchor, one *ending* there the end anchor, so utterances
that coincide with cues keep the cue times exactly.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right


class Timeline:
    """Piecewise-linear map from word position to seconds.

    Anchors are given as three parallel lists in order of position (ties in spoken order):
    ``pos`` (word positions), ``time`` (seconds) and ``is_start`` (True for a piece start,
    False for a piece end). ``words_per_second`` is the nominal rate used outside the
    anchored stretch.
    """

    def __init__(self, pos: list[float], time: list[float], is_start: list[bool], words_per_second: float = 2.5):
        if not len(pos) == len(time) == len(is_start):
            raise ValueError("pos, time and is_start must have the same length")
        self.pos, self.time, self.is_start = pos, time, is_start
        self.rate = words_per_second

    def __bool__(self) -> bool:
        return bool(self.pos)

    def at(self, pos: float, side: str) -> float:
        """Seconds at word position ``pos``; ``side`` is ``"start"`` or ``"end"`` (which
        anchor wins where two meet, see the module docstring)."""
        P, T = self.pos, self.time
        lo = bisect_left(P, pos)
        n = len(P)
        if lo < n and P[lo] == pos:  # anchors exactly here: lo..hi-1
            hi = bisect_right(P, pos, lo)
            flags = self.is_start
            if side == "start":
                for i in range(hi - 1, lo - 1, -1):
                    if flags[i]:
                        return T[i]
                return T[hi - 1]
            for i in range(lo, hi):
                if not flags[i]:
                    return T[i]
            return T[lo]
        if lo == 0:
            return max(0.0, T[0] - (P[0] - pos) / self.rate)
        if lo == n:
            return T[-1] + (pos - P[-1]) / self.rate
        p0, t0, p1, t1 = P[lo - 1], T[lo - 1], P[lo], T[lo]
        return max(t0, t0 + (t1 - t0) * (pos - p0) / (p1 - p0))
