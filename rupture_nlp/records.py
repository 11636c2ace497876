"""The canonical record: a session is a list of utterances. Every stage reads and writes it.

On disk it is JSON Lines, one session per line::

    {"session_id": "s01", "meta": {...},
     "utterances": [{"id": "s01-u0001", "turn": 0, "speaker": "therapist",
                     "speaker_name": "Dr. Lee", "text": "...", "start": 12.5, "end": 15.1,
                     "labels": ["repair/invite_discussion"],
                     "scores": {"repair/invite_discussion": 0.93}}]}

``speaker`` is the role (``therapist`` or ``client``); ``start``/``end`` are seconds or null;
``labels`` (gold or predicted) and ``scores`` (predicted probabilities, 0..1) are optional.
Keys this module does not know are kept in ``extra`` and written back unchanged, so a
round trip through any stage loses nothing. The JSON Schema is ``data/session.schema.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .atomic import atomic_write
from .errors import RuptureError

ROLES = ("therapist", "client")
_UTT_KEYS = (
    "id",
    "turn",
    "speaker",
    "speaker_name",
    "text",
    "start",
    "end",
    "char_start",
    "char_end",
    "events",
    "labels",
    "scores",
)


@dataclass
class Utterance:
    """One utterance (sentence-like unit) of one speaker's turn.

    ``start``/``end`` are seconds from the start of the recording (None when unknown);
    ``char_start``/``char_end`` are offsets into the text of its turn
    (``turn_text[char_start:char_end] == text``); ``events`` lists bracketed non-verbal
    events in the text (``["laughs"]``); ``scores`` maps label id to probability.
    """

    id: str
    turn: int
    speaker: str
    text: str
    start: float | None = None
    end: float | None = None
    speaker_name: str | None = None
    char_start: int | None = None
    char_end: int | None = None
    events: list[str] | None = None
    labels: list[str] | None = None
    scores: dict[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "turn": self.turn, "speaker": self.speaker}
        if self.speaker_name is not None:
            d["speaker_name"] = self.speaker_name
        d["text"] = self.text
        d["start"] = self.start
        d["end"] = self.end
        for k in ("char_start", "char_end", "events", "labels", "scores"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Utterance":
        extra = {k: v for k, v in d.items() if k not in _UTT_KEYS}
        return cls(
            id=d["id"],
            turn=int(d["turn"]),
            speaker=d["speaker"],
            text=d["text"],
            start=d.get("start"),
            end=d.get("end"),
            speaker_name=d.get("speaker_name"),
            char_start=d.get("char_start"),
            char_end=d.get("char_end"),
            events=d.get("events"),
            labels=list(d["labels"]) if d.get("labels") is not None else None,
            scores=dict(d["scores"]) if d.get("scores") is not None else None,
            extra=extra,
        )


@dataclass
class Session:
    """A whole session: its id, free metadata and its utterances in spoken order."""

    session_id: str
    utterances: list[Utterance] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {"session_id": self.session_id, "meta": self.meta, "utterances": [u.to_dict() for u in self.utterances]}
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Session":
        extra = {k: v for k, v in d.items() if k not in ("session_id", "meta", "utterances")}
        return cls(
            session_id=d["session_id"],
            meta=dict(d.get("meta") or {}),
            utterances=[Utterance.from_dict(u) for u in d["utterances"]],
            extra=extra,
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def turns(self) -> list[list[Utterance]]:
        """The utterances grouped by turn index, in order."""
        out: list[list[Utterance]] = []
        for u in self.utterances:
            if out and out[-1][0].turn == u.turn:
                out[-1].append(u)
            else:
                out.append([u])
        return out


def _check_session_dict(d: Any) -> str | None:
    """A short reason why ``d`` is not a session record, or None. Quick structural check;
    ``rupture validate`` does the full JSON Schema check."""
    if not isinstance(d, dict):
        return "a session must be a JSON object"
    if not isinstance(d.get("session_id"), str) or not d["session_id"]:
        return "missing or empty 'session_id'"
    utts = d.get("utterances")
    if not isinstance(utts, list):
        return "missing 'utterances' list"
    for i, u in enumerate(utts):
        if not isinstance(u, dict):
            return f"utterance {i} is not an object"
        for k, t in (("id", str), ("turn", int), ("speaker", str), ("text", str)):
            if not isinstance(u.get(k), t) or isinstance(u.get(k), bool):
                return f"utterance {i}: missing or invalid '{k}'"
        if u["speaker"] not in ROLES:
            return f"utterance {i}: speaker must be 'therapist' or 'client'"
        for k in ("start", "end"):
            v = u.get(k)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)):
                return f"utterance {i}: '{k}' must be a number of seconds or null"
    return None


def session_from_json_line(line: str, path: str | Path = "<input>", lineno: int | None = None) -> Session:
    """Parse one JSONL line into a Session; RuptureError (with file and line) if it is not one."""
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise RuptureError(f"invalid JSON ({e.msg} at column {e.colno})", path, lineno) from None
    why = _check_session_dict(d)
    if why:
        raise RuptureError(f"not a session record: {why}", path, lineno)
    return Session.from_dict(d)


def read_sessions(path: str | Path) -> Iterator[Session]:
    """Stream the sessions of a canonical JSONL file, one at a time (bounded memory).

    Blank lines are skipped. Raises RuptureError naming the file and line on the first bad line.
    """
    path = Path(path)
    try:
        f = path.open(encoding="utf-8-sig")
    except OSError as e:
        raise RuptureError(f"cannot open: {e.strerror}", path) from None
    with f:
        try:
            for no, line in enumerate(f, 1):
                if line.strip():
                    yield session_from_json_line(line, path, no)
        except UnicodeDecodeError:
            raise RuptureError("not UTF-8 text (canonical JSONL must be UTF-8)", path) from None


def write_sessions(path: str | Path, sessions: Iterable[Session]) -> int:
    """Write sessions as canonical JSONL atomically; returns the number written."""
    n = 0
    with atomic_write(path) as f:
        for s in sessions:
            f.write(s.to_json() + "\n")
            n += 1
    return n
