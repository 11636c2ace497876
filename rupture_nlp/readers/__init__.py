"""Transcript readers: one small module per input format, plus format and encoding detection.

:func:`read_transcript` reads any supported transcript file into a
:class:`~rupture_nlp.readers.base.RawTranscript`; :func:`read_turns` also resolves speaker
roles and joins consecutive pieces of one speaker into turns. Formats of whole sessions
(canonical JSONL) are not read here: :func:`rupture_nlp.ingest.load_sessions` streams them.

Formats: every module of this package that registers an
:class:`~rupture_nlp.readers.registry.InputFormat` (all of them are imported below), and those
of other packages' ``rupture_nlp_formats`` entry points: ``txt`` (speaker prefixes, optional
timestamps), ``csv``, ``tsv``, ``vtt``, ``srt``, ``jsonl``. Detection
(:func:`~rupture_nlp.readers.registry.detect_format`): unmistakable content first (a ``WEBVTT``
header, an SRT cue, a JSON object), then the file extension, then a CSV-like header; anything
else is plain text.

Repairs and notices: small damage is repaired unless ``strict`` (timestamps slipping back at
most :data:`~rupture_nlp.readers.base.MAX_TIME_SLIP` seconds, control characters, lines in
another encoding) and recorded in ``meta["repairs"]``; overlapping cues and transcripts with
one speaker role only are recorded in ``meta["notices"]``. Each file's repairs and notices
are logged as one warning line, ``"<path>: <what>; <what>"``, on this module's logger.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from pathlib import Path
from typing import Mapping

from ..errors import RuptureError
from .base import Piece, RawTranscript, Turn, TurnPiece
from .encoding import HEAD_BYTES, check_not_binary, decode, decode_head, read_bytes, read_head
from .registry import (
    InputFormat,
    aliases,
    check_format,
    detect_format,
    extensions,
    format_names,
    get_format,
    register_format,
    unregister_format,
)
from .speakers import KNOWN_SPEAKERS, SpeakerResolver, build_turns, parse_speakers

# Every module of the package, so that each reader module registers its format.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
del _module

log = logging.getLogger(__name__)

__all__ = [
    "Piece",
    "RawTranscript",
    "Turn",
    "TurnPiece",
    "KNOWN_SPEAKERS",
    "SpeakerResolver",
    "parse_speakers",
    "build_turns",
    "InputFormat",
    "register_format",
    "unregister_format",
    "get_format",
    "format_names",
    "extensions",
    "aliases",
    "detect_format",
    "check_format",
    "read_transcript",
    "read_turns",
    "check_file",
]


def __getattr__(name: str):
    """``FORMATS``, ``EXTENSIONS`` and ``FORMAT_ALIASES``: what the registry holds now (the
    names of the tables these were before it)."""
    if name == "FORMATS":
        return tuple(format_names())
    if name == "EXTENSIONS":
        return extensions()
    if name == "FORMAT_ALIASES":
        return aliases()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def read_transcript(
    path: str | Path,
    *,
    format: str | None = None,
    speakers: str | Mapping[str, str] | None = None,
    head: bytes | None = None,
    strict: bool = False,
) -> RawTranscript:
    """Read one transcript file into pieces.

    ``format`` (a format's name or alias) overrides detection; ``speakers`` is a
    ``"NAME=role,..."`` string or a dict.
    ``meta`` of the result holds ``source_file`` (the file name), ``source_format`` and
    ``source_encoding``, and ``repairs``/``notices`` when there are any (see the module
    docstring; ``strict``: refuse instead of repairing). Plain text without any speaker label
    in its first 64 KiB fails before the rest of the file is read. Raises RuptureError on any
    bad input.
    """
    raw = _read(Path(path), format, speakers, head, strict)
    warn(path, raw.meta)
    return raw


def _read(
    path: Path, format: str | None, speakers: str | Mapping[str, str] | None, head: bytes | None, strict: bool
) -> RawTranscript:
    head = head if head is not None else check_file(path)
    head_text = decode_head(head)
    if not head_text.strip():
        raise RuptureError("blank file (only whitespace)", path)
    fmt = get_format(detect_format(path, head_text) if format is None else format)
    if fmt.read is None:
        raise RuptureError(
            f"{fmt.name} files hold whole sessions, not one transcript; "
            "read them with rupture_nlp.ingest.load_sessions",
            path,
        )
    resolver = SpeakerResolver.of(speakers)
    if fmt.check_head is not None:
        fmt.check_head(head_text, resolver, path, len(head) < HEAD_BYTES)
    data = head if len(head) < HEAD_BYTES else read_bytes(path)
    found: dict = {}
    text, encoding = decode(data, path, strict=strict, meta=found)
    raw = fmt.read(text, path, resolver, strict=strict)
    raw.meta.setdefault("source_format", fmt.name)
    raw.meta.update({"source_file": path.name, "source_encoding": encoding})
    if found:
        raw.meta["repairs"] = found["repairs"] + raw.meta.get("repairs", [])
    return raw


def read_turns(
    path: str | Path,
    *,
    format: str | None = None,
    speakers: str | Mapping[str, str] | None = None,
    head: bytes | None = None,
    strict: bool = False,
) -> tuple[list[Turn], dict]:
    """Read a transcript and return ``(turns, meta)`` with speaker roles resolved
    (``meta`` as :func:`read_transcript` gives it; a transcript in which only one role speaks
    is noted in ``meta["notices"]``)."""
    raw = _read(Path(path), format, speakers, head, strict)
    turns = build_turns(raw, SpeakerResolver.of(speakers), path)
    roles = {t.speaker for t in turns}
    if len(roles) == 1:
        raw.meta.setdefault("notices", []).append({"kind": "one_speaker", "speaker": roles.pop(), "turns": len(turns)})
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
        parts.append(
            f"set {len(clamped)} timestamp(s) that went back in time (by up to {back:.3g} s) to the time "
            f"before ({_lines([r['line'] for r in clamped])})"
        )
    for r in items:
        kind = r["kind"]
        if kind == "control_chars_removed":
            parts.append(f"removed {r['count']} control character(s) such as NUL (first at line {r['line']})")
        elif kind == "mixed_encoding":
            parts.append(
                f"decoded {r['count']} line(s) that are not UTF-8 as {r['encoding']} ({_lines(r['lines'], r['count'])})"
            )
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
