"""The extension attributes of a session Doc, and where their values live.

``import rupture_nlp.segment`` registers (once, unless already registered):

* on ``Doc``: :data:`DOC_ATTRS` (spaCy's own storage, with these defaults);
* on ``Span``: :data:`SPAN_ATTRS`, all None by default, and the getter ``is_backchannel``.

The span values are kept in this package's own entry ``doc.user_data["rupture"]`` (the
*store*), read and written by the extensions' getters and setters, so that ``span._.speaker``
and the components' bulk writes (:func:`span_values`) see the same values without creating a
Span object per value. As with spaCy's own storage, spans with the same character offsets
share their values (a turn and its only utterance, say); unlike it, spaCy's functions that
read its storage directly (``Doc.to_json(underscore=...)``, ``Span.as_doc``,
``Doc.from_docs``) do not see them. The store is a plain dict that ``Doc.to_bytes`` (and so
``nlp.pipe(n_process=...)``) serialises:

``"spans"``
    ``{start_char: {end_char: {attribute: value}}}``: the span values; ``"shown_text"`` there is
    an utterance text that the Doc shows trimmed (see
    :func:`~rupture_nlp.segment.session_to_doc`).
``"text"``
    ``doc.text``, cached (:func:`doc_text`).
``"turns"``, ``"utterances"``, ``"events"``, ``"records_only"``
    the side tables of :mod:`rupture_nlp.segment.tables`.
"""

from __future__ import annotations

from typing import Any, Callable

from spacy.tokens import Doc, Span

from .rules import is_backchannel_text

#: The Doc attributes and their defaults.
DOC_ATTRS: dict[str, Any] = {"session_id": None, "meta": None, "extra": None, "segmented": False, "timed": False}
#: The Span attributes (None unless set).
SPAN_ATTRS = (
    "utterance_id",
    "turn",
    "speaker",
    "speaker_name",
    "start",
    "end",
    "char_start",
    "char_end",
    "events",
    "line",
    "pieces",
    "labels",
    "scores",
    "extra",
)
#: The key of this package's entry in ``doc.user_data``.
STORE = "rupture"

_NONE: dict[str, Any] = {}


def store(doc: Doc) -> dict[str, Any]:
    """The store of ``doc`` (made empty on first use)."""
    st = doc.user_data.get(STORE)
    if st is None:
        st = doc.user_data[STORE] = {"spans": {}}
    return st


def span_values(spans: dict[int, dict[int, dict[str, Any]]], start: int, end: int) -> dict[str, Any]:
    """The values of the span at ``start:end`` (characters) in ``spans`` (``store(doc)["spans"]``),
    as a dict to read and write (made empty on first use)."""
    row = spans.get(start)
    if row is None:
        row = spans[start] = {}
    values = row.get(end)
    if values is None:
        values = row[end] = {}
    return values


def set_values(spans: dict[int, dict[int, dict[str, Any]]], start: int, end: int, values: dict[str, Any]) -> None:
    """Set ``values`` (a dict that is the caller's no more) on the span at ``start:end``."""
    row = spans.get(start)
    if row is None:
        spans[start] = {end: values}
    elif end not in row:
        row[end] = values
    else:
        row[end].update(values)


def values_at(spans: dict[int, dict[int, dict[str, Any]]], start: int, end: int) -> dict[str, Any]:
    """The values of the span at ``start:end``, to read only (empty when there are none)."""
    row = spans.get(start)
    return (row.get(end) if row else None) or _NONE


def _accessors(name: str) -> tuple[Callable[[Span], Any], Callable[[Span, Any], None]]:
    def get(span: Span) -> Any:
        st = span.doc.user_data.get(STORE)
        return None if st is None else values_at(st["spans"], span.start_char, span.end_char).get(name)

    def set_(span: Span, value: Any) -> None:
        span_values(store(span.doc)["spans"], span.start_char, span.end_char)[name] = value

    return get, set_


def _is_backchannel(span: Span) -> bool:
    return is_backchannel_text(span.text)


for _name, _default in DOC_ATTRS.items():
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, default=_default)
for _name in SPAN_ATTRS:
    if not Span.has_extension(_name):
        _get, _set = _accessors(_name)
        Span.set_extension(_name, getter=_get, setter=_set)
if not Span.has_extension("is_backchannel"):
    Span.set_extension("is_backchannel", getter=_is_backchannel)


def doc_text(doc: Doc) -> str:
    """``doc.text``, cached: spaCy rebuilds ``doc.text`` (and ``span.text``) from all tokens on
    every call, which is most of the cost of a fast pipeline. Slicing the cached text by
    ``span.start_char:span.end_char`` gives ``span.text``."""
    st = store(doc)
    text = st.get("text")
    if text is None or len(text) != (doc[-1].idx + len(doc[-1].text_with_ws) if len(doc) else 0):
        text = st["text"] = doc.text
    return text
