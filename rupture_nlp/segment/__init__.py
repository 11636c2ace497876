"""The segmentation pipeline: turns in, identified and timed utterances out, as spaCy objects.

Built on ``spacy.blank("en")`` with three components of this project, registered by name
(``import rupture_nlp.segment`` registers them, so ``nlp.add_pipe("rupture_utterances")``
and ``spacy.load`` of a saved pipeline work):

``rupture_events``
    marks bracketed non-verbal events (``[laughs]``, ``[pause]``, ``[inaudible]``, and
    ``(laughs)``-style events from a configured word list) as ``doc.spans["events"]``.
``rupture_utterances``
    splits every turn into sentence-like utterances with rules for spoken transcripts (see
    :class:`SplitRules`) and sets ``doc.spans["utterances"]`` and sentence starts.
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

Speed: span values live in this package's own store in ``doc.user_data["rupture"]`` (the
extensions read and write it), and the components keep side tables there, because creating
spaCy objects for every value would cost more than the tokenizer itself. ``rupture
segment`` goes further for the sessions it only writes out: their Docs come from
:func:`make_record_doc` (no span groups, only the tables and the utterances' values).

The modules, one job each:

``rules``        the splitting rules, on plain strings (:class:`SplitRules`)
``extensions``   the extension attributes and the store they live in
``tables``       the side tables, character offsets to tokens
``docs``         making session Docs (:func:`make_doc`, :func:`session_to_doc`)
``times``        start and end times by word position
``components``   the spaCy components and :func:`make_pipeline`
``convert``      a Doc to the canonical record (:func:`doc_to_session`)
"""

from __future__ import annotations

from .components import (
    PIPELINE,
    EventMarker,
    TimeAssigner,
    UtteranceSegmenter,
    make_event_marker,
    make_pipeline,
    make_time_assigner,
    make_utterance_segmenter,
    plain_pipeline,
)
from .convert import doc_to_session
from .docs import MAX_SESSION_CHARS, make_doc, make_record_doc, session_to_doc
from .extensions import DOC_ATTRS, SPAN_ATTRS, doc_text
from .rules import (
    DEFAULT_ABBREVIATIONS,
    DEFAULT_BACKCHANNELS,
    DEFAULT_COMMA_BACKCHANNELS,
    DEFAULT_PAREN_EVENTS,
    SplitRules,
)
from .tables import CharIndex, event_offsets
from .times import round_array, session_times

__all__ = [
    "PIPELINE",
    "EventMarker",
    "TimeAssigner",
    "UtteranceSegmenter",
    "make_event_marker",
    "make_pipeline",
    "make_time_assigner",
    "make_utterance_segmenter",
    "plain_pipeline",
    "doc_to_session",
    "MAX_SESSION_CHARS",
    "make_doc",
    "make_record_doc",
    "session_to_doc",
    "DOC_ATTRS",
    "SPAN_ATTRS",
    "doc_text",
    "DEFAULT_ABBREVIATIONS",
    "DEFAULT_BACKCHANNELS",
    "DEFAULT_COMMA_BACKCHANNELS",
    "DEFAULT_PAREN_EVENTS",
    "SplitRules",
    "CharIndex",
    "event_offsets",
    "round_array",
    "session_times",
]
