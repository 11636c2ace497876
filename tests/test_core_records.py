import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from rupture_nlp.atomic import atomic_write
from rupture_nlp.cli import app
from rupture_nlp.errors import RuptureError
from rupture_nlp.records import Session, read_sessions, write_sessions
from rupture_nlp.schema import load_schema
from rupture_nlp.validate import validate_file

REC = {
    "session_id": "s01",
    "meta": {"therapist": "t1"},
    "custom_top": 1,
    "utterances": [
        {
            "id": "s01-u0001",
            "turn": 0,
            "speaker": "therapist",
            "speaker_name": "Dr. A",
            "text": "How are you?",
            "start": 1.0,
            "end": 2.0,
            "labels": [],
            "custom": {"x": 1},
        },
        {
            "id": "s01-u0002",
            "turn": 1,
            "speaker": "client",
            "text": "Fine.",
            "start": None,
            "end": None,
            "labels": ["withdrawal/minimal_response"],
            "scores": {"withdrawal/minimal_response": 0.9},
        },
    ],
}


def test_roundtrip_keeps_every_key(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text(json.dumps(REC) + "\n\n")
    sessions = list(read_sessions(p))
    assert len(sessions) == 1 and isinstance(sessions[0], Session)
    write_sessions(tmp_path / "b.jsonl", sessions)
    back = json.loads((tmp_path / "b.jsonl").read_text())
    assert back == REC
    assert [len(t) for t in sessions[0].turns()] == [1, 1]


def test_read_errors_name_file_and_line(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text(json.dumps(REC) + "\n{oops\n")
    it = read_sessions(p)
    next(it)
    with pytest.raises(RuptureError) as e:
        next(it)
    assert str(e.value).startswith(f"{p}:2: invalid JSON")
    p.write_text(json.dumps({"session_id": "x", "utterances": [{"id": "a", "turn": 0, "speaker": "doc", "text": "t"}]}))
    with pytest.raises(RuptureError, match=r":1: not a session record: utterance 0: speaker"):
        list(read_sessions(p))


def test_validate_reports_every_problem_with_line(tmp_path):
    bad = json.loads(json.dumps(REC))
    bad["utterances"][0]["speaker"] = "doctor"
    bad["utterances"][1]["start"] = "soon"
    dup = json.loads(json.dumps(REC))
    dup["utterances"][1]["id"] = "s01-u0001"
    dup["utterances"][1]["labels"] = ["not/a_label"]
    dup["utterances"][0]["end"] = 0.5
    p = tmp_path / "v.jsonl"
    p.write_text("\n".join([json.dumps(REC), json.dumps(bad), "{x", json.dumps(dup)]) + "\n")
    msgs = [str(m) for m in validate_file(p, load_schema())]
    assert any(m.startswith(f"{p}:2: utterances/0/speaker") for m in msgs)
    assert any(m.startswith(f"{p}:2: utterances/1/start") for m in msgs)
    assert any(m.startswith(f"{p}:3: invalid JSON") for m in msgs)
    assert any(m.startswith(f"{p}:4:") and "duplicate utterance id" in m for m in msgs)
    assert any(m.startswith(f"{p}:4:") and "not/a_label" in m for m in msgs)
    assert any(m.startswith(f"{p}:4:") and "before start" in m for m in msgs)
    assert any(m.startswith(f"{p}:4:") and "already used on line 1" in m for m in msgs)
    assert not any(":1:" in m for m in msgs)
    r = CliRunner().invoke(app, ["validate", str(p)])
    assert r.exit_code == 1
    p.write_text(json.dumps(REC) + "\n")
    assert CliRunner().invoke(app, ["validate", str(p)]).exit_code == 0


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.jsonl"]


def test_atomic_write_survives_sigkill(tmp_path):
    target = tmp_path / "out.txt"
    code = textwrap.dedent(f"""
        import os, signal
        from rupture_nlp.atomic import atomic_write
        with atomic_write({str(target)!r}) as f:
            f.write("partial")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()


def test_cli_errors_are_one_line(tmp_path):
    missing = tmp_path / "nope.yaml"
    proc = subprocess.run(
        [sys.executable, "-c", "from rupture_nlp.cli import main; main()", "labels", "--schema", str(missing)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert str(missing) in proc.stderr


def test_atomic_write_creates_owner_only_files_and_keeps_a_replaced_files_mode(tmp_path):
    target = tmp_path / "perm.txt"
    with atomic_write(target) as f:
        f.write("x")
    assert target.stat().st_mode & 0o777 == 0o600  # clinical data: owner only
    os.chmod(target, 0o640)
    with atomic_write(target) as f:
        f.write("y")
    assert target.read_text() == "y" and target.stat().st_mode & 0o777 == 0o640
