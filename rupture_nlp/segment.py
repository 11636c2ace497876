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
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from typing import Any, Iterable, Sequence

import numpy
import spacy
from spacy.attrs import IDX, SENT_START
from spacy.language import Language
from spacy.tokens import Doc, Span

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
    text = "\n".join(t.text for t in turns)
    doc = nlp.make_doc(text)
    doc.user_data[_TEXT_KEY] = text
    doc._.session_id = session_id
    doc._.meta = dict(meta or {})
    spans, table = [], []
    offset = 0
    index = CharIndex(doc)
    for i, t in enumerate(turns):
        span = index.span(offset, offset + len(t.text), "turn")
        offset += len(t.text) + 1
        pieces = [[p.char_start, p.char_end, p.start, p.end, p.line] for p in t.pieces]
        set_span_values(doc, span, {
            "turn": i, "speaker": t.speaker, "speaker_name": t.speaker_name, "line": t.line, "pieces": pieces})
        spans.append(span)
        table.append((span.start_char, span.end_char, i, t.speaker, t.speaker_name, t.line, pieces))
    doc.spans["turns"] = spans
    doc.user_data[_TURNS_KEY] = table
    return doc


# Side tables kept in ``doc.user_data`` so that the components need not rebuild spaCy Span
# objects for every turn and utterance (each costs microseconds); the span groups stay the
# public face, and the tables are rebuilt from them when they do not match.
_TURNS_KEY = "rupture_nlp.turns"  # [(start_char, end_char, turn, speaker, speaker_name, line, pieces)]
_UTTS_KEY = "rupture_nlp.utterances"  # [(index into the turn table, start_char, end_char)]


def _turn_table(doc: Doc) -> list[tuple]:
    table = doc.user_data.get(_TURNS_KEY)
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
    group = doc.spans["utterances"] if "utterances" in doc.spans else []
    if table is not None and len(table) == len(group):
        return table
    by_turn = {t[2]: k for k, t in enumerate(turns)}
    table = [(by_turn.get(span_values(doc, u, ("turn",))[0], 0), u.start_char, u.end_char) for u in group]
    doc.user_data[_UTTS_KEY] = table
    return table


class CharIndex:
    """Character offsets to token spans for one Doc, like ``doc.char_span(..., "expand")``
    but without creating a Token object per step (several times faster on long Docs)."""

    def __init__(self, doc: Doc):
        self.doc = doc
        self.starts = doc.to_array([IDX]).ravel().tolist() if len(doc) else []
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
        spans = []
        for m in self.regex.finditer(doc_text(doc)):
            label = " ".join(m.group()[1:-1].split()).lower() or "event"
            span = doc.char_span(m.start(), m.end(), label=label, alignment_mode="expand")
            if span is not None:
                spans.append(span)
        doc.spans["events"] = spans
        return doc


def event_offsets(doc: Doc) -> list[tuple[int, int, str]]:
    """All events of a Doc as ``(start_char, end_char, name)``, in order."""
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
_TERM_NEXT = re.compile(r"(?P<run>(?:\.{2,}|…|[.?!]+)[\"'”’»)\]]*)\s+"
                        r"(?P<lead>(?:\[[^\[\]\n]{0,80}\]\s*|\([a-z ]{1,30}\)\s*|[\"'“‘«(¿¡—–-]+\s*)*)"
                        r"(?P<word>[^\W_][\w'’-]*)?")
_WS = re.compile(r"\s*")
_DASH = re.compile(r"(?:-{2,}|—|(?<=\s)–)(?=\s*\S)")
_OPENERS = "\"'“‘«(¿¡"
_FIRST_WORD = re.compile(r"[^\W_][\w'’-]*")
_I_FORM = re.compile(r"I(?:['’](?:m|ve|d|ll))?")
_CLOSERS = "\"'”’»)]"
_WORD = re.compile(r"[^\W_]+")  # a unit without any is "wordless" (only events or punctuation)


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
        ev_start = {s: e for s, e, _ in events}
        cuts: list[int] = []

        for m in _TERM_NEXT.finditer(text):
            j = m.start("lead")
            if j >= n or (events and any(s < m.start() < e for s, e, _ in events)):
                continue
            word = m.group("word")
            first = word[0] if word else (text[m.end("lead")] if m.end("lead") < n else "")
            run = m.group("run")
            if "…" in run or ".." in run:
                if self._ellipsis_cuts(first, word or ""):
                    cuts.append(j)
            elif "?" in run or "!" in run:
                if not (first.islower() and run[-1] in _CLOSERS):
                    cuts.append(j)
            elif not first.islower():
                dot = m.start()
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
        units = _units(text, sorted(set(cuts))) if cuts else _units(text, [])
        if self.bc_run is not None:
            units = self._split_backchannels(text, units)
        if self.attach_events and len(units) > 1 and any(not text[a].isalnum() for a, _b in units):
            units = self._attach_wordless(text, units, events, piece_starts)
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
        prev = text[:ps].rstrip()
        if not prev:
            return False
        last = prev[-1]
        if last in ",;:":
            return False
        first, word = self._next_word(text, ps, ev_start)
        if prev.endswith(("...", "…")):
            return not first.islower()
        if last in ".?!" or (last in _CLOSERS and _TERMINAL.search(prev[-4:] + " ")) or last == "]" \
                or prev.endswith(("--", "—", "–")):
            return True
        nxt = text[ps:]
        if nxt.startswith(("--", "—", "[")) or ps in ev_start:
            return True
        return first.isupper() and not _I_FORM.fullmatch(word)

    def _split_backchannels(self, text: str, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        first = self.bc_first
        for a, b in units:
            m = self.bc_run.match(text, a, b) if text[a] in first else None
            if m:
                j = _WS.match(text, m.end()).end()
                run = m.group().rstrip()
                pure = all(w in self.comma_words for w in re.findall(r"[^\s,.!?]+", run.lower()))
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
        index = CharIndex(doc)
        ud = doc.user_data if _FAST else None
        out: list[Span] = []
        table: list[tuple[int, int, int]] = []
        k = 0
        for t_pos, (base, t_end, t_turn, speaker, speaker_name, t_line, pieces) in enumerate(turns):
            events = _events_between(all_events, ev_starts, base, t_end) if all_events else []
            piece_starts = [p[0] for p in pieces]
            ranges: list[tuple[int, int]] = []
            for a, b in self.split(text[base:t_end], piece_starts, events):
                r = index.tokens(base + a, base + b)
                if r is None:
                    continue
                if ranges and r[0] < ranges[-1][1]:  # a cut inside a token: keep the units together
                    ranges[-1] = (ranges[-1][0], max(r[1], ranges[-1][1]))
                else:
                    ranges.append(r)
            for i, j in ranges:
                span = index.span_of(i, j, "utterance")
                s, e = span.start_char, span.end_char
                a, b = s - base, e - base
                k += 1
                evs = [name for es, ee, name in events if es >= a and ee <= b] or None if events else None
                i = bisect_right(piece_starts, a) - 1
                line = pieces[i][4] if i >= 0 and pieces[i][4] is not None else t_line
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
                    set_span_values(doc, span, dict(zip(_UTT_NAMES, (uid, t_turn, speaker, speaker_name, a, b,
                                                                     line, evs))))
                out.append(span)
                table.append((t_pos, s, e))
        doc.spans["utterances"] = out
        doc.user_data[_UTTS_KEY] = table
        _set_sentence_starts(doc, out)
        doc._.segmented = True
        return doc


_UTT_NAMES = ("utterance_id", "turn", "speaker", "speaker_name", "char_start", "char_end", "line", "events")


def _set_sentence_starts(doc: Doc, utterances: list[Span]) -> None:
    """Make ``doc.sents`` the utterances (in one array write: setting ``token.is_sent_start``
    one token at a time rescans the whole Doc each time)."""
    if not len(doc):
        return
    arr = numpy.full((len(doc), 1), -1, dtype="int32")
    arr[0, 0] = 1
    for span in utterances:
        arr[span.start, 0] = 1
    doc.from_array([SENT_START], arr.astype("uint64"))


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
            a2 = a + chunk.index(stripped[0])
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
        if doc._.timed or "turns" not in doc.spans or "utterances" not in doc.spans:
            return doc
        doc._.timed = True
        text = doc_text(doc)
        turns = _turn_table(doc)
        utts = _utterance_table(doc, turns)
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
            return doc
        if any(x > y for x, y in zip(pos, pos[1:])):
            order = sorted(range(len(pos)), key=pos.__getitem__)  # stable: ties stay in spoken order
            pos, secs, is_start = [pos[i] for i in order], [secs[i] for i in order], [is_start[i] for i in order]
        tl = Timeline(pos, secs, is_start, self.rate)
        r = self.decimals
        ud = doc.user_data

        def put(s: int, e: int, start: float, end: float) -> None:
            if _FAST:
                ud[("._.", "start", s, e)] = start
                ud[("._.", "end", s, e)] = end
            else:
                set_span_values(doc, doc.char_span(s, e, alignment_mode="expand"), {"start": start, "end": end})

        for (t_start, t_end, *_r), off in zip(turns, bases):
            st = round(tl.at(off, "start"), r)
            put(t_start, t_end, st, max(st, round(tl.at(off + text.count(" ", t_start, t_end) + 1, "end"), r)))
        for t_pos, s, e in utts:
            t_start, off = turns[t_pos][0], bases[t_pos]
            st = round(tl.at(off + text.count(" ", t_start, s), "start"), r)
            en = round(tl.at(off + text.count(" ", t_start, e) + 1, "end"), r)
            put(s, e, st, max(st, en))
        return doc


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
    _set_sentence_starts(doc, out)
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
