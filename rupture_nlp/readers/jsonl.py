"""Canonical JSONL (:mod:`rupture_nlp.records`) as an input format: whole sessions, streamed.

Detected by a head that starts with a JSON object (``{"``) or by its extension (``.jsonl``,
``.ndjson``, ``.json``). Its sessions pass through unchanged (same utterances, ids, labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..errors import RuptureError
from ..records import Session, read_sessions
from .registry import InputFormat, register_format


def looks_like_jsonl(head: str) -> bool:
    """Whether the file starts with a JSON object."""
    return head.lstrip().startswith('{"')


def sessions(path: Path) -> Iterator[Session]:
    """The sessions of a canonical JSONL file, streamed; RuptureError when it has none."""
    n = 0
    for session in read_sessions(path):
        n += 1
        yield session
    if not n:
        raise RuptureError("no sessions in this JSONL file (only blank lines)", path)


FORMAT = register_format(
    InputFormat(
        "jsonl",
        sessions=sessions,
        extensions=(".jsonl", ".ndjson", ".json"),
        aliases=("ndjson", "json", "canonical"),
        sniff=looks_like_jsonl,
    )
)
