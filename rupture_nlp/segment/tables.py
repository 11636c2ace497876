"""The side tables of a session Doc, and character offsets to tokens.

The components keep small tables in the Doc's store (:mod:`rupture_nlp.segment.extensions`)
so that they need not rebuild spaCy Span objects for every turn and utterance (each costs
microseconds); the span groups stay the public face, and the tables are rebuilt from them
when they do not match:

``"turns"``
    ``[(start_char, end_char, turn, speaker, speaker_name, line, pieces)]``, one per turn
    span (:func:`turn_table`);
``"utterances"``
    ``[(index into the turn table, start_char, end_char)]``, one per utterance span
    (:func:`utterance_table`);
``"records_only"``, ``"events"``
    on Docs of :func:`~rupture_nlp.segment.make_record_doc`, which have no span groups: the
    tables are all there is, and ``"events"`` holds what :func:`event_offsets` gives.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Sequence

import numpy
from spacy.attrs import IDX, LENGTH, SENT_START
from spacy.tokens import Doc, Span, SpanGroup

from .extensions import doc_text, store, values_at


class CharIndex:
    """Character offsets to token spans for one Doc, like ``doc.char_span(..., "expand")``
    but without creating a Token object per step (several times faster on long Docs)."""

    def __init__(self, doc: Doc):
        self.doc = doc
        if len(doc):
            arr = doc.to_array([IDX, LENGTH])
            #: character offset and length of every token
            self.starts: list[int] = arr[:, 0].tolist()
            self.lengths: list[int] = arr[:, 1].tolist()
        else:
            self.starts, self.lengths = [], []
        self.labels: dict[str, int] = {}

    def tokens(self, start: int, end: int) -> tuple[int, int] | None:
        """Token range ``(i, j)`` covering characters ``start:end`` (None if empty)."""
        i = bisect_right(self.starts, start) - 1
        j = bisect_left(self.starts, end)
        return (i, j) if 0 <= i < j else None

    def chars(self, i: int, j: int) -> tuple[int, int]:
        """``(start_char, end_char)`` of ``doc[i:j]``."""
        return self.starts[i], self.starts[j - 1] + self.lengths[j - 1]

    def span(self, start: int, end: int, label: str = "") -> Span | None:
        r = self.tokens(start, end)
        return None if r is None else self.span_of(r[0], r[1], label)

    def span_of(self, i: int, j: int, label: str = "") -> Span:
        lid = self.labels.get(label)
        if lid is None:
            lid = self.labels[label] = self.doc.vocab.strings.add(label)
        return Span(self.doc, i, j, label=lid)


def token_ranges(index: CharIndex, base: int, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The token ranges ``(i, j)`` covering the units (offsets from ``base``), as
    ``index.tokens``; units that share a token (a cut inside one) are kept together."""
    starts = index.starts
    ranges: list[tuple[int, int]] = []
    for a, b in units:
        i = bisect_right(starts, base + a) - 1
        j = bisect_left(starts, base + b)
        if not 0 <= i < j:
            continue
        if ranges and i < ranges[-1][1]:  # a cut inside a token: keep the units together
            ranges[-1] = (ranges[-1][0], max(j, ranges[-1][1]))
        else:
            ranges.append((i, j))
    return ranges


def delimited(text: str, base: int, units: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
    """The character offsets of the units (offsets from ``base``) in ``text``, when each one
    has whitespace (or the text's ends) around it: the tokenizer splits at every change
    between whitespace and other characters, so such a unit starts and ends tokens and its
    token range covers exactly it (what token_ranges would give, without the tokens). Else
    None."""
    n = len(text)
    out = []
    for a, b in units:
        s, e = base + a, base + b
        if s >= e or (s and not text[s - 1].isspace()) or (e < n and not text[e].isspace()):
            return None
        out.append((s, e))
    return out


def span_group(doc: Doc, name: str, label: str, ranges: Sequence[tuple[int, int]]) -> SpanGroup:
    """The span group ``name`` of ``doc`` with one span ``doc[i:j]`` labelled ``label`` per
    token range ``(i, j)``."""
    lid = doc.vocab.strings.add(label)
    return SpanGroup(doc, name=name, spans=[Span(doc, i, j, label=lid) for i, j in ranges])


def set_sentence_starts(doc: Doc, starts: list[int]) -> None:
    """Make ``doc.sents`` the utterances, given the index of each one's first token (in one
    array write: setting ``token.is_sent_start`` one token at a time rescans the whole Doc
    each time)."""
    if not len(doc):
        return
    arr = numpy.full((len(doc), 1), -1, dtype="int32")
    arr[0, 0] = 1
    arr[starts, 0] = 1
    doc.from_array([SENT_START], arr.astype("uint64"))


def turn_table(doc: Doc) -> list[tuple]:
    """The turn table of ``doc`` (see the module docstring), rebuilt from ``doc.spans["turns"]``
    (or the whole text as one turn) when it does not match."""
    st = store(doc)
    table = st.get("turns")
    if table is not None and st.get("records_only"):
        return table
    group = doc.spans["turns"] if "turns" in doc.spans else None
    if table is not None and group is not None and len(table) == len(group):
        return table
    spans = list(group) if group is not None else _turn_spans(doc)
    values = st["spans"]
    table = []
    for i, span in enumerate(spans):
        v = values_at(values, span.start_char, span.end_char)
        turn = v.get("turn")
        table.append(
            (
                span.start_char,
                span.end_char,
                i if turn is None else turn,
                v.get("speaker"),
                v.get("speaker_name"),
                v.get("line"),
                v.get("pieces") or [],
            )
        )
    st["turns"] = table
    return table


def utterance_table(doc: Doc, turns: list[tuple]) -> list[tuple[int, int, int]]:
    """The utterance table of ``doc`` (see the module docstring), rebuilt from
    ``doc.spans["utterances"]`` when it does not match."""
    st = store(doc)
    table = st.get("utterances")
    if table is not None and st.get("records_only"):
        return table
    group = doc.spans["utterances"] if "utterances" in doc.spans else []
    if table is not None and len(table) == len(group):
        return table
    by_turn = {t[2]: k for k, t in enumerate(turns)}
    values = st["spans"]
    table = [
        (by_turn.get(values_at(values, u.start_char, u.end_char).get("turn"), 0), u.start_char, u.end_char)
        for u in group
    ]
    st["utterances"] = table
    return table


def utterance_offsets(doc: Doc) -> list[tuple[int, int]]:
    """``(start_char, end_char)`` of every utterance: from the side table when it matches the
    span group (same length, same first and last span) or the Doc has only tables, else from
    the spans."""
    st = store(doc)
    table = st.get("utterances")
    if st.get("records_only"):
        return [(s, e) for _t, s, e in table or ()]
    if "utterances" not in doc.spans:
        return []
    group = doc.spans["utterances"]
    if (
        table is not None
        and len(table) == len(group)
        and (not table or (group[0].start_char, group[-1].end_char) == (table[0][1], table[-1][2]))
    ):
        return [(s, e) for _t, s, e in table]
    return [(u.start_char, u.end_char) for u in group]


def event_offsets(doc: Doc) -> list[tuple[int, int, str]]:
    """All events of a Doc as ``(start_char, end_char, name)``, in order."""
    st = store(doc)
    if st.get("records_only"):
        return st.get("events", [])
    if "events" not in doc.spans:
        return []
    return sorted((s.start_char, s.end_char, s.label_) for s in doc.spans["events"])


def _turn_spans(doc: Doc) -> list[Span]:
    text = doc_text(doc)
    span = doc.char_span(0, len(text.rstrip()), label="turn", alignment_mode="expand")
    return [span] if span is not None and text.strip() else []
