"""Transcript readers: one small module per input format, plus format and encoding detection.

:func:`read_transcript` reads any supported non-JSONL file into a
:class:`~rupture_nlp.readers.base.RawTranscript`; :func:`read_turns` also resolves speaker
roles and joins consecutive pieces of one speaker into turns. Canonical JSONL is not read
here: it is streamed by :func:`rupture_nlp.records.read_sessions` (see
:func:`rupture_nlp.ingest.load_sessions`).

Formats: ``txt`` (speaker prefixes, optional timestamps), ``csv``, ``tsv``, ``vtt``, ``srt``,
``jsonl``. Detection: unmistakable content first (a ``WEBVTT`` header, an SRT cue, a JSON
object), then the file extension, then a CSV-like header; anything else is plain text.
"""
from __future__ import annotations

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


_READERS: dict[str, Callable[[str, Path, SpeakerResolver], RawTranscript]] = {
    "txt": read_text,
    "csv": lambda text, path, _r: read_table(text, path),
    "tsv": lambda text, path, _r: read_table(text, path, delimiter="\t"),
    "vtt": read_vtt,
    "srt": read_srt,
}


def read_transcript(path: str | Path, *, format: str | None = None,
                    speakers: str | Mapping[str, str] | None = None,
                    head: bytes | None = None) -> RawTranscript:
    """Read one non-JSONL transcript file into pieces.

    ``format`` overrides detection; ``speakers`` is a ``"NAME=role,..."`` string or a dict.
    ``meta`` of the result holds ``source_file`` (the file name), ``source_format`` and
    ``source_encoding``. Plain text without any speaker label in its first 64 KiB fails
    before the rest of the file is read. Raises RuptureError on any bad input.
    """
    path = Path(path)
    head = head if head is not None else check_file(path)
    head_text = decode_head(head)
    if not head_text.strip():
        raise RuptureError("blank file (only whitespace)", path)
    fmt = check_format(format) or detect_format(path, head_text)
    if fmt == "jsonl":
        raise RuptureError("canonical JSONL is not a transcript format for read_transcript; "
                           "use rupture_nlp.ingest.load_sessions", path)
    resolver = SpeakerResolver(parse_speakers(speakers))
    if fmt == "txt" and not has_speaker_lines(head_text, resolver):
        where = "in the first 64 KiB" if len(head) >= HEAD_BYTES else "in the file"
        raise RuptureError(f"no speaker labels {where}: expected lines such as 'T: ...', "
                           "'Therapist: ...' or 'NAME: ...' (is this a transcript?)", path)
    data = head if len(head) < HEAD_BYTES else read_bytes(path)
    text, encoding = decode(data, path)
    raw = _READERS[fmt](text, path, resolver)
    raw.meta.update({"source_file": path.name, "source_encoding": encoding})
    return raw


def read_turns(path: str | Path, *, format: str | None = None,
               speakers: str | Mapping[str, str] | None = None,
               head: bytes | None = None) -> tuple[list[Turn], dict]:
    """Read a non-JSONL transcript and return ``(turns, meta)`` with speaker roles resolved."""
    raw = read_transcript(path, format=format, speakers=speakers, head=head)
    turns = build_turns(raw, SpeakerResolver(parse_speakers(speakers)), path)
    return turns, raw.meta
