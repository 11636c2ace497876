"""The ``rupture_markers`` spaCy component: model predictions on the utterance spans.

Add it after the segmentation pipeline (``rupture_nlp.ingest.make_pipeline()`` /
``rupture_nlp.segment.make_pipeline()``)::

    nlp = make_pipeline()
    nlp.add_pipe("rupture_markers", config={"model": "models/rupture-3rs-minilm"})

For every span of ``doc.spans["utterances"]`` it sets ``span._.labels`` (predicted label ids)
and ``span._.scores`` ({label id: probability}); ``doc.spans["rupture_markers"]`` gets one span
per predicted label (``span.label_`` is the label id), ready for displaCy's span visualiser;
``doc._.rupture_model`` names the model version. ``nlp.pipe`` tags many docs per batch.
The factory is registered on import of this module and through the ``spacy_factories`` entry
point, so ``add_pipe`` finds it without an explicit import once rupture-nlp is installed.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..errors import RuptureError

if not Doc.has_extension("rupture_model"):
    Doc.set_extension("rupture_model", default=None)


class RuptureMarkers:
    """Callable spaCy component wrapping a :class:`~rupture_nlp.model.RuptureClassifier`."""

    def __init__(self, nlp: Language, name: str, model: str, batch_size: int, threads: int | None, spans_key: str):
        from .. import segment  # noqa: F401  registers the utterance span extensions
        from .classifier import RuptureClassifier

        if not model:
            raise RuptureError('rupture_markers needs config={"model": MODEL_DIR}')
        self.name = name
        self.model_dir = str(model)
        self.clf = RuptureClassifier.from_pretrained(Path(model), threads=threads)
        self.batch_size = int(batch_size)
        self.spans_key = spans_key

    def __call__(self, doc: Doc) -> Doc:
        self._tag([doc])
        return doc

    def pipe(self, stream: Iterable[Doc], batch_size: int = 16) -> Iterator[Doc]:
        it = iter(stream)
        while chunk := list(islice(it, batch_size)):
            self._tag(chunk)
            yield from chunk

    def _tag(self, docs: list[Doc]) -> None:
        from ..segment import doc_to_session

        sessions = []
        for d in docs:
            if "utterances" not in d.spans:
                raise RuptureError(
                    "rupture_markers needs utterance spans: add it after the segmentation pipeline (rupture_utterances)"
                )
            sessions.append(doc_to_session(d))
        tagged = self.clf.predict(sessions, batch_size=self.batch_size)
        for d, s in zip(docs, tagged):
            spans = list(d.spans["utterances"])
            markers = []
            for span, u in zip(spans, s.utterances):
                span._.labels = list(u.labels or [])
                span._.scores = dict(u.scores or {})
                markers += [Span(d, span.start, span.end, label=l) for l in u.labels or []]
            d.spans[self.spans_key] = markers
            d._.rupture_model = self.clf.model_version


@Language.factory(
    "rupture_markers", default_config={"model": None, "batch_size": 64, "threads": None, "spans_key": "rupture_markers"}
)
def make_rupture_markers(
    nlp: Language, name: str, model: str | None, batch_size: int, threads: int | None, spans_key: str
) -> RuptureMarkers:
    """spaCy factory of :class:`RuptureMarkers` (config: model directory, batch size, threads, span key)."""
    return RuptureMarkers(nlp, name, model or "", batch_size, threads, spans_key)
