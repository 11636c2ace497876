"""What every reader produces, and the small parsing helpers the readers share.

A reader turns one transcript file into a :class:`RawTranscript`: the file's *pieces* (one per
line, row or subtitle cue) in spoken order, each with the speaker name as written, its text,
its times when the source has them and its source line. Speaker roles and turns come later
(:mod:`rupture_nlp.readers.speakers`); sentence-like utterances come from the spaCy pipeline
(:mod:`rupture_nlp.segment`).

What a reader repaired goes to ``meta["repairs"]``, what it only noticed to
``meta["notices"]`` (lists of dicts with a ``kind``, and ``line``/``lines``/``count`` where they
apply); :func:`rupture_nlp.readers.read_turns` logs both as one warning line per file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import RuptureError


@dataclass
class Piece:
    """One line, row or cue of a transcript.

    ``speaker_name`` is the name as written (``None``: the piece continues the previous
    speaker, e.g. a wrapped line); ``role`` a role word from a separate column, which then
    decides the role instead of the name; ``text`` is whitespace-normalised; ``start``/``end`` are
    seconds from the start of the recording or ``None``; ``line`` is the 1-based source line.
    """

    speaker_name: str | None
    text: str
    start: float | None = None
    end: float | None = None
    line: int | None = None
    #: the role as written in a separate role column (CSV), when the source has one
    role: str | None = None


@dataclass
class RawTranscript:
    """A whole file as read: its pieces in order and what the reader learned about it
    (``meta``: ``source_format``, ``source_encoding``, header fields, ...)."""

    pieces: list[Piece]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class TurnPiece:
    """A piece placed inside its turn: ``char_start``/``char_end`` into the turn text."""

    char_start: int
    char_end: int
    start: float | None
    end: float | None
    line: int | None


@dataclass
class Turn:
    """Consecutive pieces of one speaker joined into one turn.

    ``speaker`` is the role (``therapist``/``client``), ``speaker_name`` the name as first
    written in the turn, ``text`` the pieces joined by single spaces, ``pieces`` where each
    piece sits in ``text`` and its source times, ``line`` the first source line.
    """

    speaker: str
    speaker_name: str
    text: str
    pieces: list[TurnPiece]
    line: int | None = None


def clean_text(text: str) -> str:
    """Collapse every run of whitespace (tabs, newlines, NBSP, ...) to one space and strip."""
    return " ".join(text.split())


# A clock time: ss(.fff), mm:ss(.fff) or hh:mm:ss(.fff); "," as decimal mark too (SRT style).
CLOCK = r"\d{1,2}(?::\d{1,2}){1,2}(?:[.,]\d{1,3})?"
_CLOCK_RE = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d+)?)$")
_SECONDS_RE = re.compile(r"\d+(?:[.,]\d+)?")


def parse_clock(value: str) -> float:
    """Seconds from ``hh:mm:ss.fff`` / ``mm:ss`` / ``1:02:03,5`` / plain seconds ``12.5``.

    Raises ValueError when ``value`` is none of these.
    """
    v = value.strip()
    m = _CLOCK_RE.match(v) if ":" in v else None  # a clock time has a colon
    if m:
        h, mnt, s = m.groups()
        secs = float(s.replace(",", "."))
        if (h is not None and int(mnt) >= 60) or secs >= 60:
            raise ValueError(f"not a clock time: {value!r}")
        return int(h or 0) * 3600 + int(mnt) * 60 + secs
    secs = float(v.replace(",", ".")) if _SECONDS_RE.fullmatch(v) else float("nan")
    if secs != secs:
        raise ValueError(f"not a time: {value!r}")
    return secs


# --- speaker prefixes -------------------------------------------------------------------------
# "T:", "Therapist:", "DR. LEE:", "Speaker 1:", "SPEAKER_00:", "[SPEAKER_00]:" at a line start.
_NAME = r"[^\W\d_][\w.'’&-]*(?:[ \t]+[\w.'’&-]+){0,3}"
SPEAKER_PREFIX = re.compile(rf"^(?:\[(?P<bname>{_NAME})\]|(?P<name>{_NAME}))[ \t]*:(?![\d/])[ \t]*(?P<text>.*)$", re.S)


def plausible_name(name: str) -> bool:
    """Whether an unknown ``NAME:`` prefix looks like a speaker name and not like the start
    of a sentence: at most four words, 40 characters, every word capitalised or a number
    ("DR. LEE", "Speaker 2", "SPEAKER_01", "Mary-Ann O'Neil"; not "And then she said")."""
    if len(name) > 40:
        return False
    return all(w[0].isupper() or w[0].isdigit() for w in name.split())


def split_speaker(line: str, is_known) -> tuple[str | None, str]:
    """``(name, rest)`` when ``line`` starts with a speaker prefix, else ``(None, line)``.

    ``is_known(name)`` says whether a name is known (built in or mapped by the user); such
    names are accepted in any spelling, unknown ones only when :func:`plausible_name`.
    """
    m = SPEAKER_PREFIX.match(line)
    if not m:
        return None, line
    name = clean_text(m.group("bname") or m.group("name"))
    if is_known(name) or plausible_name(name):
        return name, m.group("text")
    return None, line


#: Largest step back in time (seconds) that is repaired rather than refused: human
#: transcribers slip by a second around interruptions (``[00:13:48]`` then ``[00:13:47]``).
MAX_TIME_SLIP = 2.0


def repair_time_slip(
    start: float, prev: float | None, meta: dict, *, strict: bool, path, line: int | None, message: str
) -> float:
    """A start time checked against the previous one: ``start`` when not earlier; ``prev`` when
    earlier by at most :data:`MAX_TIME_SLIP` seconds (clamped, recorded in
    ``meta["repairs"]``); else, or whenever ``strict``, RuptureError(``message``) at ``line``."""
    if prev is None or start >= prev:
        return start
    back = prev - start
    if strict or back > MAX_TIME_SLIP + 1e-9:
        if not strict:
            message += f" by {back:.3g} s (only slips up to {MAX_TIME_SLIP:g} s are repaired)"
        raise RuptureError(message, path, line)
    meta.setdefault("repairs", []).append({"kind": "timestamp_clamped", "line": line, "from": start, "to": prev})
    return prev
