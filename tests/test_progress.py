"""One progress protocol (issue 11): library calls emit ``ProgressEvent``s and log notices; the CLI
draws a bar on a terminal and writes plain lines to a log file at most every PROGRESS_INTERVAL
seconds and at the end; no library module imports rich."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest_helpers import run_cli, write
from model_helpers import data_dir
from rupture_nlp.cli.app import ProgressDisplay, progress_line, progress_mode
from rupture_nlp.progress import ProgressEvent

cli_app = sys.modules["rupture_nlp.cli.app"]  # (``rupture_nlp.cli.app`` the attribute is the typer app)

ROOT = Path(__file__).resolve().parents[1]
#: The library modules on the protocol (none of them may import rich, directly or lazily).
LIBRARY_MODULES = [
    "rupture_nlp.progress",
    "rupture_nlp.tagging",
    "rupture_nlp.ingest",
    "rupture_nlp.labelstudio.push",
    "rupture_nlp.corpus.agreement",
]
TAG_LINE = re.compile(r"tag: (\d+)/(\d+) files, ([\d,]+) sessions?(, \d+ failed)? \((\d+s|\d+m\d\ds)\)")
TXT = "T: How did the {w} go this week?\nC: It was fine, the {w} was okay.\nT: What got in the way?\n"


def _transcripts(folder: Path, n: int) -> list[Path]:
    words = ["diary", "walk", "sleep", "work", "plan", "phone"]
    return [write(folder / f"s{i:02d}.txt", TXT.format(w=words[i % len(words)])) for i in range(n)]


def _progress_lines(stderr: str, pattern: re.Pattern = TAG_LINE) -> list[re.Match]:
    return [m for m in map(pattern.fullmatch, stderr.splitlines()) if m]


@pytest.fixture(scope="module")
def model(tiny_model) -> Path:
    return tiny_model("lora")


@pytest.fixture()
def lines_mode(monkeypatch):
    """stderr is no terminal (capsys) and the progress display is not forced either way."""
    monkeypatch.delenv("RUPTURE_PROGRESS", raising=False)


# ---------------------------------------------------------------- the CLI in a log file
def test_tag_writes_periodic_plain_lines_and_a_final_one(monkeypatch, capsys, tmp_path, lines_mode, model):
    monkeypatch.setattr(cli_app, "PROGRESS_INTERVAL", 0.0)  # every event is due
    files = _transcripts(tmp_path / "in", 6)
    out = tmp_path / "out.jsonl"
    code, stdout, stderr = run_cli(
        monkeypatch,
        capsys,
        "tag",
        str(tmp_path / "in"),
        "--out",
        str(out),
        "--model",
        str(model),
        "--batch-utterances",
        "1",
    )
    assert code == 0, stderr
    lines = _progress_lines(stderr)
    assert len(lines) >= 6, stderr  # periodic, not only the end
    done = [int(m.group(1)) for m in lines]
    assert done == sorted(done) and all(int(m.group(2)) == len(files) for m in lines)
    last = lines[-1]
    assert stderr.rstrip("\n").splitlines()[-1] == last.group(0)  # the final line comes last
    assert (int(last.group(1)), last.group(3)) == (len(files), str(len(files)))
    # no transcript text on stderr: every line is a progress line
    assert all(TAG_LINE.fullmatch(ln) for ln in stderr.splitlines()), stderr
    assert "diary" not in stderr and "wrote" in stdout


def test_a_short_run_writes_only_the_final_line(monkeypatch, capsys, tmp_path, lines_mode, model):
    assert cli_app.PROGRESS_INTERVAL == 30.0
    _transcripts(tmp_path / "in", 3)
    code, _, stderr = run_cli(
        monkeypatch, capsys, "tag", str(tmp_path / "in"), "--out", str(tmp_path / "o.jsonl"), "--model", str(model)
    )
    assert code == 0, stderr
    assert [m.group(0) for m in _progress_lines(stderr)] == [ln for ln in stderr.splitlines() if ln.startswith("tag:")]
    (only,) = _progress_lines(stderr)
    assert only.group(1, 2, 3) == ("3", "3", "3")


def test_a_quiet_library_still_gets_a_line_every_interval(monkeypatch, capsys):
    """Between two events (one long prediction batch, a slow server) the display repeats the last
    state with its time, so a log file never stays silent longer than the interval."""
    monkeypatch.setattr(cli_app, "PROGRESS_INTERVAL", 0.1)
    with ProgressDisplay(mode="lines") as show:
        show(ProgressEvent("push", 0, 40, "tasks"))
        time.sleep(0.65)
    err = capsys.readouterr().err.splitlines()
    assert 3 <= len(err) <= 9, err
    assert all(re.fullmatch(r"push: 0/40 tasks \(0s\)", ln) for ln in err), err


def test_lines_are_rate_limited_and_events_without_total_read_well(monkeypatch, capsys):
    monkeypatch.setattr(cli_app, "PROGRESS_INTERVAL", 3600.0)
    with ProgressDisplay(mode="lines") as show:
        for i in range(500):
            show(ProgressEvent("read", i, None, "files", message=f"{i:,} sessions"))
    assert capsys.readouterr().err == "read: 499 files, 499 sessions (0s)\n"  # the final line only
    with ProgressDisplay(mode="lines"):
        pass
    assert capsys.readouterr().err == ""  # no event, no line
    assert (
        progress_line(ProgressEvent("tag", 120, 500, "files", "1,480 sessions"), 151)
        == "tag: 120/500 files, 1,480 sessions (2m31s)"
    )
    assert (
        progress_line(ProgressEvent("train", 1234, 5000, "steps"), 3 * 3600 + 65) == "train: 1,234/5,000 steps (3h01m)"
    )


class _Stderr(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_mode_follows_the_terminal_and_the_environment(monkeypatch):
    monkeypatch.delenv("RUPTURE_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", _Stderr(tty=False))
    assert progress_mode() == "lines"
    monkeypatch.setattr(sys, "stderr", _Stderr(tty=True))
    assert progress_mode() == "bar"
    monkeypatch.setenv("RUPTURE_PROGRESS", "0")
    assert progress_mode() == "off"
    monkeypatch.setenv("RUPTURE_PROGRESS", "1")
    monkeypatch.setattr(sys, "stderr", _Stderr(tty=False))
    assert progress_mode() == "bar"
    with ProgressDisplay() as show:  # the bar takes every stage
        show(ProgressEvent("read", 1, 2, "files", "3 sessions"))
        show(ProgressEvent("push", 0, None, "tasks"))
        show(ProgressEvent("push", 5, 9, "tasks"))
        assert len(show._tasks) == 2


def test_library_notes_are_log_lines_on_stderr(monkeypatch, capsys, tmp_path, lines_mode, model):
    a, _ = _transcripts(tmp_path / "in", 2)
    write(tmp_path / "in" / "README.md", "# about\n")
    out = tmp_path / "o.jsonl"
    code, _, stderr = run_cli(
        monkeypatch, capsys, "tag", str(tmp_path / "in"), str(a), "--out", str(out), "--model", str(model)
    )
    assert code == 0, stderr
    err = stderr.splitlines()
    assert "skipped 1 file(s) in input folders that are not transcripts (README.md)" in err  # INFO
    assert f"warning: {a}: same content as an earlier input, skipped" in err  # WARNING


def test_segment_reports_failures_after_the_run_and_counts_them(monkeypatch, capsys, tmp_path, lines_mode):
    monkeypatch.setattr(cli_app, "PROGRESS_INTERVAL", 0.0)
    _transcripts(tmp_path / "in", 2)
    write(tmp_path / "in" / "z-empty.txt", b"")
    code, _, stderr = run_cli(monkeypatch, capsys, "segment", str(tmp_path / "in"), "--out", str(tmp_path / "o.jsonl"))
    assert code == 1
    seg = [ln for ln in stderr.splitlines() if ln.startswith("segment:")]
    assert seg[-1].startswith("segment: 3/3 files, 2 sessions, 1 failed (")
    assert sum(ln.startswith("error:") and "z-empty.txt" in ln for ln in stderr.splitlines()) == 1


# ---------------------------------------------------------------- the library's events
def _check_events(events: list[ProgressEvent], stage: str, total: int, unit: str) -> None:
    assert events and {e.stage for e in events} == {stage} and {e.unit for e in events} == {unit}
    done = [e.done for e in events]
    assert done[0] == 0 and done[-1] == total and done == sorted(done)
    assert {e.total for e in events} == {total}


def test_tag_files_emits_files_done_in_order(tmp_path, model):
    from rupture_nlp.tagging import tag_files

    src = data_dir(model)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    shutil.copy(src / "dev.jsonl", a)
    a.write_text("".join(a.read_text().splitlines(keepends=True)[:1]))
    shutil.copy(src / "dev.jsonl", b)
    b.write_text(b.read_text().replace('"dv0', '"xx0'))
    bad = write(tmp_path / "bad.jsonl", "{oops\n")
    events: list[ProgressEvent] = []
    rep = tag_files([a, bad, b], model, tmp_path / "o.jsonl", batch_utterances=1, progress=events.append)
    _check_events(events, "tag", 3, "files")
    assert len(events) > 4  # sessions in between files
    assert events[-1].message == f"{rep.sessions} sessions, 1 failed"
    assert all(re.fullmatch(r"[\d,]+ sessions?(, \d+ failed)?", e.message) for e in events)


def test_segment_files_and_bootstrap_emit_events(tmp_path, model):
    from rupture_nlp.corpus.agreement import coder_agreement
    from rupture_nlp.ingest import segment_files
    from rupture_nlp.records import read_sessions
    from rupture_nlp.schema import load_schema

    files = _transcripts(tmp_path / "in", 4)
    events: list[ProgressEvent] = []
    rep = segment_files(files, tmp_path / "o.jsonl", progress=events.append)
    _check_events(events, "segment", 4, "files")
    assert [e.message for e in events] == ["0 sessions", "1 session", "2 sessions", "3 sessions", "4 sessions"]
    assert rep.sessions == 4
    sessions = [s for s in read_sessions(data_dir(model) / "dev.jsonl")]
    events = []
    coder_agreement(sessions, sessions, load_schema(), n_boot=25, progress=events.append)
    _check_events(events, "bootstrap", 25, "resamples")
    assert len(events) == 26


# ---------------------------------------------------------------- rich stays in cli/
WATCH_RICH = r"""
import builtins, importlib, json, sys
bad = []
real_import = builtins.__import__
def watched_import(name, globals=None, locals=None, fromlist=(), level=0):
    who = (globals or {}).get("__name__") or ""
    if level == 0 and (name == "rich" or name.startswith("rich.")) and who.startswith("rupture_nlp"):
        bad.append(who)
    return real_import(name, globals, locals, fromlist, level)
builtins.__import__ = watched_import
for m in sys.argv[1:]:
    importlib.import_module(m)
# use them too: lazy imports count
from pathlib import Path
import tempfile
from rupture_nlp.ingest import segment_files
from rupture_nlp.corpus.agreement import coder_agreement
from rupture_nlp.records import read_sessions
from rupture_nlp.schema import load_schema
d = Path(tempfile.mkdtemp())
(d / "a.txt").write_text("T: Hello there.\nC: Hi.\n")
segment_files([d / "a.txt"], d / "o.jsonl", progress=lambda e: None)
s = list(read_sessions(d / "o.jsonl"))
for u in s[0].utterances:
    u.labels = []
coder_agreement(s, s, load_schema(), n_boot=3, progress=lambda e: None)
print(json.dumps({"importers": bad, "modules": sorted(m for m in sys.modules if m.split(".")[0] == "rupture_nlp")}))
"""


def test_library_modules_never_import_rich():
    # statically: no import of rich anywhere in them, not even inside a function
    for mod in LIBRARY_MODULES:
        path = ROOT / (mod.replace(".", "/") + ".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "rich" or n.startswith("rich.") for n in names), f"{mod} imports {names}"
    # at run time, in a fresh interpreter: no rupture_nlp module asks for rich (third-party
    # packages such as httpx and scikit-learn may: that is theirs), and the CLI is never loaded
    r = subprocess.run(
        [sys.executable, "-c", WATCH_RICH, *LIBRARY_MODULES],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.splitlines()[-1])
    assert got["importers"] == []
    assert not any(m.startswith("rupture_nlp.cli") for m in got["modules"])
    # and where no dependency pulls it in, rich is not loaded at all
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, rupture_nlp.tagging, rupture_nlp.ingest, rupture_nlp.progress; print('rich' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert r.stdout.strip() == "False", r.stderr
