"""Check canonical JSONL files against the session JSON Schema and a label schema.

Beyond the JSON Schema: duplicate ids, turns going backwards, end before start, empty or
blank texts, labels not in the label schema, and labels whose schema speaker is the other role.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import jsonschema

from .schema import DATA_DIR, LabelSchema


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@lru_cache(maxsize=1)
def session_json_schema() -> dict:
    """The JSON Schema of one canonical session line (``data/session.schema.json``)."""
    return json.loads((DATA_DIR / "session.schema.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(session_json_schema())


def _where(err: jsonschema.ValidationError) -> str:
    return "/".join(str(p) for p in err.absolute_path) or "(record)"


def check_record(d: object, labels: LabelSchema | None = None) -> list[str]:
    """Every problem of one parsed session record, as short messages (no transcript text)."""
    msgs = []
    for err in sorted(_validator().iter_errors(d), key=lambda e: list(map(str, e.absolute_path))):
        if err.validator in ("enum", "type", "required", "minimum", "maximum", "minLength", "uniqueItems"):
            what = {
                "enum": f"must be one of {err.validator_value}",
                "type": f"must be of type {err.validator_value}",
                "required": err.message.replace("'", '"') if err.validator == "required" else "",
                "minimum": f"must be >= {err.validator_value}",
                "maximum": f"must be <= {err.validator_value}",
                "minLength": "must not be empty",
                "uniqueItems": "has repeated items",
            }[err.validator]
        else:
            what = err.message[:120]
        msgs.append(f"{_where(err)}: {what}")
    if msgs or not isinstance(d, dict):
        return msgs
    ids: set[str] = set()
    prev_turn = -1
    speaker_of = {l.id: l.speaker for l in labels.labels} if labels is not None else {}
    for i, u in enumerate(d["utterances"]):
        if u["id"] in ids:
            msgs.append(f"utterances/{i}/id: duplicate utterance id {u['id']!r}")
        ids.add(u["id"])
        if u["turn"] < prev_turn:
            msgs.append(f"utterances/{i}/turn: turn index goes backwards")
        prev_turn = u["turn"]
        s, e = u.get("start"), u.get("end")
        if s is not None and e is not None and e < s:
            msgs.append(f"utterances/{i}: end ({e}) is before start ({s})")
        if not u["text"].strip():
            msgs.append(f"utterances/{i}/text: empty or blank")
        if labels is not None:
            for field in ("labels", "scores"):
                vals = u.get(field) or []
                unknown = labels.unknown(vals)
                if unknown:
                    msgs.append(f"utterances/{i}/{field}: not in schema '{labels.name}': {', '.join(unknown)}")
            wrong = [l for l in u.get("labels") or [] if speaker_of.get(l, "any") not in ("any", u["speaker"])]
            if wrong:
                msgs.append(
                    f"utterances/{i}/labels: {speaker_of[wrong[0]]} label(s) on a {u['speaker']} "
                    f"utterance (schema '{labels.name}'): {', '.join(wrong)}"
                )
    return msgs


def validate_file(path: str | Path, labels: LabelSchema | None = None) -> Iterator[Problem]:
    """Yield every problem in a canonical JSONL file, each with its line number."""
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as e:
        yield Problem(str(path), None, f"cannot open: {e.strerror}")
        return
    seen_sessions: dict[str, int] = {}
    n = 0
    with f:
        for no, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if no == 1 else "utf-8")
            except UnicodeDecodeError:
                yield Problem(str(path), no, "not UTF-8 text")
                continue
            if not line.strip():
                continue
            n += 1
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                yield Problem(str(path), no, f"invalid JSON ({e.msg} at column {e.colno})")
                continue
            for m in check_record(d, labels):
                yield Problem(str(path), no, m)
            if isinstance(d, dict) and isinstance(d.get("session_id"), str):
                sid = d["session_id"]
                if sid in seen_sessions:
                    yield Problem(str(path), no, f"session_id {sid!r} already used on line {seen_sessions[sid]}")
                else:
                    seen_sessions[sid] = no
    if n == 0:
        yield Problem(str(path), None, "no sessions (the file is empty)")
