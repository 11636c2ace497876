"""WebVTT transcripts (Whisper, Zoom, Teams, ...), parsed with webvtt-py.

Cue timings are checked line by line first (well-formed, in order) so that an error can name
its line; webvtt-py then reads the cue blocks (identifiers, NOTE, STYLE and REGION blocks are
skipped by it). Speakers: see :mod:`rupture_nlp.readers.subtitles`.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from ..errors import RuptureError
from .base import RawTranscript
from .speakers import SpeakerResolver
from .subtitles import check_speakers, cue_pieces, scan_timings


_VTT_TIME = re.compile(r"^(?:(\d{1,10}):)?(\d{1,2}):(\d{1,2})\.(\d{1,3})$")  # as webvtt-py reads them


def _vtt_seconds(value: str) -> float:
    m = _VTT_TIME.match(value)
    if not m:
        raise ValueError(value)
    h, mi, s, ms = m.groups()
    if int(mi) >= 60 or int(s) >= 60:
        raise ValueError(value)
    return int(h or 0) * 3600 + int(mi) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000.0


def read_vtt(text: str, path: str | Path, resolver: SpeakerResolver) -> RawTranscript:
    """Parse a WebVTT file into pieces (one per cue, or per speaker within a cue).

    Raises RuptureError for a missing ``WEBVTT`` header, malformed or out-of-order cue
    timings, and cues without speakers.
    """
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    if not lines or not lines[0].startswith("WEBVTT"):
        raise RuptureError("not a WebVTT file: the first line must be 'WEBVTT'", path, 1)
    timings = scan_timings(lines, _vtt_seconds, path, "WebVTT")
    try:
        captions = webvtt.from_buffer(io.StringIO(text)).captions
    except (MalformedFileError, MalformedCaptionError):
        raise RuptureError("malformed WebVTT file", path) from None
    aligned = len(captions) == len(timings)
    pieces = []
    for i, cap in enumerate(captions):
        timing = timings[i] if aligned else None
        if timing is not None:
            start, end = timing.start, timing.end
        else:
            start, end = cap.start_time.in_milliseconds() / 1000.0, cap.end_time.in_milliseconds() / 1000.0
        pieces += cue_pieces(cap.lines, timing, start, end, resolver.is_known)
    check_speakers(pieces, path, "WebVTT")
    return RawTranscript(pieces, {"source_format": "vtt"})
