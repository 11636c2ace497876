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
from typing import Iterable, Sequence

import numpy as np


class Timeline:
    """Piecewise-linear map from word position to seconds.

    Anchors are given as three parallel lists in order of position (ties in spoken order):
    ``pos`` (word positions), ``time`` (seconds) and ``is_start`` (True for a piece start,
    False for a piece end). ``words_per_second`` is the nominal rate used outside the
    anchored stretch.
    """

    def __init__(self, pos: Sequence[float], time: Sequence[float], is_start: Sequence[bool],
                 words_per_second: float = 2.5):
        if not len(pos) == len(time) == len(is_start):
            raise ValueError("pos, time and is_start must have the same length")
        self.pos, self.time, self.is_start = pos, time, is_start
        self.rate = words_per_second

    def __bool__(self) -> bool:
        return len(self.pos) > 0

    def at(self, pos: float, side: str) -> float:
        """Seconds at word position ``pos``; ``side`` is ``"start"`` or ``"end"`` (which
        anchor wins where two meet, see the module docstring)."""
        return self.at_each((pos,), side)[0]

    def at_each(self, positions: Iterable[float], side: str) -> list[float]:
        """:meth:`at` for many positions (same side) in one call: a list of seconds."""
        P, T, flags, rate = self.pos, self.time, self.is_start, self.rate
        n = len(P)
        start = side == "start"
        out: list[float] = []
        add = out.append
        for pos in positions:
            lo = bisect_left(P, pos)
            if lo < n and P[lo] == pos:  # anchors exactly here: lo..hi-1
                hi = bisect_right(P, pos, lo)
                if hi - lo == 1:  # one anchor: it wins on either side
                    add(T[lo])
                elif start:  # the last piece start here, else the last anchor
                    for i in range(hi - 1, lo - 1, -1):
                        if flags[i]:
                            add(T[i])
                            break
                    else:
                        add(T[hi - 1])
                else:  # the first piece end here, else the first anchor
                    for i in range(lo, hi):
                        if not flags[i]:
                            add(T[i])
                            break
                    else:
                        add(T[lo])
            elif lo == 0:
                add(max(0.0, T[0] - (P[0] - pos) / rate))
            elif lo == n:
                add(T[-1] + (pos - P[-1]) / rate)
            else:
                p0, t0, p1, t1 = P[lo - 1], T[lo - 1], P[lo], T[lo]
                add(max(t0, t0 + (t1 - t0) * (pos - p0) / (p1 - p0)))
        return out

    def at_array(self, positions: np.ndarray, side: str) -> np.ndarray | None:
        """:meth:`at_each` for many positions at once, as a float64 array of the very same
        values (the same IEEE operations in the same order, vectorised), when anchor and
        query positions are integers and all anchor times are finite and not negative (nor
        -0.0, so that no maximum compares zeros of two signs); else None."""
        P = np.asarray(self.pos)
        T = np.asarray(self.time, dtype=np.float64)
        q = np.asarray(positions)
        if P.dtype.kind != "i" or q.dtype.kind != "i" or not np.isfinite(T).all() or np.signbit(T).any():
            return None
        P = P.astype(np.int64, copy=False)
        q = q.astype(np.int64, copy=False)
        n = len(P)
        out = np.empty(len(q), dtype=np.float64)
        if not n or not len(q):
            return out if n else None
        flags = np.asarray(self.is_start, dtype=bool)
        lo = np.searchsorted(P, q, "left")
        hi = np.searchsorted(P, q, "right")
        exact = hi > lo
        if exact.any():  # anchors exactly here: lo..hi-1 (see at_each)
            idx = np.arange(n)
            l, h = lo[exact], hi[exact]
            if side == "start":  # the last piece start among them, else the last anchor
                last = np.maximum.accumulate(np.where(flags, idx, -1))[h - 1]
                out[exact] = T[np.where(last >= l, last, h - 1)]
            else:  # the first piece end among them, else the first anchor
                first = np.minimum.accumulate(np.where(flags, n, idx)[::-1])[::-1][l]
                out[exact] = T[np.where(first < h, first, l)]
        before = ~exact & (lo == 0)
        if before.any():
            out[before] = np.maximum(0.0, T[0] - (P[0] - q[before]) / self.rate)
        after = ~exact & (lo == n)
        if after.any():
            out[after] = T[-1] + (q[after] - P[-1]) / self.rate
        inside = ~exact & (lo > 0) & (lo < n)
        if inside.any():
            k = lo[inside]
            p0, t0, p1, t1 = P[k - 1], T[k - 1], P[k], T[k]
            out[inside] = np.maximum(t0, t0 + (t1 - t0) * (q[inside] - p0) / (p1 - p0))
        return out
