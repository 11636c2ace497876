"""Start and end seconds of turns and utterances from the source times, by word position.

A turn's words are counted by the spaces before an offset (turn texts have single spaces);
a piece or utterance starts at a word and ends after one. The pieces' source times are the
anchors of a :class:`~rupture_nlp.timeline.Timeline` over these word positions (see that
module), which gives every turn and utterance its times; they are rounded as
``round(x, decimals)`` does and an end is never before its start.
"""

from __future__ import annotations

import numpy

from ..timeline import Timeline, python_max

Times = list[tuple[float, float]]


def session_times(
    text: str, turns: list[tuple], utts: list[tuple], words_per_second: float, decimals: int
) -> tuple[Times, Times] | None:
    """``(start, end)`` of every turn and utterance of the side tables (see
    :mod:`rupture_nlp.segment.tables`) of a Doc with text ``text``; None when the source
    gives no time at all."""
    if not turns:
        return None
    # character offsets of the spaces: text.count(" ", a, b) == nsp(b) - nsp(a)
    if text.isascii():
        chars = numpy.frombuffer(text.encode("ascii"), dtype=numpy.uint8)
    else:
        chars = numpy.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    spaces = numpy.flatnonzero(chars == 32)

    def nsp(offsets):
        return numpy.searchsorted(spaces, offsets, "left")

    t_start = numpy.array([t[0] for t in turns], dtype=numpy.int64)
    t_end = numpy.array([t[1] for t in turns], dtype=numpy.int64)
    t_words = nsp(t_end) - nsp(t_start)  # spaces in each turn
    bases = numpy.zeros(len(turns), dtype=numpy.int64)  # the word position where each turn starts
    numpy.cumsum((t_words + (t_end > t_start))[:-1], out=bases[1:])
    # anchors in spoken order: each piece's start, then its end (one word further on after a
    # non-empty piece)
    a_turn, a_off, a_plus, a_secs, a_start = [], [], [], [], []
    for k, (ts, _te, *_rest, pieces) in enumerate(turns):
        for cs, ce, st, en, _line in pieces:
            if st is not None:
                a_turn.append(k)
                a_off.append(ts + cs)
                a_plus.append(0)
                a_secs.append(float(st))
                a_start.append(True)
            if en is not None:
                a_turn.append(k)
                a_off.append(ts + ce)
                a_plus.append(ce > 0)
                a_secs.append(float(en))
                a_start.append(False)
    if not a_turn:
        return None
    a_turn = numpy.array(a_turn, dtype=numpy.int64)
    pos = (
        bases[a_turn]
        + nsp(numpy.array(a_off, dtype=numpy.int64))
        - nsp(t_start[a_turn])
        + numpy.array(a_plus, dtype=numpy.int64)
    )
    secs = numpy.array(a_secs, dtype=numpy.float64)
    is_start = numpy.array(a_start, dtype=bool)
    if (pos[1:] < pos[:-1]).any():
        order = numpy.argsort(pos, kind="stable")  # ties stay in spoken order
        pos, secs, is_start = pos[order], secs[order], is_start[order]
    tl = Timeline(pos, secs, is_start, words_per_second)
    # the word position where each turn and utterance starts, and just after its end (turns
    # first, then utterances)
    u_turn = numpy.array([u[0] for u in utts], dtype=numpy.int64)
    u_s = numpy.array([u[1] for u in utts], dtype=numpy.int64)
    u_e = numpy.array([u[2] for u in utts], dtype=numpy.int64)
    u_base = bases[u_turn] - nsp(t_start[u_turn])
    firsts = numpy.concatenate([bases, u_base + nsp(u_s)])
    afters = numpy.concatenate([bases + t_words + 1, u_base + nsp(u_e) + 1])
    starts = round_array(tl.at_array(firsts, "start"), decimals)
    ends = python_max(starts, round_array(tl.at_array(afters, "end"), decimals))
    both = list(zip(starts.tolist(), ends.tolist()))
    return both[: len(turns)], both[len(turns) :]


def round_array(values: numpy.ndarray, decimals: int) -> numpy.ndarray:
    """``[round(x, decimals) for x in values]`` as a float64 array, the very same floats.

    Python rounds the exact binary value of ``x`` to a decimal (half to even) and returns the
    float nearest to that decimal. With ``y = x * 10**decimals`` computed in floats (off by
    less than 1e-7 for ``0 < y < 1e9``), ``floor(y + 0.5)`` is that decimal's integer ``k``
    whenever ``y`` is further than 1e-6 from a half, and ``k / 10**decimals`` (an IEEE
    division of two exact numbers) is the nearest float to it. The other values (near a
    half, zero, negative, huge, not finite, other ``decimals``) are rounded by ``round``."""
    x = numpy.asarray(values, dtype=numpy.float64)
    if not isinstance(decimals, int) or not 0 <= decimals <= 15:
        return numpy.array([round(v, decimals) for v in x.tolist()], dtype=numpy.float64)
    scale = 10.0**decimals
    y = x * scale
    with numpy.errstate(invalid="ignore", over="ignore"):
        t = y + 0.5
        k = numpy.floor(t)
        f = t - k
        safe = (y > 0) & (y < 1e9) & (f > 1e-6) & (f < 1 - 1e-6)
        out = k / scale
    if not safe.all():
        for i in numpy.flatnonzero(~safe).tolist():
            out[i] = round(float(x[i]), decimals)
    return out
