"""SRT (SubRip) transcripts, parsed with the ``srt`` library.

Cue timings are checked line by line first so an error can name its line; speakers: see
:mod:`rupture_nlp.readers.subtitles`. The cues come from ``srt.parse`` (the library's public
API; :func:`cue_texts`).

Speed: ``srt.parse`` finds the cues with one regular expression (slow: it looks ahead at
every character for where a cue's text could end), then builds a Subtitle with two
timedelta times for each. A file of plain blocks (index line, timing line, text lines,
blank line) is split into its cues directly (:func:`plain_cues`): what ``srt.parse`` reads
from such a file, checked against the srt version pinned in ``pyproject.toml`` by
``tests/test_ingest_fastpaths.py``.

Format ``srt``: a file that starts with an index line and a timing line, or a ``.srt`` file.
"""

from __future__ import annotations

import re
from pathlib import Path

import srt

from ..errors import RuptureError
from .base import RawTranscript
from .registry import InputFormat, register_format
from .speakers import SpeakerResolver
from .subtitles import Timing, check_speakers, cue_pieces, scan_timings

_SRT_TIME = re.compile(r"^(\d{1,3}):(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?$")


# The usual timing line ("00:01:02,500 --> 00:01:04,000 ..."), read as _srt_seconds reads its
# two times (see scan_timings).
_COMMON_TIMING = re.compile(
    r"\s*([0-9]{1,3}):([0-9]{2}):([0-9]{2}),([0-9]{3})\s*-->"
    r"\s*([0-9]{1,3}):([0-9]{2}):([0-9]{2}),([0-9]{3})(?:\s|$)"
)


def _srt_seconds(value: str) -> float:
    m = _SRT_TIME.match(value.strip())
    if not m:
        raise ValueError(value)
    h, mi, s, ms = m.groups()
    if int(mi) >= 60 or int(s) >= 60:
        raise ValueError(value)
    return int(h) * 3600 + int(mi) * 60 + int(s) + int((ms or "0").ljust(3, "0")) / 1000.0


# The timing line of a plain block, and a line srt.parse could take for a cue's index.
_PLAIN_TIMING = re.compile(
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}),([0-9]{3}) --> "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}),([0-9]{3})"
)
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
    if not text or text[0] not in "0123456789" or "\n\n\n" in text or any(c in text for c in _OTHER_BREAKS):
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
        out.append(
            (
                cue,
                (((int(h1) * 60 + int(m1)) * 60 + int(s1)) * 1000 + int(f1)) * 1000 / 10**6,
                (((int(h2) * 60 + int(m2)) * 60 + int(s2)) * 1000 + int(f2)) * 1000 / 10**6,
            )
        )
    return out


def cue_texts(text: str, timings: list[Timing] | None = None) -> list[tuple[str, float, float]] | None:
    """``(content, start, end)`` of every cue ``srt.parse(text)`` reads (times in seconds, as
    ``Subtitle.start.total_seconds()``), or None when it refuses the file; with ``timings``
    (the checked timing lines) also None unless it reads one cue per timing line."""
    try:
        cues = _parsed(text)
    except (srt.SRTParseError, ValueError, OverflowError):
        return None
    return cues if timings is None or len(cues) == len(timings) else None


def _parsed(text: str) -> list[tuple[str, float, float]]:
    return [(sub.content, sub.start.total_seconds(), sub.end.total_seconds()) for sub in srt.parse(text)]


def _refusal(text: str, path: str | Path) -> RuptureError:
    """Why ``srt.parse`` refuses ``text``, naming the line where the block it could not read starts."""
    try:
        _parsed(text)
    except srt.SRTParseError as e:
        rest = text[e.expected_start :]
        line = text.count("\n", 0, e.expected_start + len(rest) - len(rest.lstrip())) + 1
        return RuptureError("malformed SRT block (expected an index line, a timing line and text)", path, line)
    except (ValueError, OverflowError):
        pass
    return RuptureError("malformed SRT cue timing", path)


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
        parsed = cue_texts(text)
        if parsed is None:
            raise _refusal(text, path)
        cues = [(content.splitlines(), start, end) for content, start, end in parsed]
    aligned = len(cues) == len(timings)  # else srt.parse took lines for cues that scan_timings did not
    pieces = []
    is_known = resolver.is_known
    prev = 0.0
    for i, (lines, start, end) in enumerate(cues):
        if start < prev:
            start, end = _clamped(start, end, prev)
        prev = start
        pieces += cue_pieces(lines, timings[i] if aligned else None, start, end, is_known)
    check_speakers(pieces, path, "SRT")
    return RawTranscript(pieces, meta)


_SRT_START = re.compile(r"^\s*\d+\s*\r?\n\s*\d{1,3}:\d{2}:\d{2}[,.]\d{1,3}\s*-->")

FORMAT = register_format(
    InputFormat(
        "srt",
        read=read_srt,
        extensions=(".srt",),
        aliases=("subrip",),
        sniff=lambda head: _SRT_START.match(head) is not None,
    )
)
