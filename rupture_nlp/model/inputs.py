"""What the model sees for one utterance: a text pair plus pause features.

* Text A: the target utterance with its speaker role, and a pause marker in words when the
  utterance follows a silence (``"client, after a long pause: Fine."``). Plain words keep the
  base vocabulary unchanged (no new embeddings to train or ship).
* Text B: the preceding ``context`` utterances with their speakers, **most recent first**
  (``"therapist: And how was it? client: ..."``), so that right-side truncation to
  ``max_length`` drops the oldest context first.
* Pause features (numeric, to the head): ``[log1p(pause_seconds), pause_known]`` where the
  pause is the silence between the previous utterance's end and this one's start (clipped to
  0..60 s); ``[0, 0]`` when times are missing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

from ..records import Session, Utterance

#: (lower bound in seconds, words) — the first bucket whose bound the pause reaches wins.
PAUSE_BUCKETS: tuple[tuple[float, str], ...] = ((6.0, "a very long pause"), (3.0, "a long pause"), (1.5, "a pause"))
MAX_PAUSE = 60.0
N_PAUSE_FEATURES = 2


@dataclass
class InputConfig:
    """How utterances become model inputs. Saved in the model's ``config.json``; validated on construction."""

    context: int = 3  # preceding utterances in text B (0 = none)
    max_length: int = 128  # tokens, both texts and special tokens included
    pause_marker: bool = True  # pause bucket in words in text A
    pause_feature: bool = True  # numeric pause features to the head
    speaker: bool = True  # speaker roles in both texts

    def __post_init__(self) -> None:
        if int(self.context) < 0:
            raise ValueError("input.context must be >= 0")
        if int(self.max_length) < 8:
            raise ValueError("input.max_length must be at least 8 tokens")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "InputConfig":
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in (d or {}).items() if k in known})


@dataclass
class Example:
    """One utterance as model input. ``pause`` is seconds of silence before it, None if unknown."""

    text_a: str
    text_b: str
    pause: float | None


def pause_before(prev: Utterance | None, u: Utterance) -> float | None:
    """Seconds between the previous utterance's end and ``u``'s start (0 for overlaps), None if unknown."""
    if prev is None or prev.end is None or u.start is None:
        return None
    return min(MAX_PAUSE, max(0.0, float(u.start) - float(prev.end)))


def pause_words(pause: float | None) -> str | None:
    if pause is None:
        return None
    for bound, words in PAUSE_BUCKETS:
        if pause >= bound:
            return words
    return None


def pause_features(pause: float | None) -> list[float]:
    """``[log1p(seconds), known]`` — shape (N_PAUSE_FEATURES,)."""
    return [0.0, 0.0] if pause is None else [math.log1p(pause), 1.0]


def _with_speaker(u: Utterance, cfg: InputConfig, pause: str | None = None) -> str:
    if not cfg.speaker:
        return u.text if pause is None else f"(after {pause}) {u.text}"
    who = u.speaker if pause is None else f"{u.speaker}, after {pause}"
    return f"{who}: {u.text}"


def session_examples(session: Session, cfg: InputConfig) -> list[Example]:
    """One Example per utterance of the session, in order."""
    utts = session.utterances
    out: list[Example] = []
    for i, u in enumerate(utts):
        prev = utts[i - 1] if i else None
        pause = pause_before(prev, u)
        marker = pause_words(pause) if cfg.pause_marker else None
        ctx = utts[max(0, i - cfg.context) : i] if cfg.context > 0 else []
        text_b = " ".join(_with_speaker(c, cfg) for c in reversed(ctx))
        out.append(Example(_with_speaker(u, cfg, marker), text_b, pause))
    return out


def examples(sessions: Iterable[Session], cfg: InputConfig) -> list[Example]:
    """Examples of every utterance of every session, in order."""
    return [e for s in sessions for e in session_examples(s, cfg)]


def encode(tokenizer: Any, batch: Sequence[Example], cfg: InputConfig) -> dict[str, list]:
    """Tokenise examples (no padding): ``input_ids``, ``attention_mask``, maybe ``token_type_ids``,
    and ``pause`` (list of N_PAUSE_FEATURES floats per example)."""
    a = [e.text_a for e in batch]
    b = [e.text_b for e in batch]
    if cfg.context > 0:
        enc = tokenizer(a, b, truncation="longest_first", max_length=cfg.max_length)
    else:
        enc = tokenizer(a, truncation=True, max_length=cfg.max_length)
    out = {k: list(v) for k, v in enc.items()}
    out["pause"] = [pause_features(e.pause) for e in batch]
    return out
