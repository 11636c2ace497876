"""Hand-written data and the tiny model training shared by the model and tagging tests.

The dialogue lines below were written for these tests (they are not from the corpus). Tests get
the tiny model through the session fixture ``tiny_model`` of ``conftest.py`` (a factory:
``tiny_model("lora")`` trains each kind once per test session and returns its directory).
"""

from __future__ import annotations

import random
from pathlib import Path
from unittest import mock

import numpy as np

from rupture_nlp.records import Session, Utterance, read_sessions, write_sessions
from rupture_nlp.schema import LabelSchema

# (speaker, text, labels, pause before in seconds or None for a short gap)
LINES = [
    ("T", "What came up for you when your sister called?", [], None),
    ("C", "Nothing.", ["withdrawal/minimal_response"], 4.0),
    ("T", "It sounded like it stayed with you after the call.", [], None),
    ("C", "I'm fine, honestly, it doesn't bother me at all.", ["withdrawal/denial"], 2.0),
    (
        "T",
        "I notice we keep moving away from it. Can we look at what just happened between us?",
        ["repair/invite_discussion"],
        None,
    ),
    ("C", "These worksheets are pointless, I told you last week.", ["confrontation/complaint_activities"], None),
    (
        "T",
        "You're right that I pushed the worksheets without asking how they fit for you.",
        ["repair/acknowledge_contribution"],
        None,
    ),
    ("C", "You never listen to anything I say.", ["confrontation/complaint_therapist"], None),
    ("T", "Let me explain why we practise this between sessions.", ["repair/illustrate_task_rationale"], None),
    ("C", "Whatever you think is best, you're the expert.", ["withdrawal/deferential_appeasing"], 3.5),
    ("T", "Shall we set the diary aside and talk about the week instead?", ["repair/change_tasks_goals"], None),
    (
        "C",
        "Anyway, my neighbour has this dog that barks all night, it's a long story.",
        ["withdrawal/avoidant_storytelling"],
        None,
    ),
    ("T", "How was the drive in today?", [], None),
    ("C", "Busy, the bridge was closed again.", [], None),
    ("T", "Mm-hmm.", [], None),
    ("C", "I started the new job on Monday.", [], None),
    ("T", "How did the first day go?", [], None),
    ("C", "Better than I expected, people were friendly.", [], None),
    ("C", "I'll never get better, there's no point.", ["withdrawal/self_criticism_hopelessness"], 5.0),
    ("C", "It's not my fault, I was doing what you told me.", ["confrontation/defends_self"], None),
]

TOY_EXCLUSIVE = {
    "name": "toy-exclusive",
    "categories": [{"id": "talk", "exclusive": True}, {"id": "move", "exclusive": False}],
    "labels": [
        {"id": "talk/change", "category": "talk", "speaker": "client", "description": "change talk"},
        {"id": "talk/sustain", "category": "talk", "speaker": "client", "description": "sustain talk"},
        {"id": "move/reflect", "category": "move", "speaker": "therapist", "description": "reflection"},
    ],
}
TOY_MAP = {"withdrawal": "talk/sustain", "confrontation": "talk/change", "repair": "move/reflect"}


def make_session(sid: str, rows: list[tuple[str, str, list[str], float | None]], remap: dict | None = None) -> Session:
    """A canonical session from rows, with times (short gaps unless a pause is given)."""
    utts, t, turn, prev = [], 3.0, -1, None
    for i, (spk, text, labels, pause) in enumerate(rows):
        if spk != prev:
            turn, prev = turn + 1, spk
        t += pause if pause is not None else 0.4
        end = t + 0.35 * len(text.split()) + 0.2
        labs = sorted({remap[l.split("/")[0]] for l in labels}) if remap else list(labels)
        utts.append(
            Utterance(
                id=f"{sid}-u{i + 1:04d}",
                turn=turn,
                speaker="therapist" if spk == "T" else "client",
                speaker_name=spk,
                text=text,
                start=round(t, 2),
                end=round(end, 2),
                labels=labs,
            )
        )
        t = end
    return Session(session_id=sid, utterances=utts, meta={})


def toy_sessions(n: int, seed: int, prefix: str, remap: dict | None = None, size: int = 12) -> list[Session]:
    rng = random.Random(seed)
    return [make_session(f"{prefix}{k:02d}", rng.sample(LINES, size), remap) for k in range(n)]


def write_split(dirpath: Path, remap: dict | None = None) -> tuple[Path, Path]:
    train, dev = dirpath / "train.jsonl", dirpath / "dev.jsonl"
    write_sessions(train, toy_sessions(4, 1, "tr", remap))
    write_sessions(dev, toy_sessions(2, 2, "dv", remap))
    return train, dev


#: Next to the model directory: the dev probabilities of the model as it was in memory when
#: training saved it (before any reload), float32 (n_dev_utterances, n_labels).
IN_MEMORY_DEV_PROBA = "in_memory_dev_proba.npy"
KINDS = ("lora", "full", "exclusive", "session")


def train_tiny_model(kind: str, workdir: Path) -> Path:
    """Train a tiny model of ``kind`` in ``workdir`` and return its directory (``workdir/model``).

    kinds: ``lora`` (3RS schema, mean pooling), ``full`` (full weights), ``exclusive`` (a schema
    with an exclusive category, [CLS] pooling), ``session`` (the session architecture, full weights,
    windows of 8 utterances, one joint epoch). ``workdir`` also gets the train/dev files and
    :data:`IN_MEMORY_DEV_PROBA`, recorded as training calls ``save_pretrained``.
    """
    from rupture_nlp.model import RuptureClassifier
    from rupture_nlp.model.inputs import InputConfig
    from rupture_nlp.model.train import TrainConfig
    from rupture_nlp.workflow import train_model

    if kind not in KINDS:
        raise ValueError(f"tiny model kinds: {KINDS}")
    d = Path(workdir)
    schema = None
    remap = None
    cfg = TrainConfig(
        name=f"tiny-{kind}",
        weights="lora",
        max_steps=2,
        batch_size=8,
        n_boot=20,
        baselines=False,
        input=InputConfig(context=2, max_length=64),
    )
    if kind == "full":
        cfg.weights = "full"
    elif kind == "session":  # windows of 8: the toy sessions (12 utterances) need two
        from rupture_nlp.model.architectures import session_input_config
        from rupture_nlp.model.session import SessionConfig
        from rupture_nlp.model.session_train import HeadTrainConfig, JointTrainConfig

        cfg = TrainConfig(
            name="tiny-session",
            arch="session",
            weights="full",
            max_steps=2,
            batch_size=8,
            n_boot=20,
            baselines=False,
            input=session_input_config(32),
            session=SessionConfig(window=8),
            head=HeadTrainConfig(epochs=2),
            joint=JointTrainConfig(epochs=1),  # so save/load is checked after the joint step too
        )
    elif kind == "exclusive":
        schema = LabelSchema.from_dict(TOY_EXCLUSIVE)
        remap = TOY_MAP
        cfg.pooling = "cls"
    train, dev = write_split(d, remap)
    dev_sessions = list(read_sessions(dev))
    recorded: list[np.ndarray] = []
    save = RuptureClassifier.save_pretrained

    def record_then_save(self, model_dir, peft_encoder=None):
        if not recorded:  # the trained network, still in memory (LoRA adapters not merged)
            recorded.append(self.predict_proba(dev_sessions))
        return save(self, model_dir, peft_encoder)

    with mock.patch.object(RuptureClassifier, "save_pretrained", record_then_save):
        train_model(train, dev, d / "model", schema=schema, config=cfg, seed=7)
    assert len(recorded) == 1, "training did not save the model through save_pretrained"
    np.save(d / IN_MEMORY_DEV_PROBA, recorded[0])
    return d / "model"


def in_memory_dev_proba(model_dir: Path) -> np.ndarray:
    """The dev probabilities of the tiny model as training held it in memory, before saving."""
    return np.load(data_dir(model_dir) / IN_MEMORY_DEV_PROBA)


def data_dir(model_dir: Path) -> Path:
    """The folder holding the train/dev files the tiny model was trained on."""
    return model_dir.parent
