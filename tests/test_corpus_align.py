"""Segmenter-aligned corpus: the label projection rule, and training units = what `tag` sees."""

from __future__ import annotations

import collections
import importlib.util
from pathlib import Path

import pytest

from rupture_nlp.corpus.align import align_session, has_content, project_labels, render_vtt
from rupture_nlp.records import Session, read_sessions
from rupture_nlp.tagging import tag_files


ROOT = Path(__file__).resolve().parents[1]


def build_corpus_module():
    spec = importlib.util.spec_from_file_location("build_corpus", ROOT / "scripts" / "build_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def authored(session_id: str) -> Session:
    """A corpus session as authored (one utterance per source line), from its source file."""
    bc = build_corpus_module()
    path = next((ROOT / "corpora" / "src").rglob(f"{session_id}.txt"))
    meta, utts, problems = bc.parse_file(path, set(bc.schema_label_ids()))
    assert not problems
    return Session.from_dict(bc.to_canonical(meta, utts))


def test_has_content_ignores_fillers_backchannels_and_events():
    assert not has_content("Mm-hmm.") and not has_content("Um, yeah, okay. [laughs]") and not has_content("")
    assert has_content("I said no.") and has_content("Okay, fine, whatever you think.")


def test_projection_rule_by_hand():
    # source 0 (labelled) spans units 0 ("Okay.") and 1 (content): the label goes to unit 1 only
    # source 1 (labelled) has only a filler unit: it keeps its label there
    # sources 2 and 3 (both labelled) share unit 3: the union, each label once
    labels = project_labels(
        [["repair/invite_discussion"], ["withdrawal/minimal_response"], ["a", "b"], ["b", "c"], []],
        [[0], [0], [1], [2, 3], [4]],
        [False, True, False, True, True],
    )
    assert labels == [[], ["repair/invite_discussion"], ["withdrawal/minimal_response"], ["a", "b", "c"], []]
    with pytest.raises(ValueError, match="no unit"):
        project_labels([["x"], []], [[1]], [True])


def test_aligned_units_keep_every_label_once_and_cover_every_line():
    s = authored("b1-cbt-01")
    a = align_session(s)
    assert a.session_id == s.session_id and a.meta["units"] == "segmenter"
    assert len(a.utterances) > len(s.utterances)  # long lines become several units
    before = collections.Counter(l for u in s.utterances for l in u.labels or [])
    after = collections.Counter(l for u in a.utterances for l in u.labels or [])
    assert after == before
    covered = {i for u in a.utterances for i in u.extra["source_ids"]}
    assert covered == {u.id for u in s.utterances}
    by_id = {u.id: u for u in s.utterances}
    for u in a.utterances:
        assert u.speaker == by_id[u.extra["source_ids"][0]].speaker
        if u.labels:  # a labelled unit comes from a labelled line
            assert any(set(u.labels) & set(by_id[i].labels or []) for i in u.extra["source_ids"])
        assert u.start is not None and u.end is not None and u.end >= u.start


def test_a_raw_rendering_of_a_corpus_session_tags_into_exactly_the_training_units(tiny_model, tmp_path):
    dev = {s.session_id: s for s in read_sessions(ROOT / "corpora" / "dev.jsonl")}
    sid = sorted(dev)[0]
    raw = tmp_path / f"{sid}.vtt"
    raw.write_text(render_vtt(authored(sid)), encoding="utf-8")
    assert "||" not in raw.read_text() and "withdrawal/" not in raw.read_text()
    out = tmp_path / "tagged.jsonl"
    rep = tag_files([raw], tiny_model("lora"), out)
    assert rep.ok
    (tagged,) = list(read_sessions(out))
    train = dev[sid]
    assert [(u.id, u.speaker, u.text, u.start, u.end) for u in tagged.utterances] == [
        (u.id, u.speaker, u.text, u.start, u.end) for u in train.utterances
    ]
