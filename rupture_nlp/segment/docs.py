"""Session Docs: made from a reader's turns (:func:`make_doc`, :func:`make_record_doc`) or from
an already segmented canonical session (:func:`session_to_doc`)."""

from __future__ import annotations

from typing import Sequence

from spacy.attrs import ORTH, SPACY
from spacy.language import Language
from spacy.tokens import Doc

from ..errors import RuptureError
from ..readers.base import Turn, TurnPiece
from ..records import Session, Utterance
from .extensions import doc_text, span_values, store
from .tables import CharIndex, set_sentence_starts, span_group

#: Longest session text (characters, turns joined by newlines) made into one Doc: about 150
#: times a long real session (an hour of talk is some 60,000 characters). spaCy's own
#: ``nlp.max_length`` (1,000,000) guards the memory of parsers and entity recognisers, which
#: this pipeline does not have: above it the text is tokenized turn by turn
#: (:func:`_tokenize`); above this limit a session is refused.
MAX_SESSION_CHARS = 10_000_000

_CHUNK_CHARS = 100_000


def make_doc(nlp: Language, turns: Sequence[Turn], *, session_id: str, meta: dict | None = None) -> Doc:
    """An unprocessed Doc for one session: text = turn texts joined by newlines, one span per
    turn in ``doc.spans["turns"]`` carrying speaker, times and pieces. Run ``nlp(doc)`` next."""
    return _make_doc(nlp, turns, session_id, meta, spans=True)


def make_record_doc(nlp: Language, turns: Sequence[Turn], *, session_id: str, meta: dict | None = None) -> Doc:
    """A Doc like :func:`make_doc`'s that only serves
    :func:`~rupture_nlp.segment.doc_to_session` (for the canonical record of a session that is
    not handed out as a Doc) with a :func:`~rupture_nlp.segment.plain_pipeline`: the
    components keep their side tables and the values of the utterances, but make no span
    groups, turn values or sentence starts, which nothing reads from such a Doc. A turn or
    utterance with whitespace (or the text's ends) around it is taken to start and end tokens
    without looking them up, which is so with that pipeline's tokenizer. Not for any other
    use."""
    return _make_doc(nlp, turns, session_id, meta, spans=False)


def _tokenize(nlp: Language, turns: Sequence[Turn], text: str) -> Doc:
    """``nlp.make_doc(text)`` for ``text`` = the turn texts joined by newlines. A text longer
    than ``nlp.max_length`` is tokenized in runs of whole turns of about 100,000 characters
    (the tokenizer splits at whitespace first, so the tokens are the same) and the Docs of the
    runs joined into one."""
    if len(text) <= nlp.max_length:
        return nlp.make_doc(text)
    if len(text) > MAX_SESSION_CHARS:
        raise RuptureError(
            f"session too long to segment ({len(text):,} characters of text; the limit is "
            f"{MAX_SESSION_CHARS:,}): split the transcript into several files"
        )
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
    st = store(doc)
    st["text"] = text
    if not spans:
        st["records_only"] = True
    values = st["spans"]
    doc._.session_id = session_id
    doc._.meta = dict(meta or {})
    ranges, table = [], []
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
            s, e = index.chars(*r)
            ranges.append(r)
        offset += n + 1
        pieces = [[p.char_start, p.char_end, p.start, p.end, p.line] for p in t.pieces]
        if spans:
            span_values(values, s, e).update(
                turn=i, speaker=t.speaker, speaker_name=t.speaker_name, line=t.line, pieces=pieces
            )
        table.append((s, e, i, t.speaker, t.speaker_name, t.line, pieces))
    if spans:
        doc.spans["turns"] = span_group(doc, "turns", "turn", ranges)
    st["turns"] = table
    return doc


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
        turns.append(
            Turn(
                speaker=group[0].speaker,
                speaker_name=group[0].speaker_name or group[0].speaker,
                text=text,
                pieces=[TurnPiece(a, b, u.start, u.end, None) for (a, b), u in zip(spans, group)],
            )
        )
    doc = make_doc(nlp, turns, session_id=session.session_id, meta=session.meta)
    doc._.extra = dict(session.extra)
    index = CharIndex(doc)
    out = []
    st = store(doc)
    table, values, text = st["turns"], st["spans"], doc_text(doc)
    for k, (turn_span, group, spans) in enumerate(zip(doc.spans["turns"], groups, layouts)):
        span_values(values, turn_span.start_char, turn_span.end_char)["turn"] = group[0].turn
        table[k] = table[k][:2] + (group[0].turn,) + table[k][3:]
        base = turn_span.start_char
        for u, (a, b) in zip(group, spans):
            span = index.span(base + a, base + b, "utterance")
            v = span_values(values, span.start_char, span.end_char)
            if text[span.start_char : span.end_char] != u.text:
                v["shown_text"] = u.text  # what doc_to_session gives as the utterance's text
            v.update(
                utterance_id=u.id,
                turn=u.turn,
                speaker=u.speaker,
                speaker_name=u.speaker_name,
                start=u.start,
                end=u.end,
                char_start=u.char_start,
                char_end=u.char_end,
                events=u.events,
                labels=u.labels,
                scores=u.scores,
                extra=dict(u.extra),
            )
            out.append(span)
    doc.spans["utterances"] = out
    set_sentence_starts(doc, [span.start for span in out])
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
