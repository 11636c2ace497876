"""Sessions -> Label Studio tasks: parts, pre-annotations, keys, uncertainty (no server needed)."""

from __future__ import annotations

import pytest

from ls_helpers import make_session
from rupture_nlp.errors import RuptureError
from rupture_nlp.labelstudio.config import controls
from rupture_nlp.labelstudio.tasks import (
    order_tasks,
    session_tasks,
    sessions_to_tasks,
    split_parts,
    task_key,
    utterance_uncertainty,
)
from rupture_nlp.schema import load_schema


@pytest.mark.parametrize(
    "n,chunk,overlap",
    [(0, 10, 2), (1, 10, 2), (10, 10, 2), (11, 10, 2), (13, 10, 2), (37, 10, 3), (130, 60, 5), (59, 60, 0)],
)
def test_parts_own_every_utterance_once(n, chunk, overlap):
    parts = split_parts(n, chunk, overlap)
    owned = [i for p in parts for i in range(p.start, p.end)]
    assert owned == list(range(n))
    for p in parts:
        assert p.start - p.context_start == (min(overlap, p.start) if p.index else 0)
        assert p.end - p.start <= chunk + max(1, chunk // 4)
    if len(parts) > 1:  # no tiny tail part
        assert parts[-1].end - parts[-1].start >= chunk // 4


def test_bad_chunk_settings():
    with pytest.raises(RuptureError, match="--chunk"):
        split_parts(5, 0, 0)
    with pytest.raises(RuptureError, match="--overlap"):
        split_parts(5, 4, 4)


def test_tasks_carry_utterances_context_and_one_region_per_label():
    schema = load_schema()
    s = make_session("s7", 21, seed=1)
    tasks = session_tasks(s, schema, chunk=10, overlap=3, model_version="m1")
    assert [t["data"]["task_key"] for t in tasks] == [
        task_key("s7", i) for i in range(2)
    ]  # 21 = 10 + 11 (short tail joined)
    ctrl = controls(schema)
    for t in tasks:
        d = t["data"]
        shown = d["utterances"]
        assert [u["id"] for u in shown] == [
            u.id for u in s.utterances[d["first_index"] : d["first_index"] + len(shown)]
        ]
        assert all("labels" not in u and "scores" not in u for u in shown)
        assert all(u["ls_speaker"].startswith("context · ") == (i < d["context_before"]) for i, u in enumerate(shown))
        assert "[" in shown[0]["ls_speaker"]  # times shown
        pred = t["predictions"][0]
        assert pred["model_version"] == "m1"
        want = {
            (u["id"], l)
            for u in shown[d["context_before"] :]
            for l in next(x for x in s.utterances if x.id == u["id"]).labels
        }
        got = set()
        for r in pred["result"]:
            v = r["value"]
            assert isinstance(v["start"], str)  # as the UI writes them; numbers are not drawn
            assert v["start"] == v["end"] and int(v["start"]) >= d["context_before"]  # never on context
            assert r["type"] == "paragraphlabels" and r["to_name"] == "dialogue"
            (label,) = v["paragraphlabels"]
            assert r["from_name"] == ctrl[label]
            assert v["text"] == shown[int(v["start"])]["text"] and v["endOffset"] == len(v["text"])
            got.add((shown[int(v["start"])]["id"], label))
        assert got == want and want
        assert len({r["id"] for r in pred["result"]}) == len(pred["result"])
    assert tasks[1]["data"]["context_before"] == 3 and tasks[0]["data"]["context_before"] == 0
    assert tasks[0]["data"]["session"] == {"meta": s.meta, "extra": {}}


def test_scores_give_region_scores_task_score_and_uncertainty_order():
    schema = load_schema()
    sure = make_session("sure", 6, seed=2)
    sure.utterances[1].labels = ["withdrawal/denial"]
    for u in sure.utterances:
        u.scores = {"withdrawal/denial": 0.99 if "withdrawal/denial" in u.labels else 0.01}
    unsure = make_session("unsure", 6, seed=2)
    for u in unsure.utterances:
        u.scores = {"withdrawal/denial": 0.55}
    plain = make_session("plain", 6, seed=2)
    tasks = sessions_to_tasks([plain, sure, unsure], schema, chunk=10, overlap=0, model_version="m")
    by = {t["data"]["session_id"]: t for t in tasks}
    assert by["unsure"]["data"]["uncertainty"] > 0.8 > 0.1 > by["sure"]["data"]["uncertainty"]
    assert by["sure"]["predictions"][0]["score"] == pytest.approx(1 - by["sure"]["data"]["uncertainty"], abs=1e-3)
    assert "uncertainty" not in by["plain"]["data"] and "score" not in by["plain"]["predictions"][0]
    region = next(
        r for r in by["sure"]["predictions"][0]["result"] if r["value"]["paragraphlabels"] == ["withdrawal/denial"]
    )
    assert region["score"] == 0.99
    assert [t["data"]["session_id"] for t in order_tasks(tasks, "uncertainty")] == ["unsure", "sure", "plain"]
    assert [t["data"]["session_id"] for t in order_tasks(tasks, "session")] == ["plain", "sure", "unsure"]
    with pytest.raises(RuptureError, match="needs scores"):
        order_tasks(sessions_to_tasks([plain], schema), "uncertainty")


def test_uncertainty_is_highest_at_the_threshold():
    assert utterance_uncertainty({"a": 0.3}, {"a": 0.3}) == 1.0
    assert utterance_uncertainty({"a": 0.0}, {"a": 0.3}) == 0.0
    assert utterance_uncertainty({"a": 1.0}, {"a": 0.3}) == 0.0
    assert utterance_uncertainty({"a": 0.65, "b": 0.01}, {}) == pytest.approx(0.7)
    assert utterance_uncertainty(None, {}) is None


def test_unknown_label_and_repeated_session_are_refused():
    schema = load_schema()
    s = make_session("s1", 4)
    s.utterances[1].labels = ["withdrawal/made_up"]
    with pytest.raises(RuptureError, match="s1-u0002.*made_up"):
        session_tasks(s, schema)
    with pytest.raises(RuptureError, match="occurs twice"):
        sessions_to_tasks([make_session("a", 2), make_session("a", 3)], schema)


def test_predictions_pass_label_studios_own_validation():
    from label_studio_sdk.label_interface import LabelInterface
    from rupture_nlp.labelstudio import label_config

    schema = load_schema()
    li = LabelInterface(label_config(schema))
    tasks = session_tasks(make_session("v", 30, seed=4, with_scores=True), schema, chunk=10, overlap=2)
    assert len(tasks) == 3
    for t in tasks:
        assert t["predictions"][0]["result"]
        assert li.validate_prediction(t["predictions"][0], return_errors=True) == []
    bad = dict(tasks[0]["predictions"][0]["result"][0])
    bad["value"] = {**bad["value"], "paragraphlabels": ["not/a_label"]}
    assert li.validate_prediction({"model_version": "m", "result": [bad]}, return_errors=True)


def test_empty_session_gives_no_task():
    from rupture_nlp.records import Session

    assert session_tasks(Session(session_id="empty"), load_schema()) == []


def test_without_model_version_no_prediction():
    (t,) = session_tasks(make_session("s", 3), load_schema(), model_version=None)
    assert "predictions" not in t
