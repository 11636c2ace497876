"""SRT (SubRip) transcripts, parsed with the ``srt`` library.

Cue timings are checked line by line first so an error can name its line; speakers: see
:mod:`rupture_nlp.readers.subtitles`.

Speed: ``srt.parse`` finds the cues with one regular expression and then builds a Subtitle
with two parsed timedelta times for each; the times are not needed when every cue has its
checked timing line. :func:`cue_texts` takes the cue texts from the library's own
expression, as ``srt.parse`` does, and leaves everything else (gaps it reports as errors,
cues without a checked timing) to ``srt.parse``.
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
def _srt_regex() -> re.Pattern | None:
    """``srt.SRT_REGEX`` in the srt versions whose parse() :func:`cue_texts` follows (3.5:
    groups index, start, end, proprietary, content), else None."""
    from importlib.metadata import PackageNotFoundError, version

    import srt
    try:
        v = tuple(int(x) for x in re.findall(r"\d+", version("srt"))[:2])
    except (PackageNotFoundError, ValueError):
        return None
    regex = getattr(srt, "SRT_REGEX", None)
    return regex if v == (3, 5) and isinstance(regex, re.Pattern) and regex.groups == 5 else None


def cue_texts(text: str, timings: list[Timing]) -> list[str] | None:
    """The content of every cue as ``srt.parse(text)`` gives it, when the file is read by it
    without complaint and has one checked timing per cue; else None (use ``srt.parse``).

    As ``srt.parse``: the cues are the matches of ``srt.SRT_REGEX``, which must follow each
    other without a gap (only whitespace or a BOM may come before the first), and a cue's
    content is its last group with CRLF as LF. Its start and end times are not parsed, so a
    cue qualifies only when they are short enough that parsing them cannot fail (no more
    than 12 characters: a time is at most about 10**10 hours then)."""
    regex = _srt_regex()
    if regex is None:
        return None
    out = []
    expected = 0
    for m in regex.finditer(text):
        start = m.start()
        if start != expected and not (expected == 0 and (text[:start].isspace() or text[:start] == "\ufeff")):
            return None
        _idx, raw_start, raw_end, _prop, content = m.groups()
        if len(raw_start) > 12 or len(raw_end) > 12:
            return None
        out.append(content.replace("\r\n", "\n"))
        expected = m.end()
    if expected != len(text) and not (expected == 0 and (text.isspace() or text == "\ufeff")):
        return None
    return out if len(out) == len(timings) else None


def read_srt(text: str, path: str | Path, resolver: SpeakerResolver) -> RawTranscript:
    """Parse an SRT file into pieces (one per cue, or per speaker within a cue).

    Raises RuptureError for malformed or out-of-order cue timings, unparseable blocks and
    cues without speakers.
    """
    text = text.lstrip("\ufeff")
    timings = scan_timings(text.splitlines(), _srt_seconds, path, "SRT", _COMMON_TIMING)
    if not timings:
        raise RuptureError("not an SRT file: no 'hh:mm:ss,mmm --> hh:mm:ss,mmm' cue timings", path)
    contents = cue_texts(text, timings)
    if contents is not None:
        pieces = []
        is_known = resolver.is_known
        for timing, content in zip(timings, contents):
            pieces += cue_pieces(content.splitlines(), timing, timing.start, timing.end, is_known)
        check_speakers(pieces, path, "SRT")
        return RawTranscript(pieces, {"source_format": "srt"})
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
    for i, sub in enumerate(subs):
        pieces += cue_pieces(sub.content.splitlines(), timings[i] if aligned else None,
                             sub.start.total_seconds(), sub.end.total_seconds(), resolver.is_known)
    check_speakers(pieces, path, "SRT")
    return RawTranscript(pieces, {"source_format": "srt"})
