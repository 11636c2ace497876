"""Segmenter-aligned sessions: train on the units ``rupture tag`` will see.

A corpus is written (and coded) one authored line per utterance, but ``rupture tag`` on a raw
transcript sees the segmentation pipeline's units (a long line becomes several sentence-like
units). :func:`align_session` renders a labelled session the way a transcript arrives
(WebVTT, one cue per authored utterance, with its times), reads it back through the project's
own reader and segmenter — exactly what ``rupture tag`` does with that file — and projects the
gold labels onto the resulting units with :func:`project_labels`:

    Each labelled source utterance gives its labels to exactly ONE unit: the first unit holding
    its words that has content (is not only fillers, backchannels and bracketed events), else
    the first unit holding its words. A unit holding words of several labelled source
    utterances gets the union of their labels (each once, in first-seen order).

So the number of labelled units per session equals the number of labelled source utterances
(unless two labelled lines end up in one unit), and counts per session keep their meaning.
Every aligned unit records the ids of the source utterances it holds words of in
``source_ids`` (an extra field of the canonical record); deliberate hard negatives of the
corpus (``hard_negative``, classes of unlabelled utterances) are projected by the same rule.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Sequence

from ..errors import RuptureError
from ..readers.base import clean_text
from ..records import Session, Utterance

#: Words that carry no content of their own in a unit (fillers and backchannels).
FILLER_WORDS = frozenset(
    "um uh er erm ah oh mm mmm hmm hm mhm mm-hmm uh-huh yeah yep yes no okay ok right sure so well like "
    "i see alright".split()
)
_EVENT = re.compile(r"\[[^\]]*\]|\([^)]*\)")
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")


def has_content(text: str) -> bool:
    """True when ``text`` holds a word that is not a filler or backchannel (events ignored)."""
    words = _WORD.findall(_EVENT.sub(" ", text.lower()))
    return any(w not in FILLER_WORDS for w in words)


def project_labels(
    source_labels: Sequence[Sequence[str]], unit_sources: Sequence[Sequence[int]], unit_content: Sequence[bool]
) -> list[list[str]]:
    """Labels of the new units by the rule in the module docstring.

    ``source_labels[i]``: labels of source utterance i; ``unit_sources[j]``: indexes of the
    source utterances whose words unit j holds; ``unit_content[j]``: whether unit j has content
    (:func:`has_content`). Returns one label list per unit. Raises ValueError when a labelled
    source utterance has no unit (its labels would be lost).
    """
    if len(unit_sources) != len(unit_content):
        raise ValueError("unit_sources and unit_content differ in length")
    holders: dict[int, list[int]] = {}
    for j, srcs in enumerate(unit_sources):
        for i in srcs:
            holders.setdefault(i, []).append(j)
    out: list[list[str]] = [[] for _ in unit_sources]
    for i, labels in enumerate(source_labels):
        if not labels:
            continue
        units = holders.get(i)
        if not units:
            raise ValueError(f"source utterance {i} has labels but no unit holds its words")
        target = next((j for j in units if unit_content[j]), units[0])
        out[target] += [l for l in labels if l not in out[target]]
    return out


def _clock(t: float) -> str:
    h, rem = divmod(max(0.0, t), 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:06.3f}"


def render_vtt(session: Session) -> str:
    """The session as WebVTT: one cue per utterance, ``<v Therapist>``/``<v Client>`` voices and
    the utterance times (every utterance needs ``start`` and ``end``); no labels."""
    names = {"therapist": "Therapist", "client": "Client"}
    cues = ["WEBVTT", ""]
    for u in session.utterances:
        if u.start is None or u.end is None:
            raise RuptureError(f"utterance {u.id} has no times; WebVTT needs them")
        cues += [f"{_clock(u.start)} --> {_clock(u.end)}", f"<v {names[u.speaker]}>{u.text}", ""]
    return "\n".join(cues)


def _source_spans(session: Session) -> list[list[tuple[int, int, int]]]:
    """Per turn (consecutive utterances of one speaker), each source utterance's
    ``(index, char_start, char_end)`` in the turn text (texts joined by single spaces)."""
    turns: list[list[tuple[int, int, int]]] = []
    prev = None
    pos = 0
    for i, u in enumerate(session.utterances):
        text = clean_text(u.text)
        if u.speaker != prev:
            turns.append([])
            pos = 0
            prev = u.speaker
        elif turns[-1]:
            pos += 1
        turns[-1].append((i, pos, pos + len(text)))
        pos += len(text)
    return turns


def align_session(session: Session, *, vtt: str | None = None, speakers: str | None = None, nlp=None) -> Session:
    """The session as ``rupture tag`` segments its WebVTT rendering, gold labels projected.

    ``session``: utterances with ``start``/``end`` and gold ``labels`` (authored lines, or the
    segments of an ASR rendering). ``vtt``: the WebVTT text to segment (default
    :func:`render_vtt`), read with the ``speakers`` mapping (e.g. ``"SPEAKER_00=client,..."``
    for diarization labels). Returns a new session (same id and meta plus
    ``meta["units"] = "segmenter"``) whose utterances are the segmenter's units with ``labels``
    and ``source_ids``. Raises RuptureError if the segmenter's turns do not match the session's.
    """
    from ..ingest import load_sessions

    with tempfile.TemporaryDirectory(prefix="rupture-align-") as tmp:
        path = Path(tmp) / f"{session.session_id}.vtt"
        path.write_text(render_vtt(session) if vtt is None else vtt, encoding="utf-8")
        (seg,) = list(load_sessions(path, format="vtt", speakers=speakers, nlp=nlp))
    spans = _source_spans(session)
    seg_turns = seg.turns()
    if len(seg_turns) != len(spans):
        raise RuptureError(
            f"segmentation gave {len(seg_turns)} turns for {len(spans)} authored turns", session.session_id
        )
    unit_sources: list[list[int]] = []
    for units, src in zip(seg_turns, spans):
        for u in units:
            if u.char_start is None or u.char_end is None:
                raise RuptureError(f"unit {u.id} has no character offsets", session.session_id)
            unit_sources.append([i for i, a, b in src if a < u.char_end and u.char_start < b])
    units = [u for t in seg_turns for u in t]
    content = [has_content(u.text) for u in units]
    labels = project_labels([u.labels or [] for u in session.utterances], unit_sources, content)
    hard = project_labels([u.extra.get("hard_negative") or [] for u in session.utterances], unit_sources, content)
    out = []
    for u, lab, hn, srcs in zip(units, labels, hard, unit_sources):
        extra = {**u.extra, "source_ids": [session.utterances[i].id for i in srcs]}
        if hn:
            extra["hard_negative"] = hn
        out.append(
            Utterance(
                id=u.id,
                turn=u.turn,
                speaker=u.speaker,
                text=u.text,
                start=u.start,
                end=u.end,
                speaker_name=u.speaker_name,
                char_start=u.char_start,
                char_end=u.char_end,
                events=u.events,
                labels=lab,
                extra=extra,
            )
        )
    meta = {**session.meta, "units": "segmenter"}
    return Session(session_id=session.session_id, utterances=out, meta=meta)
