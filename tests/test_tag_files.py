"""Batch tagging: canonical output validated, CSV, resuming after an interruption, bad files."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rupture_nlp.model import RuptureClassifier
from rupture_nlp.records import read_sessions
from rupture_nlp.tagging import journal_path, score_column, tag_files
from rupture_nlp.validate import validate_file

from model_helpers import data_dir


def sessions_of(event) -> int:
    """The sessions count of a ``tag`` progress event (message ``"1,480 sessions[, 2 failed]"``)."""
    return int(event.message.split()[0].replace(",", ""))


def interrupt_after(n: int, events: list | None = None):
    """A progress callback that plays Ctrl-C once ``n`` sessions are safely in the journal."""

    def progress(event) -> None:
        if events is not None:
            events.append(event)
        if sessions_of(event) >= n:
            raise KeyboardInterrupt

    return progress


@pytest.fixture(scope="module")
def clf(tiny_model):
    return RuptureClassifier.from_pretrained(tiny_model("lora"))


@pytest.fixture()
def inputs(tmp_path, tiny_model):
    """Two canonical input files (2 + 2 sessions of 12 utterances) from the tiny model's data."""
    src = data_dir(tiny_model("lora"))
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join((src / "train.jsonl").read_text().splitlines(keepends=True)[:2]))
    shutil.copy(src / "dev.jsonl", b)
    return [a, b]


def test_tagged_output_is_valid_canonical_jsonl_with_ids_kept(clf, inputs, tmp_path):
    out, out_csv = tmp_path / "out.jsonl", tmp_path / "out.csv"
    rep = tag_files(inputs, clf, out, out_csv, batch_utterances=20)
    assert rep.ok and rep.sessions == 4 and rep.utterances == 48 and rep.resumed_sessions == 0
    assert list(validate_file(out, clf.schema)) == []
    got = list(read_sessions(out))
    want = [s for p in inputs for s in read_sessions(p)]
    assert [s.session_id for s in got] == [s.session_id for s in want]
    for g, w in zip(got, want):
        assert [(u.id, u.text, u.start, u.end, u.turn) for u in g.utterances] == [
            (u.id, u.text, u.start, u.end, u.turn) for u in w.utterances
        ]
        for u in g.utterances:
            assert set(u.scores) == set(clf.schema.label_ids)
            assert all(l in clf.schema.label_ids for l in u.labels)
    # CSV: one row per utterance, one score column per label, the same numbers as the JSONL
    with out_csv.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 48
    assert list(rows[0])[:7] == ["session", "id", "speaker", "start", "end", "text", "labels"]
    assert list(rows[0])[7:] == [score_column(l) for l in clf.schema.label_ids]
    u0 = got[0].utterances[0]
    assert rows[0]["id"] == u0.id and rows[0]["labels"] == ";".join(u0.labels)
    assert float(rows[0][score_column("withdrawal/denial")]) == u0.scores["withdrawal/denial"]
    assert not journal_path(out).exists()


def test_batching_does_not_change_scores(clf, inputs, tmp_path):
    tag_files(inputs[1:], clf, tmp_path / "small.jsonl", batch_utterances=1)
    tag_files(inputs[1:], clf, tmp_path / "big.jsonl", batch_utterances=10_000)
    a = [u.scores for s in read_sessions(tmp_path / "small.jsonl") for u in s.utterances]
    b = [u.scores for s in read_sessions(tmp_path / "big.jsonl") for u in s.utterances]
    assert all(abs(x[k] - y[k]) <= 2e-4 for x, y in zip(a, b) for k in x)


def test_resume_after_interruption_skips_what_was_written(clf, inputs, tmp_path, caplog):
    full = tmp_path / "full.jsonl"
    tag_files(inputs, clf, full, batch_utterances=12)
    out, out_csv = tmp_path / "out.jsonl", tmp_path / "out.csv"
    first: list = []
    # the third session is inside the second file: one file done, one half done
    with pytest.raises(KeyboardInterrupt):
        tag_files(inputs, clf, out, out_csv, batch_utterances=12, progress=interrupt_after(3, first))
    assert [(e.done, sessions_of(e)) for e in first] == [(0, 0), (0, 1), (0, 2), (1, 2), (1, 3)]
    assert not out.exists() and not out_csv.exists()
    assert journal_path(out).exists()
    head = json.loads(journal_path(out).read_text().splitlines()[0])
    assert head["model_version"] == clf.model_version
    events = []
    with caplog.at_level(logging.INFO, logger="rupture_nlp"):
        rep = tag_files(inputs, clf, out, out_csv, batch_utterances=12, progress=events.append)
    assert rep.resumed_files == 1 and rep.resumed_sessions == 3 and rep.sessions == 4
    # the resumed file counts at once; then only the fourth session is tagged
    assert [(e.done, sessions_of(e)) for e in events] == [(0, 0), (1, 2), (1, 4), (2, 4)]
    assert any("resuming" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)
    assert out.read_text() == full.read_text()
    assert not journal_path(out).exists()


def test_torn_journal_line_and_other_model_start_over(clf, inputs, tmp_path, caplog):
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        tag_files(inputs, clf, out, progress=interrupt_after(1))
    j = journal_path(out)
    with j.open("a", encoding="utf-8") as f:
        f.write('{"fp": "sha256:ab", "session": {"session_id": "half')  # a write cut short
    rep = tag_files(inputs, clf, out)
    assert rep.ok and rep.resumed_sessions >= 1 and len(list(read_sessions(out))) == 4
    # a journal written by another model is not trusted
    with pytest.raises(KeyboardInterrupt):
        tag_files(inputs, clf, out, progress=interrupt_after(1))
    lines = j.read_text().splitlines()
    lines[0] = json.dumps({**json.loads(lines[0]), "model_version": "other@000000000000"})
    j.write_text("\n".join(lines) + "\n")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rupture_nlp"):
        rep = tag_files(inputs, clf, out)
    assert rep.resumed_sessions == 0 and any("starting over" in r.getMessage() for r in caplog.records)


def test_changed_input_is_not_resumed(clf, inputs, tmp_path):
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        tag_files(inputs[:1], clf, out, progress=interrupt_after(1))
    lines = inputs[0].read_text().splitlines()
    inputs[0].write_text(lines[1] + "\n")  # the file was edited meanwhile
    rep = tag_files(inputs[:1], clf, out)
    assert rep.resumed_sessions == 0 and [s.session_id for s in read_sessions(out)] == ["tr01"]


def test_bad_files_are_reported_and_skipped(clf, inputs, tmp_path):
    bad = tmp_path / "bad.jsonl"
    good_then_bad = inputs[1].read_text().splitlines()[0] + "\n{broken\n"
    bad.write_text(good_then_bad)
    missing = tmp_path / "missing.jsonl"
    out = tmp_path / "out.jsonl"
    rep = tag_files([inputs[0], bad, missing, inputs[1]], clf, out)
    assert not rep.ok
    failed = dict(rep.failed)
    assert set(failed) == {str(bad), str(missing)}
    assert f"{bad}:2:" in failed[str(bad)]  # file and line
    ids = [s.session_id for s in read_sessions(out)]
    assert ids == ["tr00", "tr01", "dv00", "dv01"]  # nothing from the bad file


def test_output_may_not_overwrite_an_input(clf, inputs):
    from rupture_nlp.errors import RuptureError

    with pytest.raises(RuptureError, match="also an input"):
        tag_files(inputs, clf, inputs[0])


def test_cli_tag_exit_status_and_csv(inputs, tmp_path, tiny_model):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    out, out_csv = tmp_path / "o.jsonl", tmp_path / "o.csv"
    r = subprocess.run(
        [
            str(Path(sys.executable).with_name("rupture")),
            "tag",
            str(inputs[1]),
            str(bad),
            "--model",
            str(tiny_model("lora")),
            "--out",
            str(out),
            "--csv",
            str(out_csv),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 1, r.stderr
    assert f"{bad}:1:" in r.stderr and "Traceback" not in r.stderr
    assert len(list(read_sessions(out))) == 2
    assert len(out_csv.read_text().splitlines()) == 1 + 24


def test_transcripts_go_through_the_segmentation_pipeline(clf, inputs, tmp_path):
    txt = tmp_path / "week3.txt"
    txt.write_text(
        "T: How was the week? Did the diary help?\nC: Not really. [sighs]\nT: What got in the way?\n", encoding="utf-8"
    )
    out = tmp_path / "out.jsonl"
    rep = tag_files([txt, inputs[1]], clf, out)
    assert rep.ok
    first, *rest = list(read_sessions(out))
    assert first.session_id == "week3" and [s.session_id for s in rest] == ["dv00", "dv01"]
    assert [u.speaker for u in first.utterances][:2] == ["therapist", "therapist"]
    assert all(u.scores is not None for u in first.utterances)
    assert list(validate_file(out, clf.schema)) == []
