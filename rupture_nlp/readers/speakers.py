"""Speaker names to roles, and pieces to turns.

Built-in names (any case): ``T``, ``Therapist``, ``Counselor``, ``Counsellor`` are the
therapist; ``C``, ``P``, ``Client``, ``Patient`` the client. Any other name needs a mapping
(``--speakers "DR. LEE=therapist,MARIA=client"``); without one, reading fails with one error
that lists every unmapped name found.

For batch jobs, ``speakers="first"`` (``--speakers-from-first``) gives the other names their
roles by who talks first: the first of them to talk is the therapist, the next one the client
(a role a built-in name already holds is skipped). More names than free roles is an error.
The names given so are kept in the session's ``meta["speakers_from_first"]``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Mapping

from ..errors import RuptureError
from .base import RawTranscript, Turn, TurnPiece, clean_text

KNOWN_SPEAKERS: dict[str, str] = {
    "t": "therapist",
    "therapist": "therapist",
    "counselor": "therapist",
    "counsellor": "therapist",
    "c": "client",
    "p": "client",
    "client": "client",
    "patient": "client",
}
#: Words accepted on the right of ``NAME=ROLE``.
ROLE_WORDS: dict[str, str] = {**KNOWN_SPEAKERS, "th": "therapist", "cl": "client", "pt": "client"}

SpeakerMap = Mapping[str, str]
#: The ``speakers`` value that gives roles by order of speaking (see the module docstring).
FROM_FIRST = "first"


def from_first(spec: object) -> bool:
    """Whether a ``speakers`` value asks for roles by order of speaking."""
    return isinstance(spec, str) and spec.strip().casefold() == FROM_FIRST


def name_key(name: str) -> str:
    """The form names are compared in: case-folded, single spaces, no trailing dot or colon."""
    return clean_text(name).casefold().rstrip(".:").strip()


def parse_speakers(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"DR. LEE=therapist, MARIA=client"`` (or a dict) -> ``{name_key: role}``; ``"first"``
    (see :data:`FROM_FIRST`) gives ``{}``.

    Raises RuptureError on a malformed entry or an unknown role.
    """
    if spec is None or from_first(spec):
        return {}
    items = (
        spec.items()
        if isinstance(spec, Mapping)
        else (_split_entry(e) for e in str(spec).replace(";", ",").split(",") if e.strip())
    )
    out: dict[str, str] = {}
    for name, role in items:
        role_key = name_key(str(role))
        if role_key not in ROLE_WORDS:
            raise RuptureError(f"--speakers: role for {name!r} must be 'therapist' or 'client', got {role!r}")
        if not name_key(str(name)):
            raise RuptureError("--speakers: empty speaker name")
        out[name_key(str(name))] = ROLE_WORDS[role_key]
    return out


def _split_entry(entry: str) -> tuple[str, str]:
    if "=" not in entry:
        raise RuptureError(f"--speakers: expected NAME=therapist or NAME=client, got {entry.strip()!r}")
    name, role = entry.rsplit("=", 1)
    return name.strip(), role.strip()


class SpeakerResolver:
    """Maps speaker names to roles with the built-in names and a user mapping (which wins);
    ``first``: other names get roles by order of speaking (in :func:`build_turns`)."""

    def __init__(self, mapping: SpeakerMap | None = None, first: bool = False):
        self.mapping = {name_key(k): v for k, v in (mapping or {}).items()}
        self.first = first
        self._cache: dict[str, str | None] = {}

    @classmethod
    def of(cls, spec: str | Mapping[str, str] | None) -> "SpeakerResolver":
        """The resolver for a ``speakers`` value (a mapping, ``"first"`` or None)."""
        return cls(parse_speakers(spec), first=from_first(spec))

    def assign(self, name: str, role: str) -> None:
        self.mapping[name_key(name)] = role
        self._cache.clear()

    def role(self, name: str) -> str | None:
        try:
            return self._cache[name]
        except KeyError:
            k = name_key(name)
            role = self._cache[name] = self.mapping.get(k) or KNOWN_SPEAKERS.get(k)
            return role

    def is_known(self, name: str) -> bool:
        return self.role(name) is not None


def build_turns(raw: RawTranscript, resolver: SpeakerResolver, path: str | Path) -> list[Turn]:
    """Resolve roles and merge consecutive pieces of one speaker into turns.

    Raises RuptureError listing every unmapped speaker name (with its first line and count),
    or when the transcript has no text at all. With ``resolver.first`` the unmapped names take
    the free roles in order of speaking (recorded in ``raw.meta["speakers_from_first"]``).
    """
    unknown: Counter[str] = Counter()
    first_line: dict[str, int | None] = {}
    spelled: dict[str, str] = {}
    known: set[str] = set()  # labels already found known (a quicker test than the resolver's)
    for p in raw.pieces:
        label = p.role if p.role is not None else p.speaker_name
        if label is not None and label not in known:
            if resolver.is_known(label):
                known.add(label)
                continue
            k = name_key(label)
            unknown[k] += 1
            first_line.setdefault(k, p.line)
            spelled.setdefault(k, label)
    if unknown and resolver.first:
        held = {resolver.role(label) for label in known}
        free = [r for r in ("therapist", "client") if r not in held]
        if len(unknown) <= len(free):
            for k, role in zip(unknown, free):  # a Counter keeps the order names were first met
                resolver.assign(spelled[k], role)
            raw.meta["speakers_from_first"] = {spelled[k]: role for k, role in zip(unknown, free)}
            unknown.clear()
    if unknown:
        # The names are quoted although they come from the transcript: the user has to type
        # them into --speakers, and speaker labels are not what people said.
        names = sorted(unknown, key=lambda k: first_line[k] or 0)
        too_many = "more speakers than free roles to give by who talks first; " if resolver.first else ""
        shown = ", ".join(f"{spelled[k]!r} ({unknown[k]}x, first at line {first_line[k]})" for k in names[:8])
        more = f" and {len(names) - 8} more" if len(names) > 8 else ""
        example = ",".join(f"{spelled[k]}={'therapist' if i == 0 else 'client'}" for i, k in enumerate(names[:2]))
        raise RuptureError(
            f'{too_many}speaker name(s) not known: {shown}{more}; say who is who with --speakers "{example}" '
            "(roles: therapist, client)",
            path,
            first_line[names[0]],
        )
    turns: list[Turn] = []
    keys: dict[str, str] = {}
    key_of: dict[tuple[str | None, str], tuple[str, str]] = {}  # (role, name) -> turn key
    cur_key: tuple[str, str] | None = None
    texts: list[str] = []
    pieces: list[TurnPiece] = []
    length = 0
    role = name = ""
    line: int | None = None

    def close() -> None:
        if texts:
            turns.append(Turn(speaker=role, speaker_name=name, text=" ".join(texts), pieces=list(pieces), line=line))

    for p in raw.pieces:
        if not p.text:
            continue
        if p.speaker_name is None:
            if cur_key is None:
                raise RuptureError(
                    "text before the first speaker label; start each turn with a label such as 'T:' or 'Client:'",
                    path,
                    p.line,
                )
            key = cur_key
        else:
            key = key_of.get((p.role, p.speaker_name))
            if key is None:
                role_word = p.role if p.role is not None else p.speaker_name
                key = key_of[(p.role, p.speaker_name)] = (
                    resolver.role(role_word) or "",
                    keys.get(p.speaker_name) or keys.setdefault(p.speaker_name, name_key(p.speaker_name)),
                )
        if key != cur_key:
            close()
            texts, pieces, length = [], [], 0
            cur_key, role, line = key, key[0], p.line
            name = p.speaker_name or name
        if texts:
            length += 1
        pieces.append(TurnPiece(length, length + len(p.text), p.start, p.end, p.line))
        texts.append(p.text)
        length += len(p.text)
    close()
    if not turns:
        raise RuptureError("no transcript text found (only speaker labels or blank lines)", path)
    return turns
