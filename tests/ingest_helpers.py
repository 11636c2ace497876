"""Shared helpers of the ingestion tests: writing small transcripts, reading them back."""

from __future__ import annotations

import sys
from pathlib import Path

from rupture_nlp.ingest import load_docs, load_sessions
from rupture_nlp.records import Session


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``content`` (text in ``encoding``, or raw bytes) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def one_session(path: Path, **kw) -> Session:
    """The single session of a transcript file."""
    sessions = list(load_sessions(path, **kw))
    assert len(sessions) == 1
    return sessions[0]


def texts(session: Session) -> list[str]:
    return [u.text for u in session.utterances]


def turn_texts(path: Path, **kw) -> list[str]:
    """The turn texts of a file as the pipeline built them (from the Doc's turn spans)."""
    doc = next(load_docs(path, **kw))
    return [t.text for t in doc.spans["turns"]]


def check_offsets(path: Path, session: Session, **kw) -> None:
    """Every utterance's offsets slice its turn text to exactly its text."""
    turns = turn_texts(path, **kw)
    for u in session.utterances:
        assert turns[u.turn][u.char_start : u.char_end] == u.text, u.id


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the ``rupture`` console entry point in-process: (exit code, stdout, stderr)."""
    from rupture_nlp.cli import main

    monkeypatch.setattr(sys, "argv", ["rupture", *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err
