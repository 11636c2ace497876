"""WebVTT transcripts (Whisper, Zoom, Teams, ...), parsed with webvtt-py.

Cue timings are checked line by line first (well-formed, in order) so that an error can name
its line; webvtt-py then reads the cue blocks (identifiers, NOTE, STYLE and REGION blocks are
skipped by it) through its public API (``webvtt.from_buffer``, ``Caption.lines``,
``Caption.start``/``end``). Speakers: see :mod:`rupture_nlp.readers.subtitles`.

Speed: webvtt-py builds a caption object with parsed timestamps and cue settings for every
cue, which costs more than segmenting the cue's words. When the checked timing lines show
that every cue block has the plain shape (a blank line, an optional identifier, the timing
line, text lines up to the next blank line) the cue texts are taken from the lines directly
(:func:`plain_cue_lines`): what webvtt-py would read from such a file, checked against the
webvtt-py version pinned in ``pyproject.toml`` by ``tests/test_ingest_fastpaths.py``. Any
other file is read by webvtt-py.

Format ``vtt``: a file whose first line starts with ``WEBVTT``, or a ``.vtt``/``.webvtt`` file.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from ..errors import RuptureError
from .base import RawTranscript
from .registry import InputFormat, register_format
from .speakers import SpeakerResolver
from .subtitles import Timing, check_speakers, cue_pieces, scan_timings


_VTT_TIME = re.compile(r"^(?:(\d{1,10}):)?(\d{1,2}):(\d{1,2})\.(\d{1,3})$")  # as webvtt-py reads them


# The usual timing line ("00:01:02.500 --> 00:01:04.000 ...", hours optional), read as
# _vtt_seconds reads its two times (see scan_timings).
_COMMON_TIMING = re.compile(
    r"\s*(?:([0-9]{1,10}):)?([0-9]{2}):([0-9]{2})\.([0-9]{3})\s*-->"
    r"\s*(?:([0-9]{1,10}):)?([0-9]{2}):([0-9]{2})\.([0-9]{3})(?:\s|$)"
)


def _vtt_seconds(value: str) -> float:
    m = _VTT_TIME.match(value)
    if not m:
        raise ValueError(value)
    h, mi, s, ms = m.groups()
    if int(mi) >= 60 or int(s) >= 60:
        raise ValueError(value)
    return int(h or 0) * 3600 + int(mi) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000.0


# Line breaks of str.splitlines() that are not WebVTT line terminators (CR, LF, CRLF).
_OTHER_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# A cue timings line as webvtt-py (0.6, as pinned) takes it: hours optional, one or two digits
# for minutes and seconds, one to three for the milliseconds.
_CUE_TIMINGS = re.compile(r"\s*((?:\d+:)?\d{1,2}:\d{1,2}\.\d{1,3})\s*-->\s*((?:\d+:)?\d{1,2}:\d{1,2}\.\d{1,3})")


def plain_cue_lines(text: str, lines: list[str], timings: list[Timing]) -> list[list[str]] | None:
    """The text lines of every cue, in order, when the file has only plain cue blocks; else
    None (then webvtt-py reads it).

    ``lines`` are ``text.splitlines()`` and ``timings`` every line with ``-->`` (checked by
    :func:`scan_timings`). Plain means: no line breaks other than CR/LF/CRLF, no STYLE or
    REGION block, and every timing line matches webvtt-py's cue timings pattern and starts a
    block (after a blank line) or follows an identifier line that does. Then webvtt-py reads
    exactly one caption per timing line, holding the lines up to the next blank line, and
    every other block is a comment or the header (no caption).
    """
    if any(c in text for c in _OTHER_BREAKS):
        return None
    n = len(lines)
    out = []
    for t in timings:
        i = t.line - 1
        if i < 1 or not _CUE_TIMINGS.match(lines[i]):
            return None
        if lines[i - 1] and (i < 2 or lines[i - 2] or "-->" in lines[i - 1]):
            return None
        j = i + 1
        while j < n and lines[j]:
            j += 1
        out.append(lines[i + 1 : j])
    if ("STYLE" in text or "REGION" in text) and any(line.startswith(("STYLE", "REGION")) for line in lines):
        return None
    return out


def read_vtt(text: str, path: str | Path, resolver: SpeakerResolver, *, strict: bool = False) -> RawTranscript:
    """Parse a WebVTT file into pieces (one per cue, or per speaker within a cue).

    Raises RuptureError for a missing ``WEBVTT`` header, malformed or out-of-order cue
    timings (small slips repaired unless ``strict``, see :func:`scan_timings`), and cues
    without speakers.
    """
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    if not lines or not lines[0].startswith("WEBVTT"):
        raise RuptureError("not a WebVTT file: the first line must be 'WEBVTT'", path, 1)
    meta: dict = {"source_format": "vtt"}
    timings = scan_timings(lines, _vtt_seconds, path, "WebVTT", _COMMON_TIMING, strict=strict, meta=meta)
    pieces = []
    is_known = resolver.is_known
    cues = plain_cue_lines(text, lines, timings)
    if cues is not None:
        for timing, cue in zip(timings, cues):
            pieces += cue_pieces(cue, timing, timing.start, timing.end, is_known)
    else:
        for cue, timing, start, end in _library_cues(text, timings, path):
            pieces += cue_pieces(cue, timing, start, end, is_known)
    check_speakers(pieces, path, "WebVTT")
    return RawTranscript(pieces, meta)


def _library_cues(
    text: str, timings: list[Timing], path: str | Path
) -> list[tuple[list[str], Timing | None, float, float]]:
    """``(lines, timing, start, end)`` of every caption webvtt-py reads; the checked timing
    and its times when there is one per caption, else the caption's own times."""
    import webvtt  # here, not at the top: streaming canonical JSONL never pays for importing it
    from webvtt.errors import MalformedCaptionError, MalformedFileError

    try:
        captions = webvtt.from_buffer(io.StringIO(text)).captions
        aligned = len(captions) == len(timings)
        times = (
            [(t.start, t.end) for t in timings]
            if aligned
            else [(_vtt_seconds(c.start), _vtt_seconds(c.end)) for c in captions]
        )
    except (MalformedFileError, MalformedCaptionError, ValueError):
        raise RuptureError("malformed WebVTT file", path) from None
    out = []
    prev = 0.0
    for i, (cap, (start, end)) in enumerate(zip(captions, times)):
        if not aligned and start < prev:  # slips the checked timing lines allowed are clamped here as well
            start, end = prev, max(end, prev)
        prev = start
        out.append((cap.lines, timings[i] if aligned else None, start, end))
    return out


FORMAT = register_format(
    InputFormat(
        "vtt",
        read=read_vtt,
        extensions=(".vtt", ".webvtt"),
        aliases=("webvtt",),
        sniff=lambda head: head.startswith("WEBVTT"),
    )
)
