"""The ``rupture_markers`` spaCy component on the segmentation pipeline's Docs."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import pytest

from rupture_nlp.errors import RuptureError
from rupture_nlp.ingest import load_docs, load_sessions, make_pipeline
from rupture_nlp.model import RuptureClassifier


TRANSCRIPT = """T: How did the week go? Did you try the breathing practice at all?
C: Not really.
T: Okay. What got in the way?
C: Honestly these exercises are a waste of my time. You keep giving me homework.
T: It sounds like the homework has felt like one more demand. Can we talk about that?
C: Fine. Whatever.
"""


@pytest.fixture(scope="module")
def nlp(tiny_model):
    n = make_pipeline()
    n.add_pipe("rupture_markers", config={"model": str(tiny_model("lora"))})
    return n


def test_factory_is_registered_as_a_spacy_entry_point():
    names = {ep.name for ep in entry_points(group="spacy_factories")}
    assert "rupture_markers" in names


def test_component_sets_labels_and_scores_on_utterance_spans(tiny_model, nlp, tmp_path):
    path = tmp_path / "s1.txt"
    path.write_text(TRANSCRIPT, encoding="utf-8")
    (doc,) = list(load_docs(path, nlp=nlp))
    spans = list(doc.spans["utterances"])
    assert len(spans) >= 8
    clf = RuptureClassifier.from_pretrained(tiny_model("lora"))
    (session,) = list(load_sessions(path))
    (want,) = clf.predict([session])
    assert doc._.rupture_model == clf.model_version
    for span, u in zip(spans, want.utterances):
        assert span._.utterance_id == u.id
        assert span._.labels == u.labels
        assert span._.scores == pytest.approx(u.scores, abs=1e-4)
    markers = list(doc.spans["rupture_markers"])
    assert sorted((m.start_char, m.label_) for m in markers) == sorted(
        (s.start_char, l) for s, u in zip(spans, want.utterances) for l in u.labels
    )


def test_pipe_tags_many_docs_like_one_at_a_time(tiny_model, nlp, tmp_path):
    from rupture_nlp.segment import session_to_doc
    from model_helpers import data_dir
    from rupture_nlp.records import read_sessions

    sessions = list(read_sessions(data_dir(tiny_model("lora")) / "dev.jsonl"))
    comp = nlp.get_pipe("rupture_markers")
    one = [comp(session_to_doc(nlp, s)) for s in sessions]
    many = list(comp.pipe((session_to_doc(nlp, s) for s in sessions), batch_size=8))
    a = np.array([[sp._.scores[k] for k in sorted(sp._.scores)] for d in one for sp in d.spans["utterances"]])
    b = np.array([[sp._.scores[k] for k in sorted(sp._.scores)] for d in many for sp in d.spans["utterances"]])
    np.testing.assert_allclose(a, b, atol=2e-4)


def test_component_needs_a_model_and_utterance_spans(tiny_model):
    import spacy

    with pytest.raises(RuptureError, match="needs config"):
        spacy.blank("en").add_pipe("rupture_markers")
    blank = spacy.blank("en")
    comp = blank.add_pipe("rupture_markers", config={"model": str(tiny_model("lora"))})
    with pytest.raises(RuptureError, match="utterance spans"):
        comp(blank("No utterance spans here."))
