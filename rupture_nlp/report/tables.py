"""Tidy tables of a tagged corpus: one row per session, per segment, per episode.

Columns are documented in ``COLUMNS`` (also written to the report's ``README.txt``). Times
are seconds from the start of the recording; rates are per 10 minutes of session time.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..records import Session
from ..schema import LabelSchema
from .episodes import REPAIR, Episode, find_episodes, has_times, marker_kinds, segment_index

COLUMNS = {
    "sessions.csv": {
        "session_id": "session id",
        "meta_*": "every key of the session's meta (therapist, client, session number, modality...)",
        "n_utterances": "utterances in the session",
        "duration_min": "last end (or start) time in minutes; empty without times",
        "n_<category>": "utterances carrying at least one label of the category (withdrawal, confrontation, repair)",
        "rate10_<category>": "n_<category> per 10 minutes of session; empty without times",
        "n_<label>": "utterances carrying the label",
        "rate10_<label>": "n_<label> per 10 minutes",
        "n_episodes": "rupture episodes (see episodes.csv)",
        "n_resolved / n_unresolved / n_no_repair": "episodes by outcome",
        "share_resolved": "resolved episodes / episodes; empty when there are none",
        "therapist_repair_utterances": "therapist utterances carrying a repair label",
        "first_rupture_s": "start time of the first rupture marker (s); empty if none or no times",
        "first_rupture_utterance": "id of the first utterance with a rupture marker",
    },
    "segments.csv": {
        "session_id": "session id",
        "segment": "0-based segment number (5-minute segments by default; blocks of utterances without times)",
        "seg_start_s / seg_end_s": "segment bounds in seconds (empty without times)",
        "first_utterance / last_utterance": "ids of the first and last utterance in the segment",
        "n_utterances": "utterances in the segment",
        "n_<category>": "utterances with a label of the category",
        "n_<label>": "utterances with the label",
        "max_score": "strongest predicted score of any label in the segment (empty without scores)",
        "max_score_<category>": "strongest score among the category's labels",
    },
    "episodes.csv": {
        "session_id": "session id",
        "episode": "1-based episode number in the session",
        "first_marker / last_marker": "ids of the first and last rupture-marked utterance of the run",
        "start_s / end_s": "start of the first marker and end of the last one (s)",
        "n_markers": "marked utterances in the run",
        "kind": "withdrawal, confrontation or mixed (categories of the run's markers, joined by +)",
        "markers": "the run's marker labels, ';'-separated, in order",
        "outcome": "resolved | unresolved | no_repair",
        "repair_utterance": "id of the first repair utterance",
        "repairs": "repair labels used, ';'-separated",
        "utterances_to_repair": "utterances from the first marker to the first repair",
        "seconds_to_repair": "time from the first marker's start to the repair's start (s)",
    },
}


def _r(x: float | None, d: int = 3) -> float | None:
    return None if x is None else round(float(x), d)


def session_duration_s(s: Session) -> float | None:
    ends = [u.end if u.end is not None else u.start for u in s.utterances]
    ends = [e for e in ends if e is not None]
    return max(ends) if ends else None


def episode_rows(s: Session, schema: LabelSchema, episodes: list[Episode]) -> list[dict[str, Any]]:
    rows = []
    utts = s.utterances
    for n, ep in enumerate(episodes, 1):
        labs = [l for i in ep.markers for l in marker_kinds(utts[i], schema)[0]]
        cats = [c for c in schema.category_ids if c in {schema.category_of(l) for l in labs}]
        rep = ep.repairs[0] if ep.repairs else None
        t0, tr = utts[ep.first].start, (utts[rep].start if rep is not None else None)
        rows.append(
            {
                "session_id": s.session_id,
                "episode": n,
                "first_marker": utts[ep.first].id,
                "last_marker": utts[ep.last].id,
                "start_s": _r(t0),
                "end_s": _r(utts[ep.last].end),
                "n_markers": len(ep.markers),
                "kind": "+".join(cats),
                "markers": ";".join(labs),
                "outcome": ep.outcome,
                "repair_utterance": utts[rep].id if rep is not None else None,
                "repairs": ";".join(l for i in ep.repairs for l in marker_kinds(utts[i], schema)[1]),
                "utterances_to_repair": (rep - ep.first) if rep is not None else None,
                "seconds_to_repair": _r(tr - t0) if (t0 is not None and tr is not None) else None,
            }
        )
    return rows


def segment_rows(s: Session, schema: LabelSchema, segment_minutes: float, segment_utterances: int) -> list[dict]:
    seg = segment_index(s, segment_minutes, segment_utterances)
    timed = has_times(s)
    rows: dict[int, dict[str, Any]] = {}
    for u, k in zip(s.utterances, seg):
        r = rows.get(k)
        if r is None:
            r = rows[k] = {
                "session_id": s.session_id,
                "segment": k,
                "seg_start_s": _r(k * segment_minutes * 60) if timed else None,
                "seg_end_s": _r((k + 1) * segment_minutes * 60) if timed else None,
                "first_utterance": u.id,
                "last_utterance": u.id,
                "n_utterances": 0,
                **{f"n_{c}": 0 for c in schema.category_ids},
                **{f"n_{l}": 0 for l in schema.label_ids},
                "max_score": None,
                **{f"max_score_{c}": None for c in schema.category_ids},
            }
        r["last_utterance"] = u.id
        r["n_utterances"] += 1
        labs = [l for l in (u.labels or []) if l in schema.label_ids]
        for c in {schema.category_of(l) for l in labs}:
            r[f"n_{c}"] += 1
        for l in labs:
            r[f"n_{l}"] += 1
        for l, p in (u.scores or {}).items():
            if l not in schema.label_ids:
                continue
            for key in ("max_score", f"max_score_{schema.category_of(l)}"):
                if r[key] is None or p > r[key]:
                    r[key] = _r(p, 4)
    return [rows[k] for k in sorted(rows)]


def session_row(s: Session, schema: LabelSchema, episodes: list[Episode]) -> dict[str, Any]:
    dur = session_duration_s(s)
    minutes = dur / 60.0 if dur else None
    row: dict[str, Any] = {"session_id": s.session_id}
    row.update({f"meta_{k}": v for k, v in s.meta.items() if not isinstance(v, (dict, list))})
    row["n_utterances"] = len(s.utterances)
    row["duration_min"] = _r(minutes, 2)
    counts = {k: 0 for k in schema.category_ids + schema.label_ids}
    first = None
    for u in s.utterances:
        labs = [l for l in (u.labels or []) if l in schema.label_ids]
        for l in labs:
            counts[l] += 1
        for c in {schema.category_of(l) for l in labs}:
            counts[c] += 1
        if first is None and marker_kinds(u, schema)[0]:
            first = u
    rate = (lambda n: _r(10.0 * n / minutes, 3)) if minutes else (lambda n: None)
    for c in schema.category_ids:
        row[f"n_{c}"], row[f"rate10_{c}"] = counts[c], rate(counts[c])
    for l in schema.label_ids:
        row[f"n_{l}"], row[f"rate10_{l}"] = counts[l], rate(counts[l])
    outcomes = [e.outcome for e in episodes]
    row["n_episodes"] = len(episodes)
    for o in ("resolved", "unresolved", "no_repair"):
        row[f"n_{o}"] = outcomes.count(o)
    row["share_resolved"] = _r(outcomes.count("resolved") / len(episodes)) if episodes else None
    row["therapist_repair_utterances"] = sum(
        1 for u in s.utterances if u.speaker == "therapist" and marker_kinds(u, schema)[1]
    )
    row["first_rupture_s"] = _r(first.start) if first is not None else None
    row["first_rupture_utterance"] = first.id if first is not None else None
    return row


def corpus_tables(
    sessions: Iterable[Session],
    schema: LabelSchema,
    *,
    segment_minutes: float = 5.0,
    segment_utterances: int = 50,
    repair_window: int = 5,
):
    """(session rows, segment rows, episode rows, episodes per session id) for the sessions."""
    if REPAIR not in schema.category_ids:
        raise ValueError(f"reports need a '{REPAIR}' category in the label schema")
    srows, segrows, eprows, eps = [], [], [], {}
    for s in sessions:
        episodes = find_episodes(s, schema, repair_window)
        eps[s.session_id] = episodes
        srows.append(session_row(s, schema, episodes))
        segrows += segment_rows(s, schema, segment_minutes, segment_utterances)
        eprows += episode_rows(s, schema, episodes)
    return srows, segrows, eprows, eps
