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

from typing import Sequence

import numpy as np


class Timeline:
    """Piecewise-linear map from word position to seconds.

    Anchors are given as three parallel lists in order of position (ties in spoken order):
    ``pos`` (word positions), ``time`` (seconds) and ``is_start`` (True for a piece start,
    False for a piece end). ``words_per_second`` is the nominal rate used outside the
    anchored stretch.
    """

    def __init__(
        self, pos: Sequence[float], time: Sequence[float], is_start: Sequence[bool], words_per_second: float = 2.5
    ):
        if not len(pos) == len(time) == len(is_start):
            raise ValueError("pos, time and is_start must have the same length")
        self.pos, self.time, self.is_start = pos, time, is_start
        self.rate = words_per_second

    def __bool__(self) -> bool:
        return len(self.pos) > 0

    def at(self, pos: float, side: str) -> float:
        """Seconds at word position ``pos``; ``side`` is ``"start"`` or ``"end"`` (which
        anchor wins where two meet, see the module docstring)."""
        return float(self.at_array(np.array([pos]), side)[0])

    def at_array(self, positions: np.ndarray, side: str) -> np.ndarray:
        """:meth:`at` for many positions (same side) at once, as a float64 array.

        The values are those of the plain Python arithmetic on each position (the same IEEE
        operations in the same order, and maxima as Python's ``max``), whatever the times:
        not finite or negative ones too."""
        P = np.asarray(self.pos)
        T = np.asarray(self.time, dtype=np.float64)
        q = np.asarray(positions)
        n = len(P)
        if not n:
            raise ValueError("a timeline without anchors gives no times")
        out = np.empty(len(q), dtype=np.float64)
        if not len(q):
            return out
        flags = np.asarray(self.is_start, dtype=bool)
        lo = np.searchsorted(P, q, "left")
        hi = np.searchsorted(P, q, "right")
        exact = hi > lo
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is nan, as in Python
            if exact.any():  # anchors exactly here: lo..hi-1
                idx = np.arange(n)
                l, h = lo[exact], hi[exact]
                if side == "start":  # the last piece start among them, else the last anchor
                    last = np.maximum.accumulate(np.where(flags, idx, -1))[h - 1]
                    out[exact] = T[np.where(last >= l, last, h - 1)]
                else:  # the first piece end among them, else the first anchor
                    first = np.minimum.accumulate(np.where(flags, n, idx)[::-1])[::-1][l]
                    out[exact] = T[np.where(first < h, first, l)]
            before = ~exact & (lo == 0)  # extended back at the nominal rate, never before 0
            if before.any():
                out[before] = python_max(0.0, T[0] - (P[0] - q[before]) / self.rate)
            after = ~exact & (lo == n)  # extended on at the nominal rate
            if after.any():
                out[after] = T[-1] + (q[after] - P[-1]) / self.rate
            inside = ~exact & (lo > 0) & (lo < n)  # interpolated, never before the anchor before
            if inside.any():
                k = lo[inside]
                p0, t0, p1, t1 = P[k - 1], T[k - 1], P[k], T[k]
                out[inside] = python_max(t0, t0 + (t1 - t0) * (q[inside] - p0) / (p1 - p0))
        return out


def python_max(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """``max(a, b)`` element by element as Python computes it: ``b`` where ``b > a``, else
    ``a`` (so NaN, and zeros of two signs, come out as from Python's ``max``; ``np.maximum``
    differs there)."""
    return np.where(b > a, b, a)
