"""Canonical sessions <-> Label Studio tasks: sessions become tasks with labels or model
predictions as pre-annotations (:func:`session_tasks`); on pull, the tasks of a session are
stitched back into it (:func:`session_from_parts`).

A session becomes one task, or several for a long session: part ``k`` *owns* utterances
``[k*N, (k+1)*N)`` (``N`` = ``chunk``) and shows up to ``overlap`` utterances before them as
context, marked as such. Pre-annotations and, on pull, gold labels come only from the
utterances a part owns, so every utterance is coded in exactly one task. A short last part
(fewer than ``N // 4`` utterances) is joined to the one before it.

Task data (all under the task's ``data``)::

    task_key       "<session_id>#<part, 4 digits>"   identity used for idempotent pushes
    session_id, part, n_parts, chunk, overlap
    first_index    index in the session of the first utterance shown
    context_before how many utterances shown first are context (owned by the part before)
    n_utterances   utterances in the whole session
    utterances     canonical utterances (without labels/scores) + "ls_speaker" (speaker, times)
    session        {"meta": ..., "extra": ...} of the session (to rebuild it on pull)
    title          header shown above the dialogue
    uncertainty    0..1 (1 = the model is least sure), when scores exist

A pre-annotation has one region per (utterance, label): ``paragraphlabels`` on paragraph
``i`` (the utterance's index in the task, written as a string ``"i"`` as the labelling UI
writes it — the UI does not draw regions whose indexes are numbers), with the label's
probability as region ``score``;
the prediction's ``score`` is the task's confidence (1 - uncertainty).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import RuptureError
from ..records import Session, Utterance
from ..schema import LabelSchema
from .config import DISPLAY_NAME_KEY, OBJECT_NAME, TITLE_KEY, UTTERANCES_KEY, controls

DEFAULT_CHUNK = 60
DEFAULT_OVERLAP = 5
LABELS_MODEL_VERSION = "input-labels"
TASK_KEY = "task_key"


def task_key(session_id: str, part: int) -> str:
    """The identity of a task: session id and part index (``s01#0000``)."""
    return f"{session_id}#{part:04d}"


@dataclass(frozen=True)
class Part:
    """One part of a session: utterances ``[context_start, end)`` are shown, ``[start, end)`` owned."""

    index: int
    context_start: int
    start: int
    end: int


def split_parts(n: int, chunk: int = DEFAULT_CHUNK, overlap: int = DEFAULT_OVERLAP) -> list[Part]:
    """Cut ``n`` utterances into parts owning ``chunk`` each, with ``overlap`` context before."""
    if chunk < 1:
        raise RuptureError(f"--chunk must be at least 1, not {chunk}")
    if overlap < 0 or overlap >= chunk:
        raise RuptureError(f"--overlap must be between 0 and chunk - 1 ({chunk - 1}), not {overlap}")
    bounds = list(range(0, n, chunk)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < max(1, chunk // 4):
        del bounds[-2]  # join a short tail to the part before it
    if n == 0:
        bounds = [0, 0]
    return [
        Part(index=i, context_start=max(0, s - overlap) if i else 0, start=s, end=e)
        for i, (s, e) in enumerate(zip(bounds[:-1], bounds[1:]))
    ]


def _clock(t: float | None) -> str:
    if t is None:
        return ""
    t = max(0.0, float(t))
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{s:04.1f}" if h >= 1 else f"{int(m):02d}:{s:04.1f}"


def _display_name(u: Utterance, context: bool) -> str:
    who = u.speaker + (f" ({u.speaker_name})" if u.speaker_name and u.speaker_name != u.speaker else "")
    if u.start is not None or u.end is not None:
        who += f"  [{_clock(u.start)}–{_clock(u.end)}]" if u.end is not None else f"  [{_clock(u.start)}]"
    return ("context · " if context else "") + who


def _utterance_data(u: Utterance, context: bool) -> dict[str, Any]:
    d = u.to_dict()
    d.pop("labels", None)
    d.pop("scores", None)
    d[DISPLAY_NAME_KEY] = _display_name(u, context)
    return d


def utterance_uncertainty(scores: dict[str, float] | None, thresholds: dict[str, float]) -> float | None:
    """How unsure a prediction is, 0..1: 1 when a label's probability sits on its threshold,
    0 when every probability is at 0 or 1. The maximum over labels; None without scores."""
    if not scores:
        return None
    worst = 0.0
    for lid, p in scores.items():
        t = thresholds.get(lid, 0.5)
        span = t if p < t else 1.0 - t
        worst = max(worst, 1.0 - abs(p - t) / span if span > 0 else 0.0)
    return float(min(1.0, max(0.0, worst)))


def _regions(utts: Sequence[Utterance], offset: int, schema: LabelSchema, part: Part) -> list[dict[str, Any]]:
    """Pre-annotation regions for the owned utterances: one per (utterance, label)."""
    ctrl = controls(schema)
    known = set(schema.label_ids)
    out = []
    for i in range(part.start, part.end):
        u = utts[i]
        if not u.labels:
            continue
        unknown = [l for l in u.labels if l not in known]
        if unknown:
            raise RuptureError(f"utterance {u.id}: label '{unknown[0]}' is not in schema '{schema.name}'")
        local = i - offset
        for lid in schema.label_ids:  # schema order, each label once
            if lid not in u.labels:
                continue
            region: dict[str, Any] = {
                "id": f"u{local}-{schema.label_ids.index(lid)}",
                "from_name": ctrl[lid],
                "to_name": OBJECT_NAME,
                "type": "paragraphlabels",
                # paragraph indexes as strings: the labelling UI draws no region for numbers
                "value": {
                    "start": str(local),
                    "end": str(local),
                    "startOffset": 0,
                    "endOffset": len(u.text),
                    "text": u.text,
                    "paragraphlabels": [lid],
                },
            }
            if u.scores and lid in u.scores:
                region["score"] = round(float(u.scores[lid]), 4)
            out.append(region)
    return out


def session_tasks(
    session: Session,
    schema: LabelSchema,
    *,
    chunk: int = DEFAULT_CHUNK,
    overlap: int = DEFAULT_OVERLAP,
    model_version: str | None = LABELS_MODEL_VERSION,
    thresholds: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """The tasks of one session, each ``{"data": ..., "predictions": [...]}`` ready for import.

    The utterances' ``labels`` (gold, or set by a model) become the pre-annotation and their
    ``scores`` the region scores; with ``model_version`` None no prediction is attached.
    ``thresholds`` (label id -> threshold, default 0.5) only shape the uncertainty. A session
    without utterances gives no task.
    """
    utts = session.utterances
    if not utts:
        return []  # nothing to code; push_sessions reports such sessions
    parts = split_parts(len(utts), chunk, overlap)
    th = thresholds or {}
    tasks = []
    for part in parts:
        shown = utts[part.context_start : part.end]
        unc = [utterance_uncertainty(u.scores, th) for u in utts[part.start : part.end]]
        known = [x for x in unc if x is not None]
        uncertainty = float(np.mean(known)) if known else None
        title = f"Session {session.session_id}"
        if len(parts) > 1:
            title += f" · part {part.index + 1} of {len(parts)} · utterances {part.start + 1}–{part.end} of {len(utts)}"
            if part.start > part.context_start:
                title += f" (the first {part.start - part.context_start} are context, coded in part {part.index})"
        data: dict[str, Any] = {
            TASK_KEY: task_key(session.session_id, part.index),
            "session_id": session.session_id,
            "part": part.index,
            "n_parts": len(parts),
            "chunk": chunk,
            "overlap": overlap,
            "first_index": part.context_start,
            "context_before": part.start - part.context_start,
            "n_utterances": len(utts),
            UTTERANCES_KEY: [_utterance_data(u, i < part.start) for i, u in enumerate(shown, start=part.context_start)],
            "session": {"meta": session.meta, "extra": session.extra},
            TITLE_KEY: title,
        }
        if uncertainty is not None:
            data["uncertainty"] = round(uncertainty, 4)
        task: dict[str, Any] = {"data": data}
        if model_version is not None:
            pred: dict[str, Any] = {
                "model_version": model_version,
                "result": _regions(utts, part.context_start, schema, part),
            }
            if uncertainty is not None:
                pred["score"] = round(1.0 - uncertainty, 4)
            task["predictions"] = [pred]
        tasks.append(task)
    return tasks


def order_tasks(tasks: list[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    """``session``: as given (session order, parts in order). ``uncertainty``: least sure first
    (ties and tasks without scores keep session order, tasks without scores last)."""
    if order == "session":
        return list(tasks)
    if order == "uncertainty":
        missing = [t for t in tasks if t["data"].get("uncertainty") is None]
        if len(missing) == len(tasks) and tasks:
            raise RuptureError(
                "--order uncertainty needs scores: give --model, or input tagged by "
                "'rupture tag' (utterances with scores)"
            )
        return sorted(
            tasks, key=lambda t: (t["data"].get("uncertainty") is None, -(t["data"].get("uncertainty") or 0.0))
        )
    raise RuptureError(f"--order must be 'uncertainty' or 'session', not '{order}'")


def sessions_to_tasks(sessions: Iterable[Session], schema: LabelSchema, **kw: Any) -> list[dict[str, Any]]:
    """:func:`session_tasks` for several sessions, in order; RuptureError on a repeated session id."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for s in sessions:
        if s.session_id in seen:
            raise RuptureError(f"session id '{s.session_id}' occurs twice in the input; ids must be unique")
        seen.add(s.session_id)
        out += session_tasks(s, schema, **kw)
    return out


def session_from_parts(
    parts: list[dict[str, Any]], resolved: dict[int, dict[str, set[str]] | None], schema: LabelSchema
) -> Session:
    """Rebuild one session from the tasks of its parts (sorted by part index): each utterance
    from the part that owns it, its ``labels`` from ``resolved`` (task id -> utterance id ->
    labels; None for a task no one coded, whose utterances get ``labels`` None), ``scores`` None."""
    first = parts[0]["data"]
    sid = first["session_id"]
    utts: list[Utterance] = []
    for t in parts:
        d = t["data"]
        ctx = int(d.get("context_before") or 0)
        if int(d["first_index"]) + ctx != len(utts):
            raise RuptureError(f"session '{sid}': part {d['part']} does not continue where part {d['part'] - 1} ends")
        labels = resolved.get(t["id"])
        for ud in d[UTTERANCES_KEY][ctx:]:
            ud = {k: v for k, v in ud.items() if k != DISPLAY_NAME_KEY}
            u = Utterance.from_dict(ud)
            u.scores = None
            u.labels = None if labels is None else [l for l in schema.label_ids if l in labels.get(u.id, set())]
            utts.append(u)
    if len(utts) != int(first.get("n_utterances", len(utts))):
        raise RuptureError(
            f"session '{sid}': parts hold {len(utts)} utterances, the session had {first.get('n_utterances')}"
        )
    sess = first.get("session") or {}
    return Session(
        session_id=sid, utterances=utts, meta=dict(sess.get("meta") or {}), extra=dict(sess.get("extra") or {})
    )
