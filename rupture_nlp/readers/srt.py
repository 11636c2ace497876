"""SRT (SubRip) transcripts, parsed with the ``srt`` library.

Cue timings are checked line by line first so an error can name its line; speakers: see
:mod:`rupture_nlp.readers.subtitles`.

Speed: ``srt.parse`` finds the cues with one regular expression (slow: it looks ahead at
every character for where a cue's text could end), then builds a Subtitle with two
timedelta times for each. A file of plain blocks (index line, timing line, text lines,
blank line) is split into its cues directly (:func:`plain_cues`), any other one read with
the library's own expressions as ``srt.parse`` does but without those objects
(:func:`cue_texts`), and what neither takes (gaps it reports as errors, cues without a
checked timing line) is left to ``srt.parse``.
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from ..errors import RuptureError
from .base import RawTranscript
from .speakers import SpeakerResolver
from .subtitles import Timing, check_speakers, cue_pieces, scan_timings

_SRT_TIME = re.compile(r"^(\d{1,3}):(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?$")


# The usual timing line ("00:01:02,500 --> 00:01:04,000 ..."), read as _srt_seconds reads its
# two times (see scan_timings).
_COMMON_TIMING = re.compile(r"\s*([0-9]{1,3}):([0-9]{2}):([0-9]{2}),([0-9]{3})\s*-->"
                            r"\s*([0-9]{1,3}):([0-9]{2}):([0-9]{2}),([0-9]{3})(?:\s|$)")


def _srt_seconds(value: str) -> float:
    m = _SRT_TIME.match(value.strip())
    if not m:
        raise ValueError(value)
    h, mi, s, ms = m.groups()
    if int(mi) >= 60 or int(s) >= 60:
        raise ValueError(value)
    return int(h) * 3600 + int(mi) * 60 + int(s) + int((ms or "0").ljust(3, "0")) / 1000.0


@cache
def _srt_regexes() -> tuple[re.Pattern, re.Pattern] | None:
    """``(srt.SRT_REGEX, srt.TS_REGEX)`` in the srt versions whose parse() :func:`cue_texts`
    follows (3.5: SRT_REGEX groups index, start, end, proprietary, content; TS_REGEX groups
    hours, minutes, seconds, milliseconds), else None."""
    from importlib.metadata import PackageNotFoundError, version

    import srt
    try:
        v = tuple(int(x) for x in re.findall(r"\d+", version("srt"))[:2])
    except (PackageNotFoundError, ValueError):
        return None
    cue, ts = getattr(srt, "SRT_REGEX", None), getattr(srt, "TS_REGEX", None)
    if v == (3, 5) and isinstance(cue, re.Pattern) and isinstance(ts, re.Pattern) and cue.groups == 5 \
            and ts.groups == 4:
        return cue, ts
    return None


def _seconds(ts: re.Pattern, value: str) -> float:
    """``srt.srt_timestamp_to_timedelta(value).total_seconds()``: the time as a whole number
    of microseconds, divided by a million (``value`` matched srt's timestamp expression)."""
    hours, minutes, seconds, millis = ts.match(value).groups()  # all digits; only millis may be ""
    return (((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + (int(millis) if millis else 0)) * 1000 \
        / 10**6


# The timing line of a plain block, and a line srt.parse could take for a cue's index.
_PLAIN_TIMING = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2}),([0-9]{3}) --> "
                           r"([0-9]{2}):([0-9]{2}):([0-9]{2}),([0-9]{3})")
_INDEX_LIKE = re.compile(r"-?[0-9]+\.?[0-9]*\s*")
# Line breaks other than LF (as in vtt.py, and CR).
_OTHER_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def plain_cues(text: str, timings: list[Timing]) -> list[tuple[list[str], float, float]] | None:
    """``(text lines, start, end)`` of every cue as ``srt.parse(text)`` reads them, for a file
    of plain blocks only; else None.

    Plain: LF line breaks only, no run of two blank lines, and blocks separated by one blank
    line, each an index (digits), a timing line ``hh:mm:ss,mmm --> hh:mm:ss,mmm`` and text
    lines, none of which has ``-->`` or could be read as an index (``12``, ``-3.5``), one
    block per checked timing line. srt.parse's expression then ends each cue's text at the
    blank line (its look-ahead for a next cue starting early needs an index-like line), so
    the cue holds the block's text lines, and its times are the timestamps' whole
    milliseconds (as a timedelta's total_seconds)."""
    if not text or text[0] not in "0123456789" or "\n\n\n" in text or any(c in text for c in _OTHER_BREAKS) \
            or _srt_regexes() is None:
        return None
    blocks = text.rstrip("\n").split("\n\n")
    if len(blocks) != len(timings):
        return None
    out = []
    index_like = _INDEX_LIKE.fullmatch
    for block in blocks:
        lines = block.split("\n")
        if len(lines) < 3 or not (lines[0].isascii() and lines[0].isdigit()):
            return None
        m = _PLAIN_TIMING.fullmatch(lines[1])
        if m is None:
            return None
        h1, m1, s1, f1, h2, m2, s2, f2 = m.groups()
        cue = lines[2:]
        for line in cue:
            if "-->" in line or index_like(line):
                return None
        out.append((cue, (((int(h1) * 60 + int(m1)) * 60 + int(s1)) * 1000 + int(f1)) * 1000 / 10**6,
                    (((int(h2) * 60 + int(m2)) * 60 + int(s2)) * 1000 + int(f2)) * 1000 / 10**6))
    return out


def cue_texts(text: str, timings: list[Timing]) -> list[tuple[str, float, float]] | None:
    """``(content, start, end)`` of every cue as ``srt.parse(text)`` gives them (times in
    seconds, as ``Subtitle.start.total_seconds()``), when the file is read by it without
    complaint and has one checked timing line per cue; else None (use ``srt.parse``).

    As ``srt.parse``: the cues are the matches of ``srt.SRT_REGEX``, which must follow each
    other without a gap (only whitespace or a BOM may come before the first); a cue's content
    is its last group with CRLF as LF, its times the whole microseconds its timestamps
    (``srt.TS_REGEX``) give. A cue qualifies only when its timestamps are short enough that
    they cannot overflow a timedelta (12 characters: at most about 10**10 hours)."""
    regexes = _srt_regexes()
    if regexes is None:
        return None
    cue, ts = regexes
    out = []
    expected = 0
    for m in cue.finditer(text):
        start = m.start()
        if start != expected and not (expected == 0 and (text[:start].isspace() or text[:start] == "\ufeff")):
            return None
        _idx, raw_start, raw_end, _prop, content = m.groups()
        if len(raw_start) > 12 or len(raw_end) > 12:
            return None
        out.append((content.replace("\r\n", "\n"), _seconds(ts, raw_start), _seconds(ts, raw_end)))
        expected = m.end()
    if expected != len(text) and not (expected == 0 and (text.isspace() or text == "\ufeff")):
        return None
    return out if len(out) == len(timings) else None


def _clamped(start: float, end: float, prev: float) -> tuple[float, float]:
    """A cue's times with its start moved up to ``prev`` if earlier: the slips
    :func:`scan_timings` allowed (and recorded) on the timing lines, applied to the times read."""
    start = max(start, prev)
    return start, max(end, start)


def read_srt(text: str, path: str | Path, resolver: SpeakerResolver, *, strict: bool = False) -> RawTranscript:
    """Parse an SRT file into pieces (one per cue, or per speaker within a cue).

    Raises RuptureError for malformed or out-of-order cue timings (small slips repaired
    unless ``strict``, see :func:`scan_timings`), unparseable blocks and cues without speakers.
    """
    text = text.lstrip("\ufeff")
    meta: dict = {"source_format": "srt"}
    timings = scan_timings(text.splitlines(), _srt_seconds, path, "SRT", _COMMON_TIMING, strict=strict, meta=meta)
    if not timings:
        raise RuptureError("not an SRT file: no 'hh:mm:ss,mmm --> hh:mm:ss,mmm' cue timings", path)
    cues = plain_cues(text, timings)
    if cues is None:
        cues = cue_texts(text, timings)
        if cues is not None:
            cues = [(content.splitlines(), start, end) for content, start, end in cues]
    if cues is not None:  # srt.parse's cues, each with its timing line (as below when aligned)
        pieces = []
        is_known = resolver.is_known
        prev = 0.0
        for timing, (lines, start, end) in zip(timings, cues):
            if start < prev:
                start, end = _clamped(start, end, prev)
            prev = start
            pieces += cue_pieces(lines, timing, start, end, is_known)
        check_speakers(pieces, path, "SRT")
        return RawTranscript(pieces, meta)
    import srt
    try:
        subs = list(srt.parse(text))
    except srt.SRTParseError as e:
        rest = text[e.expected_start:]
        line = text.count("\n", 0, e.expected_start + len(rest) - len(rest.lstrip())) + 1
        raise RuptureError("malformed SRT block (expected an index line, a timing line and text)",
                           path, line) from None
    aligned = len(subs) == len(timings)
    pieces = []
    prev = 0.0
    for i, sub in enumerate(subs):
        start, end = sub.start.total_seconds(), sub.end.total_seconds()
        if start < prev:
            start, end = _clamped(start, end, prev)
        prev = start
        pieces += cue_pieces(sub.content.splitlines(), timings[i] if aligned else None, start, end,
                             resolver.is_known)
    check_speakers(pieces, path, "SRT")
    return RawTranscript(pieces, meta)
