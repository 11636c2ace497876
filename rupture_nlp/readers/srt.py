"""SRT (SubRip) transcripts, parsed with the ``srt`` library.

Cue timings are checked line by line first so an error can name its line; speakers: see
:mod:`rupture_nlp.readers.subtitles`.
"""
from __future__ import annotations

import re
from pathlib import Path

import srt

from ..errors import RuptureError
from .base import RawTranscript
from .speakers import SpeakerResolver
from .subtitles import check_speakers, cue_pieces, scan_timings

_SRT_TIME = re.compile(r"^(\d{1,3}):(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?$")


def _srt_seconds(value: str) -> float:
    m = _SRT_TIME.match(value.strip())
    if not m:
        raise ValueError(value)
    h, mi, s, ms = m.groups()
    if int(mi) >= 60 or int(s) >= 60:
        raise ValueError(value)
    return int(h) * 3600 + int(mi) * 60 + int(s) + int((ms or "0").ljust(3, "0")) / 1000.0


def read_srt(text: str, path: str | Path, resolver: SpeakerResolver) -> RawTranscript:
    """Parse an SRT file into pieces (one per cue, or per speaker within a cue).

    Raises RuptureError for malformed or out-of-order cue timings, unparseable blocks and
    cues without speakers.
    """
    text = text.lstrip("\ufeff")
    timings = scan_timings(text.splitlines(), _srt_seconds, path, "SRT")
    if not timings:
        raise RuptureError("not an SRT file: no 'hh:mm:ss,mmm --> hh:mm:ss,mmm' cue timings", path)
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
