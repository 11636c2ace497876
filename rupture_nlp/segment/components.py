"""The spaCy components of the segmentation pipeline, registered by name on import:
``rupture_events`` (:class:`EventMarker`), ``rupture_utterances`` (:class:`UtteranceSegmenter`)
and ``rupture_times`` (:class:`TimeAssigner`); :func:`make_pipeline` builds the pipeline."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Iterable

import spacy
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc

from .extensions import doc_text, set_values, span_values, store
from .rules import (
    DEFAULT_ABBREVIATIONS,
    DEFAULT_BACKCHANNELS,
    DEFAULT_COMMA_BACKCHANNELS,
    DEFAULT_PAREN_EVENTS,
    SplitRules,
    event_name,
    event_regex,
    events_between,
)
from .tables import (
    CharIndex,
    delimited,
    event_offsets,
    set_sentence_starts,
    span_group,
    token_ranges,
    turn_table,
    utterance_table,
)
from .times import session_times

PIPELINE = ("rupture_events", "rupture_utterances", "rupture_times")


# --------------------------------------------------------------------------- events
@Language.factory(
    "rupture_events", default_config={"pattern": r"\[[^\[\]\n]{1,80}\]", "paren_events": DEFAULT_PAREN_EVENTS}
)
def make_event_marker(nlp: Language, name: str, pattern: str, paren_events: list[str]) -> "EventMarker":
    return EventMarker(pattern, paren_events)


class EventMarker:
    """Marks non-verbal events: text matching ``pattern`` (default: anything in square
    brackets) and words of ``paren_events`` in parentheses. Sets ``doc.spans["events"]``,
    each span labelled with the event name in lower case (``"laughs"``)."""

    def __init__(self, pattern: str, paren_events: Iterable[str]):
        self.regex = event_regex(pattern, paren_events)

    def __call__(self, doc: Doc) -> Doc:
        text = doc_text(doc)
        st = store(doc)
        if st.get("records_only"):  # the offsets only (see make_record_doc)
            offsets = []
            n = len(text)
            for m in self.regex.finditer(text):
                label = event_name(m.group())
                s, e = m.span()
                if (
                    s < e
                    and (not s or text[s - 1].isspace())
                    and (e == n or text[e].isspace())
                    and not text[s].isspace()
                    and not text[e - 1].isspace()
                ):
                    offsets.append((s, e, label))  # whitespace around: it starts and ends tokens
                else:
                    span = doc.char_span(s, e, label=label, alignment_mode="expand")
                    if span is not None:
                        offsets.append((span.start_char, span.end_char, label))
            st["events"] = sorted(offsets)
            return doc
        spans = []
        for m in self.regex.finditer(text):
            span = doc.char_span(m.start(), m.end(), label=event_name(m.group()), alignment_mode="expand")
            if span is not None:
                spans.append(span)
        doc.spans["events"] = spans
        return doc


# --------------------------------------------------------------------------- utterances
@Language.factory(
    "rupture_utterances",
    default_config={
        "backchannels": DEFAULT_BACKCHANNELS,
        "comma_backchannels": DEFAULT_COMMA_BACKCHANNELS,
        "abbreviations": DEFAULT_ABBREVIATIONS,
        "ellipsis": "capital",
        "dash": "capital",
        "piece_boundaries": True,
        "attach_events": True,
    },
)
def make_utterance_segmenter(
    nlp: Language,
    name: str,
    backchannels: list[str],
    comma_backchannels: list[str],
    abbreviations: list[str],
    ellipsis: str,
    dash: str,
    piece_boundaries: bool,
    attach_events: bool,
) -> "UtteranceSegmenter":
    return UtteranceSegmenter(
        backchannels=backchannels,
        comma_backchannels=comma_backchannels,
        abbreviations=abbreviations,
        ellipsis=ellipsis,
        dash=dash,
        piece_boundaries=piece_boundaries,
        attach_events=attach_events,
    )


class UtteranceSegmenter(SplitRules):
    """Splits every turn of a Doc into utterances by the rules of :class:`SplitRules`: sets
    ``doc.spans["utterances"]`` (ids ``{session_id}-u0001``..., turn, speaker, character
    offsets in the turn, source line, events) and sentence starts."""

    def __call__(self, doc: Doc) -> Doc:
        if doc._.segmented:
            return doc
        sid = doc._.session_id or "session"
        text = doc_text(doc)
        turns = turn_table(doc)
        all_events = event_offsets(doc)
        ev_starts = [e[0] for e in all_events]
        st = store(doc)
        spans = not st.get("records_only")
        values = st["spans"]
        index: CharIndex | None = None
        split = self.split
        ranges: list[tuple[int, int]] = []
        table: list[tuple[int, int, int]] = []
        k = 0
        for t_pos, (base, t_end, t_turn, speaker, speaker_name, t_line, pieces) in enumerate(turns):
            events = events_between(all_events, ev_starts, base, t_end) if all_events else []
            piece_starts = [p[0] for p in pieces]
            units = split(text[base:t_end], piece_starts, events)
            offsets = None if spans else delimited(text, base, units)
            if offsets is None:
                if index is None:
                    index = CharIndex(doc)
                turn_ranges = token_ranges(index, base, units)
                offsets = [index.chars(i, j) for i, j in turn_ranges]
                if spans:
                    ranges += turn_ranges
            for s, e in offsets:
                a, b = s - base, e - base
                k += 1
                p = bisect_right(piece_starts, a) - 1
                set_values(
                    values,
                    s,
                    e,
                    {
                        "utterance_id": f"{sid}-u{k:04d}",
                        "turn": t_turn,
                        "speaker": speaker,
                        "speaker_name": speaker_name,
                        "char_start": a,
                        "char_end": b,
                        "line": pieces[p][4] if p >= 0 and pieces[p][4] is not None else t_line,
                        "events": [name for es, ee, name in events if es >= a and ee <= b] or None if events else None,
                    },
                )
                table.append((t_pos, s, e))
        if spans:
            doc.spans["utterances"] = span_group(doc, "utterances", "utterance", ranges)
            set_sentence_starts(doc, [i for i, _j in ranges])
        st["utterances"] = table
        doc._.segmented = True
        return doc


# --------------------------------------------------------------------------- times
@Language.factory("rupture_times", default_config={"words_per_second": 2.5, "decimals": 3})
def make_time_assigner(nlp: Language, name: str, words_per_second: float, decimals: int) -> "TimeAssigner":
    return TimeAssigner(words_per_second, decimals)


class TimeAssigner:
    """Sets ``start``/``end`` (seconds) on turns and utterances from the pieces' source times.

    Times are interpolated by word position (:mod:`rupture_nlp.segment.times`); where the
    source gives no time at all they stay None. ``words_per_second`` extends the timeline
    before the first and after the last source time; ``decimals`` rounds the results.
    """

    def __init__(self, words_per_second: float = 2.5, decimals: int = 3):
        if words_per_second <= 0:
            raise ValueError("rupture_times: words_per_second must be positive")
        self.rate, self.decimals = words_per_second, decimals

    def __call__(self, doc: Doc) -> Doc:
        st = store(doc)
        spans = not st.get("records_only")
        if doc._.timed:
            return doc
        if spans:
            if "turns" not in doc.spans or "utterances" not in doc.spans:
                return doc
        elif "turns" not in st or "utterances" not in st:
            return doc
        doc._.timed = True
        turns = turn_table(doc)
        utts = utterance_table(doc, turns)
        times = session_times(doc_text(doc), turns, utts, self.rate, self.decimals)
        if times is None:  # no source times at all
            return doc
        t_times, u_times = times
        values = st["spans"]
        if spans:  # a Doc of make_record_doc has no turn values (see there)
            for (s, e, *_r), (start, end) in zip(turns, t_times):
                v = span_values(values, s, e)
                v["start"], v["end"] = start, end
        for (_t, s, e), (start, end) in zip(utts, u_times):
            v = span_values(values, s, e)
            v["start"], v["end"] = start, end
        return doc


# --------------------------------------------------------------------------- pipeline
def make_pipeline(overrides: dict[str, dict[str, Any]] | None = None) -> Language:
    """A ``spacy.blank("en")`` pipeline with the project's components, in order.

    ``overrides`` maps a component name to config values, e.g.
    ``{"rupture_utterances": {"ellipsis": "never"}}``. ``nlp.config`` shows every setting;
    ``nlp.to_disk(dir)`` saves the pipeline and ``spacy.load(dir)`` loads it again once
    ``rupture_nlp.segment`` is imported.
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(PIPELINE)
    if unknown:
        raise ValueError(f"no such component: {', '.join(sorted(unknown))}; components: {', '.join(PIPELINE)}")
    nlp = spacy.blank("en")
    for name in PIPELINE:
        nlp.add_pipe(name, config=overrides.get(name, {}))
    return nlp


def plain_pipeline(nlp: Language) -> bool:
    """Whether ``nlp`` runs exactly the project's components (:data:`PIPELINE`, these classes),
    so that nothing else touches the Docs it makes, with spaCy's own tokenizer and no special
    case that joins text across whitespace (so tokens never span a change between whitespace
    and other characters): then it may segment Docs of
    :func:`~rupture_nlp.segment.make_record_doc`."""
    names = tuple(nlp.pipe_names)
    return (
        names == PIPELINE
        and all(type(nlp.get_pipe(n)) is c for n, c in zip(names, (EventMarker, UtteranceSegmenter, TimeAssigner)))
        and _splits_at_whitespace(nlp.tokenizer)
    )


_TOKENIZERS_CHECKED: dict[int, tuple[Any, int, bool]] = {}


def _splits_at_whitespace(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` is a spaCy Tokenizer whose special cases (its only way to make a
    token across whitespace) never mix whitespace and other characters."""
    if type(tokenizer) is not Tokenizer:
        return False
    rules = tokenizer.rules
    seen = _TOKENIZERS_CHECKED.get(id(tokenizer))
    if seen is not None and seen[0] is tokenizer and seen[1] == len(rules):
        return seen[2]
    ok = not any(any(c.isspace() for c in key) and not key.isspace() for key in rules)
    if len(_TOKENIZERS_CHECKED) > 8:
        _TOKENIZERS_CHECKED.clear()
    _TOKENIZERS_CHECKED[id(tokenizer)] = (tokenizer, len(rules), ok)
    return ok
