"""Pull with several annotators, skips and unannotated tasks: nothing the server holds is lost."""

from __future__ import annotations

import json

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from ls_helpers import labels_by_id, make_session, tasks_by_key
from rupture_nlp.labelstudio import pull_project, push_sessions
from rupture_nlp.records import read_sessions
from rupture_nlp.schema import load_schema

pytestmark = pytest.mark.labelstudio


def _user(client, email: str) -> int:
    from label_studio_sdk.core.api_error import ApiError

    try:
        return client.sdk.users.create(email=email, username=email.split("@")[0], password="pw-" + email).id
    except ApiError:
        return next(u.id for u in client.sdk.users.list() if u.email == email)


def _result(task, labels_by_local: dict[int, list[str]]) -> list[dict]:
    """Regions as API clients write them: paragraph indexes as numbers (the UI writes strings;
    the loop tests use those). Pull reads both."""
    from rupture_nlp.labelstudio.config import controls

    ctrl = controls(load_schema())
    out = []
    for i, labels in labels_by_local.items():
        text = task.data["utterances"][i]["text"]
        for j, l in enumerate(labels):
            out.append(
                {
                    "id": f"r{i}-{j}",
                    "from_name": ctrl[l],
                    "to_name": "dialogue",
                    "type": "paragraphlabels",
                    "value": {
                        "start": i,
                        "end": i,
                        "startOffset": 0,
                        "endOffset": len(text),
                        "text": text,
                        "paragraphlabels": [l],
                    },
                }
            )
    return out


A, B, C = "withdrawal/denial", "confrontation/complaint_therapist", "repair/invite_discussion"
# task -> annotator -> {utterance index: labels}; "skip" = skipped task
PLAN = {
    "pa#0000": {"ann1": {0: [C], 1: [A], 3: [A, B]}, "ann2": {0: [C], 1: [A], 3: [B]}},
    "pb#0000": {"ann1": {1: [B], 2: [C]}, "ann2": {1: [A], 2: [C], 5: [B]}},
    "pc#0000": {"ann1": {1: [A]}, "ann2": "skip"},
    "pd#0000": {},  # nobody
}


def test_pull_keeps_every_annotation_and_resolves_by_policy(ls_server, tmp_path):
    schema = load_schema()
    client = ls_server.client()
    users = {"ann1": _user(client, "ann1@rupture.test"), "ann2": _user(client, "ann2@rupture.test")}
    sessions = [make_session(sid, 6, seed=i) for i, sid in enumerate(["pa", "pb", "pc", "pd"])]
    rep = push_sessions(client, sessions, "Two coders", schema, model_version=None)
    tasks = tasks_by_key(client, rep.project_id)
    for key, by in PLAN.items():
        for who, labels in by.items():
            if labels == "skip":
                client.sdk.annotations.create(id=tasks[key].id, result=[], was_cancelled=True, completed_by=users[who])
            else:
                client.sdk.annotations.create(
                    id=tasks[key].id, result=_result(tasks[key], labels), completed_by=users[who]
                )
    held = {a.id for t in tasks.values() for a in client.sdk.annotations.list(id=t.id)}  # submitted ones
    assert len(held) == 5

    out = tmp_path / "latest.jsonl"
    r = ls_server.rupture("ls", "pull", "--project", "Two coders", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "4 task(s), 5 annotation(s), 1 skipped" in r.stdout
    assert "1 task(s) without annotations: pd#0000" in r.stdout
    assert "1 session(s) not fully annotated (left out): pd" in r.stdout
    raw = json.loads((tmp_path / "latest.ls-export.json").read_text())
    exported = {a["id"]: a for t in raw for a in t["annotations"]}
    assert held < set(exported) and len(exported) == 6  # nothing the server holds is lost
    assert [a["was_cancelled"] for i, a in exported.items() if i not in held] == [True]  # the skip
    latest = {s.session_id: s for s in read_sessions(out)}
    assert sorted(latest) == ["pa", "pb", "pc"]

    def want(key, who):
        ids = [u["id"] for u in tasks[key].data["utterances"]]
        return {uid: sorted(PLAN[key][who].get(i, [])) for i, uid in enumerate(ids)}

    got = labels_by_id(latest.values())
    for key in ("pa#0000", "pb#0000"):  # ann2 annotated last
        assert {k: got[k] for k in want(key, "ann2")} == want(key, "ann2")
    assert {k: got[k] for k in want("pc#0000", "ann1")} == want("pc#0000", "ann1")
    assert latest["pa"].meta["labelstudio"]["annotators"] == ["ann1@rupture.test", "ann2@rupture.test"]

    # majority of two = both agree (the CLI is a thin layer: the API from here on)
    out = tmp_path / "majority.jsonl"
    rep = pull_project(client, "Two coders", out, schema, policy="majority")
    assert (rep.multi_annotated_tasks, rep.agreement_path) == (2, str(tmp_path / "majority.agreement.json"))
    got = labels_by_id(read_sessions(out))
    pa = [u["id"] for u in tasks["pa#0000"].data["utterances"]]
    pb = [u["id"] for u in tasks["pb#0000"].data["utterances"]]
    assert (got[pa[0]], got[pa[1]], got[pa[3]]) == ([C], [A], [B])
    assert (got[pb[1]], got[pb[2]], got[pb[5]]) == ([], [C], [])

    # agreement: Cohen's kappa per label over the utterances both coded (tasks pa and pb)
    agreement = json.loads((tmp_path / "majority.agreement.json").read_text())
    assert agreement["metric"] == "cohen_kappa" and agreement["tasks"] == 2 and agreement["utterances"] == 12
    for label in (A, B, C):
        codes = {
            who: [int(label in PLAN[k][who].get(i, [])) for k in ("pa#0000", "pb#0000") for i in range(6)]
            for who in ("ann1", "ann2")
        }
        expect = cohen_kappa_score(codes["ann1"], codes["ann2"])
        assert agreement["labels"][label]["value"] == pytest.approx(expect, abs=1e-4)
    assert agreement["labels"]["repair/redirect_refocus"]["value"] is None  # never used: undefined

    # one annotator only
    out = tmp_path / "ann1.jsonl"
    rep = pull_project(client, "Two coders", out, schema, annotator="ann1@rupture.test")
    assert rep.agreement is None and rep.sessions_written == 3
    got = labels_by_id(read_sessions(out))
    assert {k: got[k] for k in want("pb#0000", "ann1")} == want("pb#0000", "ann1")
    r = ls_server.rupture(
        "ls",
        "pull",
        "--project",
        "Two coders",
        "--out",
        str(tmp_path / "x.jsonl"),
        "--annotator",
        "nobody@rupture.test",
    )
    assert r.returncode == 1 and "no Label Studio user with email 'nobody@rupture.test'" in r.stderr

    # partial sessions on request
    out = tmp_path / "partial.jsonl"
    rep = pull_project(client, "Two coders", out, schema, include_partial=True)
    assert rep.partial_sessions == ["pd"] and rep.sessions_written == 4
    pd = next(s for s in read_sessions(out) if s.session_id == "pd")
    assert all(u.labels is None for u in pd.utterances)


def test_three_coders_give_krippendorffs_alpha(ls_server, tmp_path):
    schema = load_schema()
    client = ls_server.client()
    users = [_user(client, f"k{i}@rupture.test") for i in range(3)]
    rep = push_sessions(client, [make_session("k1", 8, seed=5)], "Three coders", schema, model_version=None)
    (task,) = tasks_by_key(client, rep.project_id).values()
    codes = [{0: [C], 1: [A], 4: [A]}, {0: [C], 1: [A], 5: [B]}, {0: [C], 3: [A], 4: [A]}]
    for uid, labels in zip(users, codes):
        client.sdk.annotations.create(id=task.id, result=_result(task, labels), completed_by=uid)
    out = tmp_path / "k.jsonl"
    pull_project(client, "Three coders", out, schema, policy="majority")
    agreement = json.loads((tmp_path / "k.agreement.json").read_text())
    assert agreement["metric"] == "krippendorff_alpha"
    data = np.array([[float(A in c.get(i, [])) for i in range(8)] for c in codes])
    assert agreement["labels"][A]["value"] == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"), abs=1e-4
    )
    got = labels_by_id(read_sessions(out))
    ids = [u["id"] for u in task.data["utterances"]]
    assert [got[i] for i in ids] == [[C], [A], [], [], [A], [], [], []]  # 2 of 3 keep a label


def test_hand_edited_projects_lose_nothing_silently(ls_server, tmp_path):
    """A part deleted by hand, a task imported twice by hand, a task not made by push."""
    from rupture_nlp.labelstudio.tasks import session_tasks

    schema = load_schema()
    client = ls_server.client()
    long, short = make_session("he-long", 16, seed=6), make_session("he-short", 5, seed=7)
    rep = push_sessions(client, [long, short], "Hand edited", schema, chunk=8, overlap=2, model_version=None)
    tasks = tasks_by_key(client, rep.project_id)
    client.sdk.tasks.delete(str(tasks["he-long#0001"].id))
    (copy,) = session_tasks(short, schema, model_version=None)  # the same task imported again by hand
    foreign = {"data": {"utterances": [{"ls_speaker": "someone", "text": "not ours"}], "title": "other"}}
    client.sdk.projects.import_tasks(rep.project_id, request=[copy, foreign])
    copies = [
        t
        for t in client.sdk.tasks.list(project=rep.project_id, fields="all")
        if t.data.get("task_key") == "he-short#0000"
    ]
    assert len(copies) == 2
    client.sdk.annotations.create(id=tasks["he-long#0000"].id, result=_result(tasks["he-long#0000"], {0: [C]}))
    client.sdk.annotations.create(
        id=copies[0].id, result=_result(copies[0], {1: [A]}), completed_by=_user(client, "ann1@rupture.test")
    )
    client.sdk.annotations.create(
        id=copies[1].id, result=_result(copies[1], {1: [A], 3: [B]}), completed_by=_user(client, "ann2@rupture.test")
    )
    out = tmp_path / "he.jsonl"
    report = pull_project(client, "Hand edited", out, schema, policy="majority")
    assert report.missing_parts == ["he-long"]
    assert len(report.foreign_tasks) == 1
    assert report.annotations == 3
    (s,) = read_sessions(out)
    assert s.session_id == "he-short"
    assert s.meta["labelstudio"]["annotators"] == ["ann1@rupture.test", "ann2@rupture.test"]
    assert [u.labels for u in s.utterances] == [[], [A], [], [], []]  # the copies' annotations pooled
