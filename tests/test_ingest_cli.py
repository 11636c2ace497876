"""`rupture segment`: batches with good and bad files, atomic output, options."""

from __future__ import annotations

import json

import pytest

from ingest_helpers import run_cli, write
from rupture_nlp.errors import RuptureError
from rupture_nlp.ingest import segment_files
from rupture_nlp.records import read_sessions
from rupture_nlp.validate import validate_file

GOOD_TXT = "T: How was the week? Anything new?\nC: Not really. [sighs]\n"
GOOD_VTT = (
    "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Therapist>Hello.\n\n00:00:02.500 --> 00:00:03.000\n<v Client>Hi.\n"
)


@pytest.fixture()
def batch(tmp_path):
    d = tmp_path / "in"
    good = [
        write(d / "a.txt", GOOD_TXT),
        write(d / "b.vtt", GOOD_VTT),
        write(d / "c.csv", "speaker,text\nT,Okay.\nC,Mm-hmm.\n"),
    ]
    bad = [
        write(d / "empty.txt", b""),
        write(d / "nocol.csv", "speaker,what\nT,hi\n"),
        write(d / "bad.jsonl", '{"session_id": "x", "utterances": []}\n{oops\n'),
        write(d / "scan.pdf", b"%PDF-1.4\n..."),
    ]
    return tmp_path, good, bad


def test_batch_goes_on_after_bad_files_and_exits_1(monkeypatch, capsys, batch):
    tmp, good, bad = batch
    out = tmp / "out" / "seg.jsonl"
    code, stdout, stderr = run_cli(monkeypatch, capsys, "segment", *map(str, good + bad), "--out", str(out))
    assert code == 1
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == len(bad)
    for p in bad:
        assert sum(str(p) in ln for ln in lines) == 1
    assert "bad.jsonl:2:" in stderr and "Traceback" not in stderr
    assert "3 session(s)" in stderr and "4 file(s) failed" in stderr
    sessions = list(read_sessions(out))
    assert [s.session_id for s in sessions] == ["a", "b", "c"]  # nothing of the bad JSONL's good first line
    assert list(validate_file(out)) == []
    assert sorted(p.name for p in out.parent.iterdir()) == ["seg.jsonl"]  # no temporary files left


def test_all_good_exit_0_and_directories_expand(monkeypatch, capsys, batch):
    tmp, good, _ = batch
    out = tmp / "all.jsonl"
    code, _, stderr = run_cli(monkeypatch, capsys, "segment", str(good[0]), str(good[1]), "--out", str(out))
    assert code == 0, stderr
    first = out.read_text()
    # the same inputs again: byte-identical output
    code, _, _ = run_cli(monkeypatch, capsys, "segment", str(good[0]), str(good[1]), "--out", str(out))
    assert code == 0 and out.read_text() == first
    d = tmp / "only_good"
    for p in good:
        write(d / p.name, p.read_bytes())
    code, _, stderr = run_cli(monkeypatch, capsys, "segment", str(d), "-o", str(tmp / "dir.jsonl"))
    assert code == 0 and len(list(read_sessions(tmp / "dir.jsonl"))) == 3


def test_when_every_file_fails_the_old_output_is_left_alone(monkeypatch, capsys, batch):
    tmp, _, bad = batch
    out = write(tmp / "keep.jsonl", "previous content\n")
    code, _, stderr = run_cli(monkeypatch, capsys, "segment", *map(str, bad), "--out", str(out))
    assert code == 1 and "no output written" in stderr
    assert out.read_text() == "previous content\n"
    assert sorted(p.name for p in tmp.iterdir() if p.is_file()) == ["keep.jsonl"]


def test_interrupt_leaves_no_output(tmp_path, batch):
    tmp, good, _ = batch
    out = tmp / "int.jsonl"

    def stop(event):
        if event.done:  # after the first file (not at the start)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        segment_files(good, out, progress=stop)
    assert not out.exists()
    assert [p for p in tmp.iterdir() if p.name.startswith(".int.jsonl")] == []


def test_speakers_and_format_options(monkeypatch, capsys, tmp_path):
    p = write(tmp_path / "names.log", "DR. LEE: Hello.\nMARIA: Hi.\n")
    out = tmp_path / "o.jsonl"
    code, _, stderr = run_cli(monkeypatch, capsys, "segment", str(p), "--out", str(out))
    assert code == 1 and "DR. LEE" in stderr and "MARIA" in stderr and "--speakers" in stderr
    code, _, stderr = run_cli(
        monkeypatch,
        capsys,
        "segment",
        str(p),
        "--out",
        str(out),
        "--speakers",
        "DR. LEE=therapist,MARIA=client",
        "--format",
        "txt",
    )
    assert code == 0, stderr
    s = json.loads(out.read_text())
    assert [(u["speaker"], u["speaker_name"]) for u in s["utterances"]] == [
        ("therapist", "DR. LEE"),
        ("client", "MARIA"),
    ]
    code, _, stderr = run_cli(monkeypatch, capsys, "segment", str(p), "--out", str(out), "--speakers", "LEE")
    assert code == 1 and "expected NAME=therapist" in stderr and "Traceback" not in stderr
    code, _, stderr = run_cli(monkeypatch, capsys, "segment", str(p), "--out", str(out), "--format", "docx")
    assert code == 2 and "--format" in stderr and "txt, csv" in stderr and "internal error" not in stderr


def test_duplicate_session_ids_and_output_equal_to_input(tmp_path):
    a = write(tmp_path / "x" / "s1.txt", GOOD_TXT)
    b = write(tmp_path / "y" / "s1.vtt", GOOD_VTT)
    rep = segment_files([a, b], tmp_path / "o.jsonl")
    errors = rep.failures
    assert rep.files_ok == 1 and len(errors) == 1 and "already used" in errors[0].message
    assert errors[0].path == str(b)
    with pytest.raises(RuptureError, match="also an input"):
        segment_files([tmp_path / "o.jsonl"], tmp_path / "o.jsonl")
