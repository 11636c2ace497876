"""Transcript readers: one small module per input format, plus format and encoding detection.

:func:`read_transcript` reads any supported non-JSONL file into a
:class:`~rupture_nlp.readers.base.RawTranscript`; :func:`read_turns` also resolves speaker
roles and joins consecutive pieces of one speaker into turns. Canonical JSONL is not read
here: it is streamed by :func:`rupture_nlp.records.read_sessions` (see
:func:`rupture_nlp.ingest.load_sessions`).

Formats: ``txt`` (speaker prefixes, optional timestamps), ``csv``, ``tsv``, ``vtt``, ``srt``,
``jsonl``. Detection: unmistakable content first (a ``WEBVTT`` header, an SRT cue, a JSON
object), then the file extension, then a CSV-like header; anything else is plain text.

Repairs and notices: small damage is repaired unless ``strict`` (timestamps slipping back at
most :data:`~rupture_nlp.readers.base.MAX_TIME_SLIP` seconds, control characters, lines in
another encoding) and recorded in ``meta["repairs"]``; overlapping cues and transcripts with
one speaker role only are recorded in ``meta["notices"]``. Each file's repairs and notices
are logged as one warning line, ``"<path>: <what>; <what>"``, on this module's logger.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable, Mapping

from ..errors import RuptureError
from .base import Piece, RawTranscript, Turn, TurnPiece
from .encoding import HEAD_BYTES, check_not_binary, decode, decode_head, read_bytes, read_head
from .speakers import KNOWN_SPEAKERS, SpeakerResolver, build_turns, parse_speakers
from .srt import read_srt
from .table import looks_like_table, read_table, sniff_delimiter
from .text import has_speaker_lines, read_text
from .vtt import read_vtt

FORMATS = ("txt", "csv", "tsv", "vtt", "srt", "jsonl")
EXTENSIONS = {
    ".txt": "txt", ".text": "txt", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".vtt": "vtt",
    ".webvtt": "vtt", ".srt": "srt", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
}
FORMAT_ALIASES = {"text": "txt", "webvtt": "vtt", "ndjson": "jsonl", "json": "jsonl", "canonical": "jsonl",
                  "subrip": "srt"}
log = logging.getLogger(__name__)
_SRT_START = re.compile(r"^\s*\d+\s*\r?\n\s*\d{1,3}:\d{2}:\d{2}[,.]\d{1,3}\s*-->")

__all__ = ["FORMATS", "Piece", "RawTranscript", "Turn", "TurnPiece", "KNOWN_SPEAKERS", "SpeakerResolver",
           "parse_speakers", "build_turns", "detect_format", "check_format", "read_transcript", "read_turns",
           "check_file"]


def check_format(fmt: str | None) -> str | None:
    """``fmt`` lower-cased, or RuptureError if it is not one of :data:`FORMATS`."""
    if fmt is None:
        return None
    f = fmt.strip().lower().lstrip(".")
    f = FORMAT_ALIASES.get(f, f)
    if f not in FORMATS:
        raise RuptureError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return f


def detect_format(path: str | Path, head_text: str) -> str:
    """The format of a file from its first characters and its extension (see module docstring)."""
    head = head_text.lstrip("\ufeff")
    stripped = head.lstrip()
    if head.startswith("WEBVTT"):
        return "vtt"
    if _SRT_START.match(head):
        return "srt"
    if stripped.startswith('{"'):
        return "jsonl"
    by_ext = EXTENSIONS.get(Path(path).suffix.lower())
    if by_ext is not None:
        return by_ext
    if looks_like_table(stripped):
        return "tsv" if sniff_delimiter(stripped.split("\n", 1)[0]) == "\t" else "csv"
    return "txt"


def check_file(path: Path) -> bytes:
    """The first bytes of a file that exists, is not empty and is not binary (else RuptureError)."""
    if not path.exists():
        raise RuptureError("no such file", path)
    if path.is_dir():
        raise RuptureError("is a directory, not a transcript file", path)
    head = read_head(path)
    if not head:
        raise RuptureError("empty file", path)
    check_not_binary(head, path)
    return head


_READERS: dict[str, Callable[..., RawTranscript]] = {  # (text, path, resolver, *, strict)
    "txt": read_text,
    "csv": lambda text, path, _r, strict: read_table(text, path, strict=strict),
    "tsv": lambda text, path, _r, strict: read_table(text, path, delimiter="\t", strict=strict),
    "vtt": read_vtt,
    "srt": read_srt,
}


def read_transcript(path: str | Path, *, format: str | None = None,
                    speakers: str | Mapping[str, str] | None = None,
                    head: bytes | None = None, strict: bool = False) -> RawTranscript:
    """Read one non-JSONL transcript file into pieces.

    ``format`` overrides detection; ``speakers`` is a ``"NAME=role,..."`` string or a dict.
    ``meta`` of the result holds ``source_file`` (the file name), ``source_format`` and
    ``source_encoding``, and ``repairs``/``notices`` when there are any (see the module
    docstring; ``strict``: refuse instead of repairing). Plain text without any speaker label
    in its first 64 KiB fails before the rest of the file is read. Raises RuptureError on any
    bad input.
    """
    raw = _read(Path(path), format, speakers, head, strict)
    warn(path, raw.meta)
    return raw


def _read(path: Path, format: str | None, speakers: str | Mapping[str, str] | None, head: bytes | None,
          strict: bool) -> RawTranscript:
    head = head if head is not None else check_file(path)
    head_text = decode_head(head)
    if not head_text.strip():
        raise RuptureError("blank file (only whitespace)", path)
    fmt = check_format(format) or detect_format(path, head_text)
    if fmt == "jsonl":
        raise RuptureError("canonical JSONL is not a transcript format for read_transcript; "
                           "use rupture_nlp.ingest.load_sessions", path)
    resolver = SpeakerResolver.of(speakers)
    if fmt == "txt" and not has_speaker_lines(head_text, resolver):
        where = "in the first 64 KiB" if len(head) >= HEAD_BYTES else "in the file"
        raise RuptureError(f"no speaker labels {where}: expected lines such as 'T: ...', "
                           "'Therapist: ...' or 'NAME: ...' (is this a transcript?)", path)
    data = head if len(head) < HEAD_BYTES else read_bytes(path)
    found: dict = {}
    text, encoding = decode(data, path, strict=strict, meta=found)
    raw = _READERS[fmt](text, path, resolver, strict=strict)
    raw.meta.update({"source_file": path.name, "source_encoding": encoding})
    if found:
        raw.meta["repairs"] = found["repairs"] + raw.meta.get("repairs", [])
    return raw


def read_turns(path: str | Path, *, format: str | None = None,
               speakers: str | Mapping[str, str] | None = None,
               head: bytes | None = None, strict: bool = False) -> tuple[list[Turn], dict]:
    """Read a non-JSONL transcript and return ``(turns, meta)`` with speaker roles resolved
    (``meta`` as :func:`read_transcript` gives it; a transcript in which only one role speaks
    is noted in ``meta["notices"]``)."""
    raw = _read(Path(path), format, speakers, head, strict)
    turns = build_turns(raw, SpeakerResolver.of(speakers), path)
    roles = {t.speaker for t in turns}
    if len(roles) == 1:
        raw.meta.setdefault("notices", []).append({"kind": "one_speaker", "speaker": roles.pop(),
                                                   "turns": len(turns)})
    warn(path, raw.meta)
    return turns, raw.meta


def describe(meta: dict) -> str:
    """What ``meta["repairs"]`` and ``meta["notices"]`` of one file say, in one line (``""``
    when there are none): counts and line numbers, never transcript text."""
    items = meta.get("repairs", []) + meta.get("notices", [])
    parts = []
    clamped = [r for r in items if r["kind"] == "timestamp_clamped"]
    if clamped:
        back = max(r["to"] - r["from"] for r in clamped)
        parts.append(f"set {len(clamped)} timestamp(s) that went back in time (by up to {back:.3g} s) to the time "
                     f"before ({_lines([r['line'] for r in clamped])})")
    for r in items:
        kind = r["kind"]
        if kind == "control_chars_removed":
            parts.append(f"removed {r['count']} control character(s) such as NUL (first at line {r['line']})")
        elif kind == "mixed_encoding":
            parts.append(f"decoded {r['count']} line(s) that are not UTF-8 as {r['encoding']} "
                         f"({_lines(r['lines'], r['count'])})")
        elif kind == "overlapping_cues":
            parts.append(f"{r['count']} cue(s) overlap the cue before (first at line {r['line']})")
        elif kind == "one_speaker":
            parts.append(f"only the {r['speaker']} speaks ({r['turns']} turn(s)); check the speaker labels")
    return "; ".join(parts)


def _lines(lines: list, total: int | None = None, shown: int = 5) -> str:
    total = len(lines) if total is None else total
    more = ", ..." if total > shown else ""
    return f"line{'s' if total > 1 else ''} {', '.join(str(n) for n in lines[:shown])}{more}"


def warn(path: str | Path, meta: dict) -> None:
    """Log one warning line for a file's repairs and notices, if it has any."""
    text = describe(meta)
    if text:
        log.warning("%s: %s", path, text)
