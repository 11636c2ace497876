"""What WebVTT and SRT have in common: timing lines, speakers inside cues, cue checks.

Speakers come from ``<v Name>`` voice tags or a ``Name:`` / ``[SPEAKER_00]:`` prefix at
the start of a cue line; a cue line without one continues the speaker before it. A cue whose
lines name two speakers becomes two pieces sharing the cue's time span.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import RuptureError
from .base import Piece, clean_text, repair_time_slip, split_speaker

VOICE = re.compile(r"^\s*<v(?:\.[\w-]+)*\s+([^>]*[^>\s])\s*>")
_TAG = re.compile(r"</?[^<>]*>")
_ASS = re.compile(r"\{\\[^}]*\}")
_DIALOGUE_DASH = re.compile(r"^[-–]\s+")


@dataclass(slots=True)
class Timing:
    """A cue's timing line: its line number and times in seconds."""

    line: int
    start: float
    end: float


def scan_timings(
    lines: list[str],
    parse: Callable[[str], float],
    path: str | Path,
    what: str,
    common: re.Pattern | None = None,
    *,
    strict: bool = False,
    meta: dict | None = None,
) -> list[Timing]:
    """Every ``a --> b`` line, parsed and checked: well-formed, end not before start, and
    starts in order. RuptureError names the line. A start earlier than the cue before by at
    most :data:`~rupture_nlp.readers.base.MAX_TIME_SLIP` seconds is clamped to that cue's
    start (recorded in ``meta["repairs"]``) unless ``strict``. Overlaps, as in crosstalk or
    diarized speech recognition, are kept and counted in ``meta["notices"]``.

    ``parse`` reads the time left of the arrow (stripped) and the first word right of it.
    ``common`` optionally matches the usual shape of a whole timing line, with the hours
    (or None), minutes, seconds and milliseconds of both times as eight groups; it must
    only match lines where ``parse`` gives the same times (it saves its cost per cue)."""
    out: list[Timing] = []
    prev: Timing | None = None
    meta = {} if meta is None else meta
    overlaps, first_overlap = 0, None
    for no, line in enumerate(lines, 1):
        if "-->" not in line:
            continue
        m = common.match(line) if common is not None else None
        if m is not None and m[2] < "60" and m[3] < "60" and m[6] < "60" and m[7] < "60":
            h1, m1, s1, f1, h2, m2, s2, f2 = m.groups()
            start = int(h1 or 0) * 3600 + int(m1) * 60 + int(s1) + int(f1) / 1000.0
            end = int(h2 or 0) * 3600 + int(m2) * 60 + int(s2) + int(f2) / 1000.0
        else:
            left, _, right = line.partition("-->")
            right_time = right.split()[0] if right.split() else ""
            try:
                start, end = parse(left.strip()), parse(right_time)
            except (ValueError, IndexError):
                raise RuptureError(
                    f"malformed {what} cue timing (expected 'hh:mm:ss{',' if what == 'SRT' else '.'}"
                    f"mmm --> hh:mm:ss{',' if what == 'SRT' else '.'}mmm')",
                    path,
                    no,
                ) from None
        if end < start:
            raise RuptureError("cue ends before it starts", path, no)
        if prev is not None:
            if start < prev.start:
                start = repair_time_slip(
                    start,
                    prev.start,
                    meta,
                    strict=strict,
                    path=path,
                    line=no,
                    message=(f"cue starts before the cue at line {prev.line} (cues out of time order)"),
                )
                end = max(end, start)
            elif start < prev.end:
                overlaps += 1
                first_overlap = first_overlap or no
        out.append(prev := Timing(no, start, end))
    if overlaps:
        meta.setdefault("notices", []).append({"kind": "overlapping_cues", "count": overlaps, "line": first_overlap})
    return out


def clean_cue_line(line: str) -> str:
    """Cue text without markup: tags (``<i>``, ``<c.x>``, ...), ASS overrides, HTML entities."""
    if "<" in line:
        line = _TAG.sub("", line)
    if "{" in line:
        line = _ASS.sub("", line)
    return html.unescape(line) if "&" in line else line


def cue_pieces(raw_lines: list[str], timing: Timing | None, start: float, end: float, is_known) -> list[Piece]:
    """The pieces of one cue: a new piece wherever a line names a speaker.

    The first piece gets the cue start, the last the cue end; times inside a cue with several
    speakers are left open (filled later by word count).
    """
    pieces: list[Piece] = []
    line_no = timing.line + 1 if timing else None
    for raw in raw_lines:
        voice = VOICE.match(raw) if "<v" in raw else None
        name = clean_text(voice.group(1)) if voice else None
        text = clean_text(clean_cue_line(raw[voice.end() :] if voice else raw))
        if text[:1] in ("-", "–"):
            text = _DIALOGUE_DASH.sub("", text)
        if name is None:
            name, text = split_speaker(text, is_known)
            if name is not None:  # else text is as it was, clean already
                text = clean_text(text)
        if not text:
            continue
        if name is not None or not pieces:
            pieces.append(Piece(name, text, None, None, line_no))
        else:
            pieces[-1].text += " " + text
        if line_no is not None:
            line_no += 1
    if pieces:
        pieces[0].start = start
        pieces[-1].end = end
    return pieces


def check_speakers(pieces: list[Piece], path: str | Path, what: str) -> None:
    """RuptureError when no cue names a speaker, or the first cue with text has none."""
    if not pieces:
        raise RuptureError(f"no cues with text in this {what} file", path)
    if all(p.speaker_name is None for p in pieces):
        raise RuptureError(
            "no speaker in any cue: rupture needs <v Name> voice tags or 'Name:' prefixes in "
            "the cues (speech-recognition output without speaker labels cannot be split into "
            "therapist and client)",
            path,
        )
    if pieces[0].speaker_name is None:
        raise RuptureError(
            "first cue has no speaker (<v Name> voice tag or 'Name:' prefix expected)", path, pieces[0].line
        )
