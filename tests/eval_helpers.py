"""Hand-written data shared by the evaluation tests (tests/test_eval_*.py)."""

from __future__ import annotations

import random
from pathlib import Path

from rupture_nlp.records import Session, Utterance, write_sessions
from rupture_nlp.schema import LabelSchema, load_schema

TOY_SCHEMA = {
    "name": "toy",
    "categories": [{"id": "wd", "exclusive": False}, {"id": "rep", "exclusive": False}],
    "labels": [
        {"id": "wd/x", "category": "wd", "speaker": "client", "description": "x"},
        {"id": "wd/y", "category": "wd", "speaker": "client", "description": "y"},
        {"id": "rep/z", "category": "rep", "speaker": "therapist", "description": "z"},
        {"id": "rep/w", "category": "rep", "speaker": "therapist", "description": "w"},
    ],
}


def toy_schema(exclusive_wd: bool = False) -> LabelSchema:
    d = {**TOY_SCHEMA, "categories": [{"id": "wd", "exclusive": exclusive_wd}, {"id": "rep", "exclusive": False}]}
    return LabelSchema.from_dict(d)


def make_session(
    sid: str,
    rows: list[tuple[str, str, list[str] | None]],
    pauses: dict[int, float] | None = None,
    split: str | None = None,
) -> Session:
    """A session from (speaker 'T'/'C', text, labels) rows, with simple times (pauses: index -> seconds)."""
    utts, t, turn, prev = [], 1.0, -1, None
    for i, (spk, text, labels) in enumerate(rows):
        if spk != prev:
            turn, prev = turn + 1, spk
        t += (pauses or {}).get(i, 0.4)
        end = t + 0.3 * len(text.split())
        utts.append(
            Utterance(
                id=f"{sid}-u{i + 1:04d}",
                turn=turn,
                speaker="therapist" if spk == "T" else "client",
                text=text,
                start=round(t, 2),
                end=round(end, 2),
                labels=labels,
            )
        )
        t = end
    return Session(session_id=sid, utterances=utts, meta={"split": split} if split else {})


# The hand-computed example: 3 sessions, 8 utterances, gold vs predicted label sets.
# Expected values are worked out in tests/test_eval_metrics.py.
HAND_ROWS = [
    ("s1", [({"wd/x"}, {"wd/x"}), ({"wd/x", "wd/y"}, {"wd/x"}), (set(), {"rep/z"})]),
    ("s2", [({"rep/z"}, {"rep/z"}), ({"wd/y"}, {"wd/x"})]),
    ("s3", [(set(), {"rep/w"}), ({"wd/x"}, set()), ({"rep/z"}, {"rep/z", "wd/y"})]),
]


def hand_example():
    """(sessions with gold labels, P with 0.9 for predicted labels and 0.1 elsewhere, schema)."""
    import numpy as np

    schema = toy_schema()
    sessions, rows = [], []
    for sid, utts in HAND_ROWS:
        sessions.append(make_session(sid, [("C", f"utterance {i}", sorted(g)) for i, (g, _) in enumerate(utts)]))
        for _, pred in utts:
            rows.append([0.9 if l in pred else 0.1 for l in schema.label_ids])
    return sessions, np.array(rows), schema


# An easy, separable toy corpus in the 3RS schema (hand-written utterances, combined at random).
NEUTRAL_T = [
    "How was your week overall?",
    "What would you like to focus on today?",
    "Tell me more about the weekend.",
    "How did you sleep this week?",
    "What happened at work on Monday?",
    "Shall we look at the diary together?",
]
NEUTRAL_C = [
    "I went to see my sister on Sunday.",
    "Work was busy, lots of meetings.",
    "I slept better than last week.",
    "We had dinner with friends on Friday.",
    "The kids were at their grandmother's.",
    "I tried the breathing exercise twice.",
]
MINIMAL = ["Fine.", "Dunno.", "Okay.", "Sure.", "Whatever.", "Maybe."]
COMPLAINT = [
    "You never listen to what I actually say.",
    "You don't understand me at all.",
    "Honestly you are not very good at this.",
    "You keep getting it wrong about me.",
    "You just sit there and judge me.",
    "You don't seem to care about me.",
]
HOMEWORK = [
    "I am not doing that homework sheet again.",
    "These worksheets are pointless homework.",
    "I hate the homework exercises you give.",
    "The homework diary is a waste of my time.",
    "No more homework forms please.",
    "That homework exercise was useless.",
]
INVITE = [
    "Can we talk about what just happened between us?",
    "I wonder how this is feeling between us right now.",
    "Could we pause and look at what is happening between us?",
    "What was it like for you between us just then?",
    "Let's talk about what happened between us a moment ago.",
    "How are things between us at the moment?",
]
VALIDATE = [
    "It makes sense that you feel that way.",
    "That makes sense given what you have been through.",
    "Your reaction makes complete sense to me.",
    "It makes sense to be wary of this.",
    "Of course that makes sense.",
    "That makes a lot of sense.",
]

TOY_CLASSES = [
    ("C", MINIMAL, ["withdrawal/minimal_response"], 4.0),
    ("C", COMPLAINT, ["confrontation/complaint_therapist"], None),
    ("C", HOMEWORK, ["confrontation/complaint_activities"], None),
    ("T", INVITE, ["repair/invite_discussion"], None),
    ("T", VALIDATE, ["repair/validate_defense"], None),
]


def toy_corpus(n_sessions: int, seed: int, utts_per_session: int = 20) -> list[Session]:
    """Sessions mixing neutral talk with clearly marked utterances of five labels."""
    rng = random.Random(seed)
    out = []
    for k in range(n_sessions):
        rows, pauses = [], {}
        for i in range(utts_per_session):
            if rng.random() < 0.45:
                spk, texts, labels, pause = rng.choice(TOY_CLASSES)
                rows.append((spk, rng.choice(texts), list(labels)))
                if pause:
                    pauses[i] = pause
            else:
                spk = rng.choice("TC")
                rows.append((spk, rng.choice(NEUTRAL_T if spk == "T" else NEUTRAL_C), []))
        out.append(make_session(f"toy{seed}-{k:02d}", rows, pauses))
    return out


def write_jsonl(path: Path, sessions: list[Session]) -> Path:
    write_sessions(path, sessions)
    return path


def schema_3rs() -> LabelSchema:
    return load_schema(None)


def train_toy_baselines(root: Path) -> dict:
    """Train both baselines on a toy corpus and save them under ``root/baselines`` (textcat: 4
    epochs). Tests get this once per session from the ``trained_baselines`` fixture of
    ``conftest.py``; treat the directory as read-only."""
    from rupture_nlp.workflow import train_baselines

    schema = schema_3rs()
    train, dev = toy_corpus(12, seed=1), toy_corpus(4, seed=2)
    info = train_baselines(train, dev, schema, root, options={"textcat": {"epochs": 4}})
    return {"root": root, "schema": schema, "train": train, "dev": dev, "test": toy_corpus(5, seed=3), "info": info}
