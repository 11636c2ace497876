"""The segmentation pipeline: turns in, identified and timed utterances out, as spaCy objects.

Built on ``spacy.blank("en")`` with three components of this project, registered by name
(``import rupture_nlp.segment`` registers them, so ``nlp.add_pipe("rupture_utterances")``
and ``spacy.load`` of a saved pipeline work):

``rupture_events``
    marks bracketed non-verbal events (``[laughs]``, ``[pause]``, ``[inaudible]``, and
    ``(laughs)``-style events from a configured word list) as ``doc.spans["events"]``.
``rupture_utterances``
    splits every turn into sentence-like utterances with rules for spoken transcripts (see
    :class:`UtteranceSegmenter`) and sets ``doc.spans["utterances"]`` and sentence starts.
``rupture_times``
    gives every utterance start/end seconds from the source times (see
    :mod:`rupture_nlp.timeline`).

A session is one ``Doc`` (made by :func:`make_doc` from turns, then run through the
pipeline). Its public face is extension attributes:

* ``doc._.session_id``, ``doc._.meta``
* ``doc.spans["turns"]``: one span per turn, ``span._.turn``, ``._.speaker``,
  ``._.speaker_name``, ``._.start``, ``._.end``, ``._.line``, ``._.pieces``
* ``doc.spans["utterances"]``: ``span._.utterance_id`` (``{session_id}-u0001``...),
  ``._.turn``, ``._.speaker`` (``therapist``/``client``), ``._.speaker_name``, ``._.start``,
  ``._.end`` (seconds or None), ``._.char_start``/``._.char_end`` (offsets into the turn text),
  ``._.events`` (e.g. ``["laughs"]``), ``._.is_backchannel``, ``._.labels``, ``._.scores``.

:func:`doc_to_session` turns such a Doc into the canonical record; :func:`session_to_doc`
does the reverse for canonical input without re-segmenting it. ``doc._.segmented`` and
``doc._.timed`` mark Docs the components have done (running the pipeline again on them
changes nothing). ``nlp("raw text")`` also works: the whole text is then one turn without a
speaker.

Speed: the components keep small side tables in ``doc.user_data`` and read and write span
extension values there directly (see :func:`span_values`), because creating spaCy objects
and going through ``span._`` for every value would cost more than the tokenizer itself.
``rupture segment`` goes further for the sessions it only writes out: their Docs come from
:func:`make_record_doc` (no spans or extension values at all, only the side tables and the
values the components record) and their JSON lines from :func:`plain_session_json`, the
same text ``doc_to_session(doc).to_json()`` gives for a Doc of :func:`make_doc`.
"""
from __future__ import annotations

import json
import math
import re
from bisect import bisect_left, bisect_right
from typing import Any, Iterable, Sequence

import numpy
import spacy
from spacy.attrs import IDX, LENGTH, ORTH, SENT_START, SPACY
from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup

from .errors import RuptureError
from .readers.base import Turn, TurnPiece
from .records import Session, Utterance
from .timeline import Timeline

# --------------------------------------------------------------------------- extensions
_DOC_EXT: dict[str, Any] = {"session_id": None, "meta": None, "extra": None, "segmented": False, "timed": False}
_SPAN_EXT: dict[str, Any] = {
    "utterance_id": None, "turn": None, "speaker": None, "speaker_name": None, "start": None, "end": None,
    "char_start": None, "char_end": None, "events": None, "line": None, "pieces": None, "labels": None,
    "scores": None, "extra": None,
}
for _name, _default in _DOC_EXT.items():
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, default=_default)
for _name, _default in _SPAN_EXT.items():
    if not Span.has_extension(_name):
        Span.set_extension(_name, default=_default)

DEFAULT_BACKCHANNELS = ["mm-hmm", "mm hmm", "mhm", "mm", "mmm", "hmm", "hm", "uh-huh", "uh huh", "yeah",
                        "yep", "yes", "right", "okay", "ok", "sure", "i see", "oh", "ah", "alright"]
#: Backchannels that are split off even when only a comma follows ("Mm-hmm, and then?").
DEFAULT_COMMA_BACKCHANNELS = ["mm-hmm", "mm hmm", "mhm", "mm", "mmm", "hmm", "hm", "uh-huh", "uh huh"]
DEFAULT_ABBREVIATIONS = ["dr", "mr", "mrs", "ms", "mx", "prof", "rev", "st", "mt", "fr", "sr", "jr", "vs", "cf",
                         "e.g", "i.e", "approx", "dept", "ca"]
DEFAULT_PAREN_EVENTS = ["laughs", "laughing", "laughter", "laugh", "chuckles", "sighs", "sigh", "pause",
                        "long pause", "silence", "inaudible", "unintelligible", "unclear", "crosstalk", "crying",
                        "cries", "sobbing", "coughs", "clears throat", "sniffs", "whispers", "overlapping"]


def _probe_fast_access() -> bool:
    """Whether span extension values live in ``doc.user_data`` under ``("._.", name,
    start_char, end_char)`` as in spaCy 3.x. The components then read and write them there
    directly (Underscore attribute access costs microseconds per value, a large share of the
    pipeline's time); with any other layout they fall back to ``span._``."""
    from spacy.vocab import Vocab
    doc = Doc(Vocab(), words=["a", "b"])
    doc[0:1]._.line = 7
    return doc.user_data.get(("._.", "line", 0, 1)) == 7 and doc[0:1]._.line == 7


_FAST = _probe_fast_access()


def span_group(doc: Doc, name: str, label: str, rows: Sequence[tuple[int, int, int, int]]) -> SpanGroup:
    """The span group ``name`` of ``doc`` with one span ``doc[start:end]`` labelled ``label``
    per row ``(start, end, start_char, end_char)``."""
    lid = doc.vocab.strings.add(label)
    return SpanGroup(doc, name=name, spans=[Span(doc, i, j, label=lid) for i, j, _s, _e in rows])


def span_values(doc: Doc, span: Span, names: Sequence[str]) -> list[Any]:
    """The values of several (plain, getter-less) span extensions at once."""
    if _FAST:
        ud, s, e = doc.user_data, span.start_char, span.end_char
        return [ud.get(("._.", n, s, e), _SPAN_EXT[n]) for n in names]
    x = span._
    return [getattr(x, n) for n in names]


def set_span_values(doc: Doc, span: Span, values: dict[str, Any]) -> None:
    """Set several (plain, getter-less) span extensions at once."""
    if _FAST:
        ud, s, e = doc.user_data, span.start_char, span.end_char
        for n, v in values.items():
            ud[("._.", n, s, e)] = v
    else:
        x = span._
        for n, v in values.items():
            setattr(x, n, v)


def _is_backchannel(span: Span) -> bool:
    return _BACKCHANNEL_ONLY.fullmatch(span.text) is not None


_BC_ALT = "|".join(sorted((re.escape(b).replace(r"\ ", r"\s+") for b in DEFAULT_BACKCHANNELS), key=len,
                          reverse=True))
_BACKCHANNEL_ONLY = re.compile(rf"(?:(?:{_BC_ALT})[\s,.!?…-]*)+", re.I)
if not Span.has_extension("is_backchannel"):
    Span.set_extension("is_backchannel", getter=_is_backchannel)


# --------------------------------------------------------------------------- making docs
def make_doc(nlp: Language, turns: Sequence[Turn], *, session_id: str, meta: dict | None = None) -> Doc:
    """An unprocessed Doc for one session: text = turn texts joined by newlines, one span per
    turn in ``doc.spans["turns"]`` carrying speaker, times and pieces. Run ``nlp(doc)`` next."""
    return _make_doc(nlp, turns, session_id, meta, spans=True)


def make_record_doc(nlp: Language, turns: Sequence[Turn], *, session_id: str, meta: dict | None = None) -> Doc:
    """A Doc like :func:`make_doc`'s that only serves :func:`plain_session_json` (to write the
    canonical record of a session that is not handed out as a Doc) with a
    :func:`plain_pipeline`: the components keep their side tables and record their values,
    but make no span groups, span extension values or sentence starts, which nothing reads
    from such a Doc. A turn or utterance with whitespace (or the text's ends) around it is
    taken to start and end tokens without looking them up, which is so with that pipeline's
    tokenizer. Not for any other use."""
    return _make_doc(nlp, turns, session_id, meta, spans=False)


#: Longest session text (characters, turns joined by newlines) made into one Doc: about 150
#: times a long real session (an hour of talk is some 60,000 characters). spaCy's own
#: ``nlp.max_length`` (1,000,000) guards the memory of parsers and entity recognisers, which
#: this pipeline does not have: above it the text is tokenized turn by turn
#: (:func:`_tokenize`); above this limit a session is refused.
MAX_SESSION_CHARS = 10_000_000


_CHUNK_CHARS = 100_000


def _tokenize(nlp: Language, turns: Sequence[Turn], text: str) -> Doc:
    """``nlp.make_doc(text)`` for ``text`` = the turn texts joined by newlines. A text longer
    than ``nlp.max_length`` is tokenized in runs of whole turns of about 100,000 characters
    (the tokenizer splits at whitespace first, so the tokens are the same) and the Docs of the
    runs joined into one."""
    if len(text) <= nlp.max_length:
        return nlp.make_doc(text)
    if len(text) > MAX_SESSION_CHARS:
        raise RuptureError(f"session too long to segment ({len(text):,} characters of text; the limit is "
                           f"{MAX_SESSION_CHARS:,}): split the transcript into several files")
    runs, start, end = [], 0, 0
    for t in turns:
        end += len(t.text) + 1
        if end - start >= _CHUNK_CHARS:
            runs.append(text[start:end])
            start = end
    if start < len(text):
        runs.append(text[start:])
    words: list[str] = []
    spaces: list[bool] = []
    strings = nlp.vocab.strings
    for run in nlp.tokenizer.pipe(runs):  # Doc.from_docs would make a Token object per token
        arr = run.to_array([ORTH, SPACY])
        words += [strings[o] for o in arr[:, 0].tolist()]
        spaces += arr[:, 1].astype(bool).tolist()
    return Doc(nlp.vocab, words=words, spaces=spaces)


def _make_doc(nlp: Language, turns: Sequence[Turn], session_id: str, meta: dict | None, spans: bool) -> Doc:
    text = "\n".join(t.text for t in turns)
    doc = _tokenize(nlp, turns, text)
    ud = doc.user_data
    ud[_TEXT_KEY] = text
    if not spans:
        ud[_RECORDS_ONLY] = True
    doc._.session_id = session_id
    doc._.meta = dict(meta or {})
    rows, table = [], []
    offset = 0
    index = None
    for i, t in enumerate(turns):
        tt = t.text
        n = len(tt)
        if not spans and n and not tt[0].isspace() and not tt[-1].isspace():
            # whitespace (or the text's ends) around: the turn starts and ends a token
            s, e = offset, offset + n
        else:
            if index is None:
                index = CharIndex(doc)
            r = index.tokens(offset, offset + n)
            if r is None:  # an empty turn text has no span
                raise AttributeError(f"turn {i} has no text")
            a, b = r
            s, e = index.starts[a], index.starts[b - 1] + index.lengths[b - 1]
        offset += n + 1
        pieces = [[p.char_start, p.char_end, p.start, p.end, p.line] for p in t.pieces]
        if _FAST and spans:  # as set_span_values, inlined
            ud[("._.", "turn", s, e)] = i
            ud[("._.", "speaker", s, e)] = t.speaker
            ud[("._.", "speaker_name", s, e)] = t.speaker_name
            ud[("._.", "line", s, e)] = t.line
            ud[("._.", "pieces", s, e)] = pieces
        if spans:
            rows.append((a, b, s, e))
        table.append((s, e, i, t.speaker, t.speaker_name, t.line, pieces))
    if spans:
        doc.spans["turns"] = group = span_group(doc, "turns", "turn", rows)
        if not _FAST:
            for span, (_s, _e, i, speaker, name, line, pieces) in zip(group, table):
                set_span_values(doc, span, {"turn": i, "speaker": speaker, "speaker_name": name, "line": line,
                                            "pieces": pieces})
    ud[_TURNS_KEY] = table
    return doc


# Side tables kept in ``doc.user_data`` so that the components need not rebuild spaCy Span
# objects for every turn and utterance (each costs microseconds); the span groups stay the
# public face, and the tables are rebuilt from them when they do not match.
_TURNS_KEY = "rupture_nlp.turns"  # [(start_char, end_char, turn, speaker, speaker_name, line, pieces)]
_UTTS_KEY = "rupture_nlp.utterances"  # [(index into the turn table, start_char, end_char)]
# The canonical values of each utterance of _UTTS_KEY, as the components made them:
# [[utterance_id, turn, speaker, speaker_name, start, end, char_start, char_end, events]]
# (see plain_session_json; dropped whenever _UTTS_KEY is rebuilt from the spans)
_RECS_KEY = "rupture_nlp.records"
# Set on Docs of make_record_doc: the tables are all there is (no span groups to check them by).
_RECORDS_ONLY = "rupture_nlp.records_only"


def _turn_table(doc: Doc) -> list[tuple]:
    table = doc.user_data.get(_TURNS_KEY)
    if table is not None and _RECORDS_ONLY in doc.user_data:
        return table
    group = doc.spans["turns"] if "turns" in doc.spans else None
    if table is not None and group is not None and len(table) == len(group):
        return table
    spans = list(group) if group is not None else _turn_spans(doc)
    table = []
    for i, span in enumerate(spans):
        turn, speaker, name, line, pieces = span_values(doc, span, ("turn", "speaker", "speaker_name", "line",
                                                                    "pieces"))
        table.append((span.start_char, span.end_char, i if turn is None else turn, speaker, name, line,
                      pieces or []))
    doc.user_data[_TURNS_KEY] = table
    return table


def _utterance_table(doc: Doc, turns: list[tuple]) -> list[tuple[int, int, int]]:
    table = doc.user_data.get(_UTTS_KEY)
    if table is not None and _RECORDS_ONLY in doc.user_data:
        return table
    group = doc.spans["utterances"] if "utterances" in doc.spans else []
    if table is not None and len(table) == len(group):
        return table
    by_turn = {t[2]: k for k, t in enumerate(turns)}
    table = [(by_turn.get(span_values(doc, u, ("turn",))[0], 0), u.start_char, u.end_char) for u in group]
    doc.user_data[_UTTS_KEY] = table
    doc.user_data.pop(_RECS_KEY, None)
    return table


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

    def span(self, start: int, end: int, label: str = "") -> Span | None:
        r = self.tokens(start, end)
        return None if r is None else self.span_of(r[0], r[1], label)

    def span_of(self, i: int, j: int, label: str = "") -> Span:
        lid = self.labels.get(label)
        if lid is None:
            lid = self.labels[label] = self.doc.vocab.strings.add(label)
        return Span(self.doc, i, j, label=lid)


def _turn_spans(doc: Doc) -> list[Span]:
    if "turns" in doc.spans:
        return list(doc.spans["turns"])
    text = doc_text(doc)
    span = doc.char_span(0, len(text.rstrip()), label="turn", alignment_mode="expand")
    return [span] if span is not None and text.strip() else []


_TEXT_KEY = "rupture_nlp.text"


def doc_text(doc: Doc) -> str:
    """``doc.text``, cached: spaCy rebuilds ``doc.text`` (and ``span.text``) from all tokens on
    every call, which is most of the cost of a fast pipeline. Slicing the cached text by
    ``span.start_char:span.end_char`` gives ``span.text``."""
    text = doc.user_data.get(_TEXT_KEY)
    if text is None or len(text) != (doc[-1].idx + len(doc[-1].text_with_ws) if len(doc) else 0):
        text = doc.text
        doc.user_data[_TEXT_KEY] = text
    return text


# --------------------------------------------------------------------------- events
@Language.factory("rupture_events", default_config={
    "pattern": r"\[[^\[\]\n]{1,80}\]", "paren_events": DEFAULT_PAREN_EVENTS})
def make_event_marker(nlp: Language, name: str, pattern: str, paren_events: list[str]) -> "EventMarker":
    return EventMarker(pattern, paren_events)


class EventMarker:
    """Marks non-verbal events: text matching ``pattern`` (default: anything in square
    brackets) and words of ``paren_events`` in parentheses. Sets ``doc.spans["events"]``,
    each span labelled with the event name in lower case (``"laughs"``)."""

    def __init__(self, pattern: str, paren_events: Iterable[str]):
        if not pattern or re.compile(pattern).match(""):
            raise ValueError("rupture_events: pattern must not match the empty string")
        alts = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(paren_events, key=len, reverse=True))
        self.regex = re.compile(pattern + (rf"|\((?:{alts})\)" if alts else ""), re.I)

    def __call__(self, doc: Doc) -> Doc:
        text = doc_text(doc)
        if _RECORDS_ONLY in doc.user_data:  # the offsets only (see make_record_doc)
            offsets = []
            n = len(text)
            for m in self.regex.finditer(text):
                label = " ".join(m.group()[1:-1].split()).lower() or "event"
                s, e = m.span()
                if s < e and (not s or text[s - 1].isspace()) and (e == n or text[e].isspace()) \
                        and not text[s].isspace() and not text[e - 1].isspace():
                    offsets.append((s, e, label))  # whitespace around: it starts and ends tokens
                else:
                    span = doc.char_span(s, e, label=label, alignment_mode="expand")
                    if span is not None:
                        offsets.append((span.start_char, span.end_char, label))
            doc.user_data[_EVENTS_KEY] = sorted(offsets)
            return doc
        spans = []
        for m in self.regex.finditer(text):
            label = " ".join(m.group()[1:-1].split()).lower() or "event"
            span = doc.char_span(m.start(), m.end(), label=label, alignment_mode="expand")
            if span is not None:
                spans.append(span)
        doc.spans["events"] = spans
        return doc


_EVENTS_KEY = "rupture_nlp.events"  # event_offsets of a Doc of make_record_doc


def event_offsets(doc: Doc) -> list[tuple[int, int, str]]:
    """All events of a Doc as ``(start_char, end_char, name)``, in order."""
    if _RECORDS_ONLY in doc.user_data:
        return doc.user_data.get(_EVENTS_KEY, [])
    if "events" not in doc.spans:
        return []
    return sorted((s.start_char, s.end_char, s.label_) for s in doc.spans["events"])


def _events_between(events: list[tuple[int, int, str]], starts: list[int], start: int,
                    end: int) -> list[tuple[int, int, str]]:
    """The events inside ``[start, end)``, relative to ``start``."""
    i = bisect_left(starts, start)
    out = []
    while i < len(events) and events[i][0] < end:
        s, e, name = events[i]
        if e <= end:
            out.append((s - start, e - start, name))
        i += 1
    return out


# --------------------------------------------------------------------------- utterances
_TERMINAL = re.compile(r"(?:\.{2,}|…|[.?!]+)[\"'”’»)\]]*(?=\s)")
# end punctuation, the space after it, then what opens the next unit (events, quotes, dashes)
# and its first word
# (The alternatives of a run each begin with a literal character, so that re can scan for
# them quickly: ``\.\.+|…|\.[.?!]*|\?[.?!]*|![.?!]*`` matches what ``\.{2,}|…|[.?!]+`` matches,
# trying the same strings in the same order.)
_TERM_NEXT = re.compile(r"(?P<run>(?:\.\.+|…|\.[.?!]*|\?[.?!]*|![.?!]*)[\"'”’»)\]]*)\s+"
                        r"(?P<lead>(?:\[[^\[\]\n]{0,80}\]\s*|\([a-z ]{1,30}\)\s*|[\"'“‘«(¿¡—–-]+\s*)*)"
                        r"(?P<word>[^\W_][\w'’-]*)?")
_WS = re.compile(r"\s*")
# (``--+|—|–(?<=\s–)`` is ``-{2,}|—|(?<=\s)–`` with a literal first, as for _TERM_NEXT.)
_DASH = re.compile(r"(?:--+|—|–(?<=\s–))(?=\s*\S)")
_OPENERS = "\"'“‘«(¿¡"
_FIRST_WORD = re.compile(r"[^\W_][\w'’-]*")
_I_FORM = re.compile(r"I(?:['’](?:m|ve|d|ll))?")
_CLOSERS = "\"'”’»)]"
_WORD = re.compile(r"[^\W_]+")  # a unit without any is "wordless" (only events or punctuation)
_BC_WORDS = re.compile(r"[^\s,.!?]+")
_NO_EVENTS: dict[int, int] = {}


@Language.factory("rupture_utterances", default_config={
    "backchannels": DEFAULT_BACKCHANNELS,
    "comma_backchannels": DEFAULT_COMMA_BACKCHANNELS,
    "abbreviations": DEFAULT_ABBREVIATIONS,
    "ellipsis": "capital",
    "dash": "capital",
    "piece_boundaries": True,
    "attach_events": True,
})
def make_utterance_segmenter(nlp: Language, name: str, backchannels: list[str], comma_backchannels: list[str],
                             abbreviations: list[str], ellipsis: str, dash: str, piece_boundaries: bool,
                             attach_events: bool) -> "UtteranceSegmenter":
    return UtteranceSegmenter(backchannels=backchannels, comma_backchannels=comma_backchannels,
                              abbreviations=abbreviations, ellipsis=ellipsis, dash=dash,
                              piece_boundaries=piece_boundaries, attach_events=attach_events)


class UtteranceSegmenter:
    """Splits each turn into utterances with rules for spoken transcripts.

    A turn is cut:

    * after ``.``, ``?``, ``!`` (with closing quotes/brackets) before a word that does not
      start in lower case; not after an abbreviation (``Dr.``) or an initial;
    * after an ellipsis (``...``/``…``) before a capitalised word other than *I*
      (``ellipsis: "capital"``; ``"always"`` or ``"never"`` also work) — a hesitation
      ("It's just... I thought") stays one utterance;
    * after an interruption dash (``--``, ``—``, spaced ``–``) before a capitalised word
      (``dash: "capital"``/``"never"``), keeping the dash with the cut-off part;
    * after a leading backchannel ("Okay. And how...", "Mm-hmm, and then?"): words of
      ``backchannels`` followed by ``.!?``; words of ``comma_backchannels`` also before a comma;
    * where the source started a new line/row/cue for the same speaker, when the text there
      reads as a boundary (``piece_boundaries``): end punctuation, an event or a dash on one
      side, or a capitalised word that is not *I* after text without punctuation.

    Units without words (an event or punctuation alone) are attached to a neighbour
    (``attach_events``): to the one in the same source piece, else to the following one, else
    to the preceding one; a turn that is only an event stays one utterance. Trailing
    fragments are kept as they are.
    """

    def __init__(self, *, backchannels: Sequence[str] = DEFAULT_BACKCHANNELS,
                 comma_backchannels: Sequence[str] = DEFAULT_COMMA_BACKCHANNELS,
                 abbreviations: Sequence[str] = DEFAULT_ABBREVIATIONS, ellipsis: str = "capital",
                 dash: str = "capital", piece_boundaries: bool = True, attach_events: bool = True):
        if not all(isinstance(x, str) and x.strip() for x in [*backchannels, *comma_backchannels, *abbreviations]):
            raise ValueError("rupture_utterances: backchannels, comma_backchannels and abbreviations must be "
                             "non-empty strings")
        if ellipsis not in ("capital", "always", "never"):
            raise ValueError(f"rupture_utterances: ellipsis must be capital, always or never, not {ellipsis!r}")
        if dash not in ("capital", "never"):
            raise ValueError(f"rupture_utterances: dash must be capital or never, not {dash!r}")
        bc = sorted(backchannels, key=len, reverse=True)
        alt = "|".join(re.escape(b.lower()).replace(r"\ ", r"\s+") for b in bc)
        unit = rf"(?:{alt})(?![\w'’-])(?:\s*[,.!?]+)?"
        self.bc_run = re.compile(rf"(?:{unit})(?:\s+{unit})*", re.I) if bc else None
        self.bc_first = {c for b in bc for c in (b[:1].lower(), b[:1].upper())}
        # the first two characters a backchannel can start with (in lower case, a space for
        # any whitespace); None when some backchannel makes that test unsound (see
        # _split_backchannels)
        lowered = [b.lower() for b in bc]
        self.bc_pairs = ({b[0] + b[1] for b in lowered}
                         if all(b.isascii() and len(b) > 1 and (b[1] == " " or not b[1].isspace()) for b in lowered)
                         else None)
        self.comma_words = {w for b in comma_backchannels for w in b.lower().split()}
        self.abbreviations = {a.lower().rstrip(".") for a in abbreviations}
        self.ellipsis, self.dash = ellipsis, dash
        self.piece_boundaries, self.attach_events = piece_boundaries, attach_events

    # -- the rules, on plain strings -------------------------------------------------------
    def split(self, text: str, piece_starts: Sequence[int] = (),
              events: Sequence[tuple[int, int, str]] = ()) -> list[tuple[int, int]]:
        """Utterance ``(start, end)`` character offsets in ``text`` (a turn), in order.

        ``piece_starts``: offsets where the source's lines/rows/cues begin (0 may be left out);
        ``events``: ``(start, end, name)`` of bracketed events in ``text``.
        """
        n = len(text)
        ev_start = {s: e for s, e, _ in events} if events else _NO_EVENTS
        cuts: list[int] = []

        for m in _TERM_NEXT.finditer(text):
            dot, j = m.start(), m.start(2)  # the run, the lead
            if j >= n or (events and any(s < dot < e for s, e, _ in events)):
                continue
            run, word = m.group(1, 3)
            if word:
                first = word[0]
            else:
                k = m.end(2)
                first = text[k] if k < n else ""
            if "…" in run or ".." in run:
                if self._ellipsis_cuts(first, word or ""):
                    cuts.append(j)
            elif "?" in run or "!" in run:
                if not (first.islower() and run[-1] in _CLOSERS):
                    cuts.append(j)
            elif not first.islower():
                tok = text[text.rfind(" ", 0, dot) + 1:dot].lstrip(_OPENERS)
                if not (tok.lower() in self.abbreviations or (len(tok) == 1 and tok.isupper())):
                    cuts.append(j)
        if self.dash != "never" and ("-" in text or "—" in text or "–" in text):
            for m in _DASH.finditer(text):
                if (events and any(s < m.start() < e for s, e, _ in events)) or \
                        not any(c.isalnum() for c in text[max(0, m.start() - 3):m.start()]):
                    continue
                j = _WS.match(text, m.end()).end()
                first, word = self._next_word(text, j, ev_start)
                if first.isupper() and not (m.group() == "—" and "—" in text[j:_sentence_end(text, j)]):
                    cuts.append(j)
        if self.piece_boundaries and len(piece_starts) > 1:
            for ps in piece_starts:
                if 0 < ps < n and self._piece_cut(text, ps, ev_start):
                    cuts.append(ps)
        if cuts:
            units = _units(text, sorted(set(cuts)))
        elif n and not text[0].isspace() and not text[-1].isspace():
            units = [(0, n)]  # what _units(text, []) gives for a stripped text
        else:
            units = _units(text, [])
        if self.bc_run is not None:
            for a, b in units:
                if self._may_start_backchannel(text, a, b):
                    units = self._split_backchannels(text, units)
                    break
        if self.attach_events and len(units) > 1:
            for a, _b in units:
                if not text[a].isalnum():  # only such units can be wordless
                    units = self._attach_wordless(text, units, events, piece_starts)
                    break
        return units

    def _next_word(self, text: str, j: int, ev_start: dict[int, int]) -> tuple[str, str]:
        """First character and word after position ``j``, skipping events, quotes, dashes."""
        n = len(text)
        while j < n:
            if j in ev_start:
                j = _WS.match(text, ev_start[j]).end()
            elif text[j] in _OPENERS or text[j] in "-—–":
                j += 1
            else:
                break
        m = _FIRST_WORD.match(text, j)
        if m:
            return m.group()[0], m.group()
        return (text[j] if j < n else ""), ""

    def _ellipsis_cuts(self, first: str, word: str) -> bool:
        if self.ellipsis == "never" or not first:
            return False
        if self.ellipsis == "always":
            return True
        return (first.isupper() or first.isdigit()) and not _I_FORM.fullmatch(word)

    def _piece_cut(self, text: str, ps: int, ev_start: dict[int, int]) -> bool:
        k = ps  # the text before ps ends at k, without trailing whitespace
        while k and text[k - 1].isspace():
            k -= 1
        if not k:
            return False
        last = text[k - 1]
        if last in ",;:":
            return False
        first, word = self._next_word(text, ps, ev_start)
        if text.endswith(("...", "…"), 0, k):
            return not first.islower()
        if last in ".?!" or (last in _CLOSERS and _TERMINAL.search(text[max(0, k - 4):k] + " ")) or last == "]" \
                or text.endswith(("--", "—", "–"), 0, k):
            return True
        if text.startswith(("--", "—", "["), ps) or ps in ev_start:
            return True
        return first.isupper() and not _I_FORM.fullmatch(word)

    def _may_start_backchannel(self, text: str, a: int, b: int) -> bool:
        """False when ``text[a:b]`` cannot start with a backchannel: its first character is
        none a backchannel starts with or, when both are ASCII, its first two characters are
        none a backchannel starts with (the pattern matches ASCII letters in either case, and
        a space in a backchannel any whitespace)."""
        c0 = text[a]
        if c0 not in self.bc_first:
            return False
        pairs = self.bc_pairs
        if pairs is None:
            return True
        c1 = text[a + 1] if a + 1 < b else ""
        if not c1.isascii():
            return True
        return c0.lower() + (" " if c1.isspace() else c1.lower()) in pairs

    def _split_backchannels(self, text: str, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        may = self._may_start_backchannel
        for a, b in units:
            m = self.bc_run.match(text, a, b) if may(text, a, b) else None
            if m:
                j = _WS.match(text, m.end()).end()
                run = m.group().rstrip()
                pure = all(w in self.comma_words for w in _BC_WORDS.findall(run.lower()))
                if j < b and (run[-1] in ".!?" or pure):
                    out.append((a, len(text[:m.end()].rstrip())))
                    out.append((j, b))
                    continue
            out.append((a, b))
        return out

    def _attach_wordless(self, text: str, units: list[tuple[int, int]], events: Sequence[tuple[int, int, str]],
                         piece_starts: Sequence[int]) -> list[tuple[int, int]]:
        starts = sorted(set(piece_starts) | {0})

        def piece_of(pos: int) -> int:
            return bisect_left(starts, pos + 1) - 1

        def wordless(a: int, b: int) -> bool:
            chunk = text[a:b]
            for s, e, _ in events:
                if a <= s and e <= b:
                    chunk = chunk.replace(text[s:e], " ")
            return _WORD.search(chunk) is None

        units = list(units)
        i = 0
        while i < len(units) and len(units) > 1:
            a, b = units[i]
            if not wordless(a, b):
                i += 1
                continue
            has_prev, has_next = i > 0, i + 1 < len(units)
            same_prev = has_prev and piece_of(units[i - 1][1] - 1) == piece_of(a)
            same_next = has_next and piece_of(units[i + 1][0]) == piece_of(b - 1)
            if has_next and (same_next or not same_prev):
                units[i:i + 2] = [(a, units[i + 1][1])]
            else:
                units[i - 1:i + 1] = [(units[i - 1][0], b)]
                i -= 1
        return units

    # -- the spaCy side ------------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        if doc._.segmented:
            return doc
        sid = doc._.session_id or "session"
        text = doc_text(doc)
        turns = _turn_table(doc)
        all_events = event_offsets(doc)
        ev_starts = [e[0] for e in all_events]
        index: CharIndex | None = None
        split = self.split
        spans = _RECORDS_ONLY not in doc.user_data
        ud = doc.user_data if _FAST and spans else None
        rows: list[tuple[int, int, int, int]] = []
        table: list[tuple[int, int, int]] = []
        recs: list[list] = []
        slow: list[tuple] = []  # the values to set through span._ when not _FAST
        k = 0
        for t_pos, (base, t_end, t_turn, speaker, speaker_name, t_line, pieces) in enumerate(turns):
            events = _events_between(all_events, ev_starts, base, t_end) if all_events else []
            piece_starts = [p[0] for p in pieces]
            units = split(text[base:t_end], piece_starts, events)
            if not spans:  # the record only: as below without spans, extension values, lines
                offsets = _delimited(text, base, units)
                if offsets is None:
                    if index is None:
                        index = CharIndex(doc)
                    offsets = [(index.starts[i], index.starts[j - 1] + index.lengths[j - 1])
                               for i, j in _token_ranges(index, base, units)]
                for s, e in offsets:
                    a = s - base
                    b = e - base
                    k += 1
                    table.append((t_pos, s, e))
                    recs.append([f"{sid}-u{k:04d}", t_turn, speaker, speaker_name, None, None, a, b,
                                 [name for es, ee, name in events if es >= a and ee <= b] or None if events else None])
                continue
            if index is None:
                index = CharIndex(doc)
            starts, lengths = index.starts, index.lengths
            ranges = _token_ranges(index, base, units)
            for i, j in ranges:
                s, e = starts[i], starts[j - 1] + lengths[j - 1]  # the span doc[i:j]
                a, b = s - base, e - base
                rows.append((i, j, s, e))
                k += 1
                evs = [name for es, ee, name in events if es >= a and ee <= b] or None if events else None
                p = bisect_right(piece_starts, a) - 1
                line = pieces[p][4] if p >= 0 and pieces[p][4] is not None else t_line
                uid = f"{sid}-u{k:04d}"
                if ud is not None:  # the same as set_span_values, inlined: this loop is hot
                    ud[("._.", "utterance_id", s, e)] = uid
                    ud[("._.", "turn", s, e)] = t_turn
                    ud[("._.", "speaker", s, e)] = speaker
                    ud[("._.", "speaker_name", s, e)] = speaker_name
                    ud[("._.", "char_start", s, e)] = a
                    ud[("._.", "char_end", s, e)] = b
                    ud[("._.", "line", s, e)] = line
                    ud[("._.", "events", s, e)] = evs
                else:
                    slow.append((uid, t_turn, speaker, speaker_name, a, b, line, evs))
                table.append((t_pos, s, e))
                recs.append([uid, t_turn, speaker, speaker_name, None, None, a, b, evs])
        if spans:
            doc.spans["utterances"] = group = span_group(doc, "utterances", "utterance", rows)
            for span, values in zip(group, slow):
                set_span_values(doc, span, dict(zip(_UTT_NAMES, values)))
        doc.user_data[_UTTS_KEY] = table
        doc.user_data[_RECS_KEY] = recs
        if spans:
            _set_sentence_starts(doc, [r[0] for r in rows])
        doc._.segmented = True
        return doc


_UTT_NAMES = ("utterance_id", "turn", "speaker", "speaker_name", "char_start", "char_end", "line", "events")


def _set_sentence_starts(doc: Doc, starts: list[int]) -> None:
    """Make ``doc.sents`` the utterances, given the index of each one's first token (in one
    array write: setting ``token.is_sent_start`` one token at a time rescans the whole Doc
    each time)."""
    if not len(doc):
        return
    arr = numpy.full((len(doc), 1), -1, dtype="int32")
    arr[0, 0] = 1
    arr[starts, 0] = 1
    doc.from_array([SENT_START], arr.astype("uint64"))


def _token_ranges(index: CharIndex, base: int, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
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


def _delimited(text: str, base: int, units: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
    """The character offsets of the units (offsets from ``base``) in ``text``, when each one
    has whitespace (or the text's ends) around it: the tokenizer splits at every change
    between whitespace and other characters, so such a unit starts and ends tokens and its
    token range covers exactly it (what _token_ranges would give, without the tokens). Else
    None."""
    n = len(text)
    out = []
    for a, b in units:
        s, e = base + a, base + b
        if s >= e or (s and not text[s - 1].isspace()) or (e < n and not text[e].isspace()):
            return None
        out.append((s, e))
    return out


def _sentence_end(text: str, j: int) -> int:
    m = _TERMINAL.search(text, j)
    return m.start() if m else len(text)


def _units(text: str, cuts: list[int]) -> list[tuple[int, int]]:
    """The stretches between cuts, without surrounding whitespace (empty ones dropped)."""
    out = []
    a = 0
    for b in cuts + [len(text)]:
        chunk = text[a:b]
        stripped = chunk.strip()
        if stripped:
            a2 = a + len(chunk) - len(chunk.lstrip())
            out.append((a2, a2 + len(stripped)))
        a = b
    return out


# --------------------------------------------------------------------------- times
@Language.factory("rupture_times", default_config={"words_per_second": 2.5, "decimals": 3})
def make_time_assigner(nlp: Language, name: str, words_per_second: float, decimals: int) -> "TimeAssigner":
    return TimeAssigner(words_per_second, decimals)


class TimeAssigner:
    """Sets ``start``/``end`` (seconds) on turns and utterances from the pieces' source times.

    Times are interpolated by word position (:class:`rupture_nlp.timeline.Timeline`); where the
    source gives no time at all they stay None. ``words_per_second`` extends the timeline
    before the first and after the last source time; ``decimals`` rounds the results.
    """

    def __init__(self, words_per_second: float = 2.5, decimals: int = 3):
        if words_per_second <= 0:
            raise ValueError("rupture_times: words_per_second must be positive")
        self.rate, self.decimals = words_per_second, decimals

    def __call__(self, doc: Doc) -> Doc:
        ud = doc.user_data
        spans = _RECORDS_ONLY not in ud
        if doc._.timed:
            return doc
        if spans:
            if "turns" not in doc.spans or "utterances" not in doc.spans:
                return doc
        elif _TURNS_KEY not in ud or _UTTS_KEY not in ud:
            return doc
        doc._.timed = True
        text = doc_text(doc)
        turns = _turn_table(doc)
        utts = _utterance_table(doc, turns)
        times = self._times_vectorised(text, turns, utts)
        if times is None:
            times = self._times(text, turns, utts)
        if times is None or times is _NO_SOURCE_TIMES:  # no source times at all
            return doc
        t_times, u_times = times
        if spans and _FAST:
            for (s, e, *_r), (st, en) in zip(turns, t_times):
                ud[("._.", "start", s, e)] = st
                ud[("._.", "end", s, e)] = en
            for (_t, s, e), (st, en) in zip(utts, u_times):
                ud[("._.", "start", s, e)] = st
                ud[("._.", "end", s, e)] = en
        elif spans:
            for (s, e, *_r), (st, en) in zip(turns, t_times):
                set_span_values(doc, doc.char_span(s, e, alignment_mode="expand"), {"start": st, "end": en})
            for (_t, s, e), (st, en) in zip(utts, u_times):
                set_span_values(doc, doc.char_span(s, e, alignment_mode="expand"), {"start": st, "end": en})
        recs = ud.get(_RECS_KEY)
        if recs is not None and len(recs) == len(utts):
            for rec, (st, en) in zip(recs, u_times):
                rec[4], rec[5] = st, en
        return doc

    def _times(self, text: str, turns: list[tuple], utts: list[tuple]) -> tuple[list, list] | None:
        """``(start, end)`` of every turn and utterance, rounded (None without source times)."""
        # word positions: a turn's words are counted by the spaces before an offset (turn texts
        # have single spaces); a piece or utterance starts at a word and ends after one
        pos: list[int] = []
        secs: list[float] = []
        is_start: list[bool] = []
        bases: list[int] = []
        base = 0
        count = text.count
        for t_start, t_end, *_rest, pieces in turns:
            bases.append(base)
            for cs, ce, st, en, _line in pieces:
                if st is not None:
                    pos.append(base + count(" ", t_start, t_start + cs))
                    secs.append(float(st))
                    is_start.append(True)
                if en is not None:
                    pos.append(base + count(" ", t_start, t_start + ce) + (ce > 0))
                    secs.append(float(en))
                    is_start.append(False)
            base += count(" ", t_start, t_end) + (t_end > t_start)
        if not pos:
            return None
        if any(x > y for x, y in zip(pos, pos[1:])):
            order = sorted(range(len(pos)), key=pos.__getitem__)  # stable: ties stay in spoken order
            pos, secs, is_start = [pos[i] for i in order], [secs[i] for i in order], [is_start[i] for i in order]
        tl = Timeline(pos, secs, is_start, self.rate)
        # the word position where each turn and utterance starts, and just after its end
        t_first = bases
        t_after = [off + count(" ", t[0], t[1]) + 1 for t, off in zip(turns, bases)]
        u_first = [bases[t_pos] + count(" ", turns[t_pos][0], s) for t_pos, s, _e in utts]
        u_after = [bases[t_pos] + count(" ", turns[t_pos][0], e) + 1 for t_pos, _s, e in utts]
        # seconds at each of these positions, rounded; each distinct position and value once
        # (a turn starts and ends where its first and last utterance do)
        rounded = _Rounder(self.decimals)
        at_start = _times_at(tl, t_first + u_first, "start", rounded)
        at_end = _times_at(tl, t_after + u_after, "end", rounded)
        t_times = [(st, max(st, at_end[q])) for st, q in zip([at_start[p] for p in t_first], t_after)]
        u_times = [(st, max(st, at_end[q])) for st, q in zip([at_start[p] for p in u_first], u_after)]
        return t_times, u_times

    def _times_vectorised(self, text: str, turns: list[tuple], utts: list[tuple]) -> tuple | None:
        """:meth:`_times` with the word counts and the timeline in numpy: the same values
        (see :meth:`Timeline.at_array`); _NO_SOURCE_TIMES when there are none; None where
        this does not apply (then use _times)."""
        if not turns:
            return None
        # character offsets of the spaces: text.count(" ", a, b) == nsp(b) - nsp(a)
        if text.isascii():
            chars = numpy.frombuffer(text.encode("ascii"), dtype=numpy.uint8)
        else:
            chars = numpy.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        spaces = numpy.flatnonzero(chars == 32)

        def nsp(offsets):
            return numpy.searchsorted(spaces, offsets, "left")

        t_start = numpy.array([t[0] for t in turns], dtype=numpy.int64)
        t_end = numpy.array([t[1] for t in turns], dtype=numpy.int64)
        t_words = nsp(t_end) - nsp(t_start)  # spaces in each turn
        bases = numpy.zeros(len(turns), dtype=numpy.int64)
        numpy.cumsum((t_words + (t_end > t_start))[:-1], out=bases[1:])
        # anchors in spoken order: each piece's start, then its end (one word further on
        # after a non-empty piece)
        a_turn, a_off, a_plus, a_secs, a_start = [], [], [], [], []
        for k, (ts, _te, *_rest, pieces) in enumerate(turns):
            for cs, ce, st, en, _line in pieces:
                if st is not None:
                    a_turn.append(k)
                    a_off.append(ts + cs)
                    a_plus.append(0)
                    a_secs.append(float(st))
                    a_start.append(True)
                if en is not None:
                    a_turn.append(k)
                    a_off.append(ts + ce)
                    a_plus.append(ce > 0)
                    a_secs.append(float(en))
                    a_start.append(False)
        if not a_turn:
            return _NO_SOURCE_TIMES
        a_turn = numpy.array(a_turn, dtype=numpy.int64)
        pos = bases[a_turn] + nsp(numpy.array(a_off, dtype=numpy.int64)) - nsp(t_start[a_turn]) \
            + numpy.array(a_plus, dtype=numpy.int64)
        secs = numpy.array(a_secs, dtype=numpy.float64)
        is_start = numpy.array(a_start, dtype=bool)
        if (pos[1:] < pos[:-1]).any():
            order = numpy.argsort(pos, kind="stable")  # ties stay in spoken order
            pos, secs, is_start = pos[order], secs[order], is_start[order]
        tl = Timeline(pos, secs, is_start, self.rate)
        u_turn = numpy.array([u[0] for u in utts], dtype=numpy.int64)
        u_s = numpy.array([u[1] for u in utts], dtype=numpy.int64)
        u_e = numpy.array([u[2] for u in utts], dtype=numpy.int64)
        u_base = bases[u_turn] - nsp(t_start[u_turn])
        firsts = numpy.concatenate([bases, u_base + nsp(u_s)])
        afters = numpy.concatenate([bases + t_words + 1, u_base + nsp(u_e) + 1])
        starts = tl.at_array(firsts, "start")
        ends = tl.at_array(afters, "end")
        if starts is None or ends is None:
            return None
        starts = round_array(starts, self.decimals)
        ends = numpy.maximum(starts, round_array(ends, self.decimals))  # as max(start, end): start on a tie
        both = list(zip(starts.tolist(), ends.tolist()))
        return both[:len(turns)], both[len(turns):]


# What TimeAssigner._times_vectorised gives for a Doc without any source time.
_NO_SOURCE_TIMES = ((), ())


class _Rounder(dict):
    """``rounder[x] == round(x, decimals)``, each distinct value rounded once (rounding to
    decimal places is slow: it goes through a decimal string)."""

    def __init__(self, decimals: int):
        super().__init__()
        self.decimals = decimals

    def __missing__(self, x: float) -> float:
        r = round(x, self.decimals)
        if x:  # not 0.0 or -0.0, which are equal as keys but keep their own signs
            self[x] = r
        return r


def round_array(values: numpy.ndarray, decimals: int) -> numpy.ndarray:
    """``[round(x, decimals) for x in values]`` as a float64 array, the very same floats.

    Python rounds the exact binary value of ``x`` to a decimal (half to even) and returns the
    float nearest to that decimal. With ``y = x * 10**decimals`` computed in floats (off by
    less than 1e-7 for ``0 < y < 1e9``), ``floor(y + 0.5)`` is that decimal's integer ``k``
    whenever ``y`` is further than 1e-6 from a half, and ``k / 10**decimals`` (an IEEE
    division of two exact numbers) is the nearest float to it. The other values (near a
    half, zero, negative, huge, not finite, other ``decimals``) are rounded by ``round``."""
    x = numpy.asarray(values, dtype=numpy.float64)
    if not isinstance(decimals, int) or not 0 <= decimals <= 15:
        return numpy.array([round(v, decimals) for v in x.tolist()], dtype=numpy.float64)
    scale = 10.0 ** decimals
    y = x * scale
    with numpy.errstate(invalid="ignore", over="ignore"):
        t = y + 0.5
        k = numpy.floor(t)
        f = t - k
        safe = (y > 0) & (y < 1e9) & (f > 1e-6) & (f < 1 - 1e-6)
        out = k / scale
    if not safe.all():
        for i in numpy.flatnonzero(~safe).tolist():
            out[i] = round(float(x[i]), decimals)
    return out


def _times_at(tl: Timeline, positions: list[int], side: str, rounded: _Rounder) -> dict[int, float]:
    """``{position: round(tl.at(position, side), decimals)}`` for the given positions."""
    distinct = list(dict.fromkeys(positions))
    return dict(zip(distinct, [rounded[x] for x in tl.at_each(distinct, side)]))


# --------------------------------------------------------------------------- pipeline
PIPELINE = ("rupture_events", "rupture_utterances", "rupture_times")


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


# --------------------------------------------------------------------------- records
def doc_to_session(doc: Doc) -> Session:
    """The canonical :class:`~rupture_nlp.records.Session` of a processed Doc."""
    utts = []
    text = doc_text(doc)
    ud = doc.user_data
    names = ("utterance_id", "turn", "speaker", "speaker_name", "start", "end", "char_start", "char_end",
             "events", "labels", "scores", "extra")
    for s, e in _utterance_offsets(doc):
        if _FAST:
            uid, turn, speaker, name, start, end, cs, ce, events, labels, scores, extra = [
                ud.get(("._.", n, s, e)) for n in names]
        else:
            uid, turn, speaker, name, start, end, cs, ce, events, labels, scores, extra = span_values(
                doc, doc.char_span(s, e, alignment_mode="expand"), names)
        shown = ud.get((_TEXT_KEY, s, e))  # set by session_to_doc where the Doc shows it trimmed
        utts.append(Utterance(
            id=uid, turn=turn, speaker=speaker, text=text[s:e] if shown is None else shown, start=start, end=end,
            speaker_name=name, char_start=cs, char_end=ce, events=events, labels=labels, scores=scores,
            extra=dict(extra or {})))
    return Session(session_id=doc._.session_id or "session", utterances=utts, meta=dict(doc._.meta or {}),
                   extra=dict(doc._.extra or {}))


def plain_pipeline(nlp: Language) -> bool:
    """Whether ``nlp`` runs exactly the project's components (:data:`PIPELINE`, these classes),
    so that nothing else touches the Docs it makes (see :func:`plain_session_json`), with
    spaCy's own tokenizer and no special case that joins text across whitespace (so tokens
    never span a change between whitespace and other characters, see
    :func:`make_record_doc`)."""
    names = tuple(nlp.pipe_names)
    return names == PIPELINE and all(
        type(nlp.get_pipe(n)) is c for n, c in zip(names, (EventMarker, UtteranceSegmenter, TimeAssigner))) \
        and _splits_at_whitespace(nlp.tokenizer)


_TOKENIZERS_CHECKED: dict[int, tuple[Any, int, bool]] = {}


def _splits_at_whitespace(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` is a spaCy Tokenizer whose special cases (its only way to make a
    token across whitespace) never mix whitespace and other characters."""
    from spacy.tokenizer import Tokenizer
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


def plain_session_json(doc: Doc) -> tuple[str, int, str] | None:
    """``(session_id, number of utterances, doc_to_session(doc).to_json())`` for a Doc made by
    :func:`make_doc` and run through a :func:`plain_pipeline` and nothing else; None when the
    components did not record their values (then use :func:`doc_to_session`).

    The JSON is written from the values the components recorded as they set them (the same
    values, as nothing else has run), straight into the text ``json.dumps(...,
    ensure_ascii=False)`` gives for the canonical record: its keys in the order of
    ``Utterance.to_dict``, the separators ``", "``/``": "``, strings escaped by the json
    module's own function, numbers as ``repr``, so without building the record's Session,
    Utterance and dict objects first."""
    ud = doc.user_data
    recs, table = ud.get(_RECS_KEY), ud.get(_UTTS_KEY)
    if recs is None or table is None or len(recs) != len(table) or doc._.extra is not None:
        return None
    if _RECORDS_ONLY not in ud and ("utterances" not in doc.spans or len(doc.spans["utterances"]) != len(table)):
        return None
    text = doc_text(doc)
    q = _json_string
    finite = math.isfinite
    out = []
    add = out.append
    who_of = None
    who = ""
    for (_t, s, e), (uid, turn, speaker, name, start, end, cs, ce, evs) in zip(table, recs):
        if type(turn) is not int or type(cs) is not int or type(ce) is not int:
            return None
        if (speaker, name) != who_of:  # the same for all utterances of a turn
            who_of = speaker, name
            who = f', "speaker": {q(speaker)}' + ("" if name is None else f', "speaker_name": {q(name)}')
        st = "null" if start is None else repr(start) if type(start) is float and finite(start) else _json_value(start)
        en = "null" if end is None else repr(end) if type(end) is float and finite(end) else _json_value(end)
        ev = "" if evs is None else f', "events": [{", ".join(map(q, evs))}]'
        add(f'{{"id": {q(uid)}, "turn": {turn}{who}, "text": {q(text[s:e])}, "start": {st}, "end": {en}, '
            f'"char_start": {cs}, "char_end": {ce}{ev}}}')
    sid = doc._.session_id or "session"
    return sid, len(out), (f'{{"session_id": {q(sid)}, "meta": {_json_value(dict(doc._.meta or {}))}, '
                           f'"utterances": [{", ".join(out)}]}}')


_json_string = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) uses for str
_json_value = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(..., ensure_ascii=False)


def _utterance_offsets(doc: Doc) -> list[tuple[int, int]]:
    """``(start_char, end_char)`` of every utterance span: from the side table when it matches
    the span group (same length, same first and last span), else from the spans."""
    if "utterances" not in doc.spans:
        return []
    group = doc.spans["utterances"]
    table = doc.user_data.get(_UTTS_KEY)
    if table is not None and len(table) == len(group) and (
            not table or (group[0].start_char, group[-1].end_char) == (table[0][1], table[-1][2])):
        return [(s, e) for _t, s, e in table]
    return [(u.start_char, u.end_char) for u in group]


def session_to_doc(nlp: Language, session: Session) -> Doc:
    """A Doc for an already segmented session: its utterances become ``doc.spans["utterances"]``
    exactly as they are (ids, texts, times, labels, scores kept; nothing is re-segmented or
    re-timed), so ``doc_to_session(session_to_doc(nlp, s))`` equals ``s``.

    Turn texts are rebuilt from the utterances (at their ``char_start`` offsets when these are
    consistent, else joined by single spaces); an utterance text that is empty or has
    surrounding whitespace is shown trimmed (or as ``_``) in the Doc and kept as it was.
    """
    groups = session.turns()
    turns, layouts = [], []
    for group in groups:
        text, spans = _layout(group)
        layouts.append(spans)
        turns.append(Turn(speaker=group[0].speaker, speaker_name=group[0].speaker_name or group[0].speaker,
                          text=text, pieces=[TurnPiece(a, b, u.start, u.end, None)
                                             for (a, b), u in zip(spans, group)]))
    doc = make_doc(nlp, turns, session_id=session.session_id, meta=session.meta)
    doc._.extra = dict(session.extra)
    index = CharIndex(doc)
    out = []
    table = doc.user_data[_TURNS_KEY]
    for k, (turn_span, group, spans) in enumerate(zip(doc.spans["turns"], groups, layouts)):
        set_span_values(doc, turn_span, {"turn": group[0].turn})
        table[k] = table[k][:2] + (group[0].turn,) + table[k][3:]
        base = turn_span.start_char
        for u, (a, b) in zip(group, spans):
            span = index.span(base + a, base + b, "utterance")
            if doc_text(doc)[span.start_char:span.end_char] != u.text:
                doc.user_data[(_TEXT_KEY, span.start_char, span.end_char)] = u.text
            set_span_values(doc, span, {
                "utterance_id": u.id, "turn": u.turn, "speaker": u.speaker, "speaker_name": u.speaker_name,
                "start": u.start, "end": u.end, "char_start": u.char_start, "char_end": u.char_end,
                "events": u.events, "labels": u.labels, "scores": u.scores, "extra": dict(u.extra)})
            out.append(span)
    doc.spans["utterances"] = out
    _set_sentence_starts(doc, [span.start for span in out])
    doc._.segmented = doc._.timed = True
    return doc


def _shown(text: str) -> str:
    return text if text and text == text.strip() else (text.strip() or "_")


def _layout(group: list[Utterance]) -> tuple[str, list[tuple[int, int]]]:
    """Turn text and utterance offsets for the utterances of one turn."""
    texts = [_shown(u.text) for u in group]
    pos = [u.char_start for u in group]
    if pos[0] == 0 and all(p is not None for p in pos) and all(u.text == t for u, t in zip(group, texts)):
        # the offsets of the source turn, when every gap is at least one character
        if all(p >= q + len(t) + 1 for p, q, t in zip(pos[1:], pos, texts)):
            spans = [(p, p + len(t)) for p, t in zip(pos, texts)]
            text = "".join(" " * (p - (spans[i - 1][1] if i else 0)) + t for i, (p, t) in enumerate(zip(pos, texts)))
            return text, spans
    spans, cur = [], 0
    for t in texts:
        spans.append((cur, cur + len(t)))
        cur += len(t) + 1
    return " ".join(texts), spans
