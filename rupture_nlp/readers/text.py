"""Plain-text transcripts: one turn per line with a speaker prefix, optional timestamps.

Accepted line shapes (blank lines are ignored)::

    T: How was the week?                        built-in names: T/C/P, Therapist, Client, ...
    DR. LEE: How was the week?                  any NAME: with a --speakers mapping
    [00:01:02] Therapist: How was the week?     [hh:mm:ss], [mm:ss], (mm:ss), [a --> b] ranges
    Therapist: [00:01:02] How was the week?
    Speaker 1  0:03                             a name and a time alone on a line (Otter.ai):
    How was the week?                           the following lines are that speaker's
    Speaker 1 (00:03): How was the week?        a time before the colon (Rev)
    # key: value                                comment lines; "key: value" before the first
                                                turn are kept in meta["header"]

A line without a prefix continues the previous turn. Timestamps are start times; a line's end
is taken from the next timestamp (see :mod:`rupture_nlp.segment`).

Format ``txt``: what a file is when no other format takes it. A file without any speaker label
in its first 64 KiB is refused before the rest of it is read (:func:`check_head`).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import RuptureError
from .base import CLOCK, Piece, RawTranscript, clean_text, parse_clock, plausible_name, repair_time_slip, split_speaker
from .registry import FALLBACK, InputFormat, register_format
from .speakers import SpeakerResolver


def _range(tag: str = "") -> str:
    """A clock time or a range of two, as named groups ``a{tag}`` and ``b{tag}``."""
    return rf"(?P<a{tag}>{CLOCK})(?:\s*(?:-->|->|–|—|-|to)\s*(?P<b{tag}>{CLOCK}))?"


_TS_BRACKETED = re.compile(rf"^(?:\[\s*{_range()}\s*\]|\(\s*{_range('1')}\s*\))\s*")
_TS_BARE = re.compile(rf"^{_range()}\s+")
_NAME_TIME_COLON = re.compile(
    rf"^(?P<name>[^\W\d_][\w.'’&-]*(?:[ \t]+[\w.'’&-]+){{0,3}}?)[ \t]*"
    rf"[\[(](?P<t>{CLOCK})[\])][ \t]*:[ \t]*(?P<text>.*)$"
)
_NAME_AND_TIME = re.compile(
    rf"^(?P<name>[^\W\d_][\w.'’&-]*(?:[ \t]+[\w.'’&-]+){{0,3}}?)[ \t]+[\[(]?(?P<t>{CLOCK})[\])]?$"
)
_COMMENT = re.compile(r"^#(?:[ \t#]|$)")
_HEADER_FIELD = re.compile(r"^#+[ \t]*([\w .-]{1,40}?)[ \t]*:[ \t]*(.*)$")


def _timestamp(line: str) -> tuple[str | None, str | None, str]:
    """``(start, end, rest)`` of a line beginning with a bracketed timestamp or range."""
    m = _TS_BRACKETED.match(line)
    if not m:
        return None, None, line
    a = m.group("a1") or m.group("a")
    b = m.group("b1") or m.group("b")
    return a, b, line[m.end() :]


def parse_line(line: str, resolver: SpeakerResolver) -> tuple[str | None, str | None, str | None, str, bool]:
    """Split one stripped, non-blank line into ``(speaker, start, end, text, is_turn_line)``.

    ``is_turn_line`` is true when the line starts a turn (has a speaker).
    """
    a, b, rest = _timestamp(line)
    if a is None:
        m = _TS_BARE.match(line)
        if m:
            name, after = split_speaker(line[m.end() :], resolver.is_known)
            if name is not None:
                return name, m.group("a"), m.group("b"), after, True
    m = _NAME_TIME_COLON.match(rest)  # "Speaker 1 (00:12):" as Rev writes it
    if m and (resolver.is_known(m.group("name")) or plausible_name(m.group("name"))):
        return clean_text(m.group("name")), a or m.group("t"), b, m.group("text"), True
    name, text = split_speaker(rest, resolver.is_known)
    if name is not None:
        if a is None:
            a2, b2, text2 = _timestamp(text)
            if a2 is not None:
                return name, a2, b2, text2, True
        return name, a, b, text, True
    m = _NAME_AND_TIME.match(rest)
    if m and (resolver.is_known(m.group("name")) or plausible_name(m.group("name"))):
        return clean_text(m.group("name")), a or m.group("t"), b, "", True
    return None, a, b, rest, False


def has_speaker_lines(text: str, resolver: SpeakerResolver, max_lines: int = 2000) -> bool:
    """Whether any of the first ``max_lines`` non-blank lines starts a turn."""
    n = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or _COMMENT.match(line):
            continue
        if parse_line(line, resolver)[4]:
            return True
        n += 1
        if n >= max_lines:
            break
    return False


def read_text(text: str, path: str | Path, resolver: SpeakerResolver, *, strict: bool = False) -> RawTranscript:
    """Parse a plain-text transcript (see the module docstring).

    Raises RuptureError for text before the first turn, a malformed timestamp or a
    timestamp that goes back in time; a slip back of at most
    :data:`~rupture_nlp.readers.base.MAX_TIME_SLIP` seconds is clamped to the time before
    (recorded in ``meta["repairs"]``) unless ``strict``.
    """
    meta: dict = {"source_format": "txt"}
    pieces: list[Piece] = []
    header: dict[str, str] = {}
    buf: list[str] = []
    prev_start: float | None = None
    prev_line = 0

    def flush() -> None:
        if pieces:
            pieces[-1].text = clean_text(" ".join(buf))

    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if _COMMENT.match(line):
            m = _HEADER_FIELD.match(line)
            if m and not pieces and m.group(2):
                header[m.group(1).strip()] = m.group(2).strip()
            continue
        name, a, b, rest, is_turn = parse_line(line, resolver)
        start = end = None
        if a is not None:
            try:
                start = parse_clock(a)
                end = parse_clock(b) if b else None
            except ValueError:
                raise RuptureError("malformed timestamp at the start of the line", path, no) from None
            if end is not None and end < start:
                raise RuptureError("timestamp range ends before it starts", path, no)
            if prev_start is not None and start < prev_start:
                start = repair_time_slip(
                    start,
                    prev_start,
                    meta,
                    strict=strict,
                    path=path,
                    line=no,
                    message=(f"timestamp goes back in time (earlier than the one at line {prev_line})"),
                )
                end = end if end is None else max(end, start)
            prev_start, prev_line = start, no
        if is_turn or start is not None:
            if not pieces and not is_turn:
                raise RuptureError(
                    "text before the first speaker label; start each turn with a label such as 'T:' or 'Client:'",
                    path,
                    no,
                )
            flush()
            pieces.append(Piece(name, "", start, end, no))
            buf = [rest]
        elif not pieces:
            raise RuptureError(
                "text before the first speaker label; start each turn with a label such as 'T:' or 'Client:'", path, no
            )
        else:
            buf.append(rest)
    flush()
    if header:
        meta["header"] = header
    return RawTranscript([p for p in pieces if p.text], meta)


def check_head(head: str, resolver: SpeakerResolver, path: Path, whole: bool) -> None:
    """RuptureError when no line of ``head`` (the whole file if ``whole``) starts a turn."""
    if not has_speaker_lines(head, resolver):
        where = "in the file" if whole else "in the first 64 KiB"
        raise RuptureError(
            f"no speaker labels {where}: expected lines such as 'T: ...', "
            "'Therapist: ...' or 'NAME: ...' (is this a transcript?)",
            path,
        )


FORMAT = register_format(
    InputFormat(
        "txt",
        read=read_text,
        extensions=(".txt", ".text"),
        aliases=("text",),
        sniff=lambda head: True,
        priority=FALLBACK,
        check_head=check_head,
    )
)
