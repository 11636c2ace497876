"""A processed session Doc to the canonical record (:func:`doc_to_session`)."""

from __future__ import annotations

from spacy.tokens import Doc

from ..records import Session, Utterance
from .extensions import doc_text, store, values_at
from .tables import utterance_offsets


def doc_to_session(doc: Doc) -> Session:
    """The canonical :class:`~rupture_nlp.records.Session` of a processed Doc (of
    :func:`~rupture_nlp.segment.make_doc`, :func:`~rupture_nlp.segment.make_record_doc`,
    :func:`~rupture_nlp.segment.session_to_doc` or ``nlp(text)``): one utterance per
    utterance span, with the values of its extension attributes."""
    utts = []
    text = doc_text(doc)
    values = store(doc)["spans"]
    for s, e in utterance_offsets(doc):
        v = values_at(values, s, e)
        shown = v.get("shown_text")  # set by session_to_doc where the Doc shows it trimmed
        utts.append(
            Utterance(
                id=v.get("utterance_id"),
                turn=v.get("turn"),
                speaker=v.get("speaker"),
                text=text[s:e] if shown is None else shown,
                start=v.get("start"),
                end=v.get("end"),
                speaker_name=v.get("speaker_name"),
                char_start=v.get("char_start"),
                char_end=v.get("char_end"),
                events=v.get("events"),
                labels=v.get("labels"),
                scores=v.get("scores"),
                extra=dict(v.get("extra") or {}),
            )
        )
    return Session(
        session_id=doc._.session_id or "session",
        utterances=utts,
        meta=dict(doc._.meta or {}),
        extra=dict(doc._.extra or {}),
    )
