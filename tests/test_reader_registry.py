"""Input formats are one registry: a format registered anywhere is detected, accepted by
``--format``, read, segmented and found in folders, with no other table to edit.

The example format is YouTube's SBV captions (``SBV_MODULE``: exactly the one file a new
format in ``rupture_nlp/readers/`` is); it is registered from here and removed again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ingest_helpers import run_cli, write
from rupture_nlp.errors import RuptureError
from rupture_nlp.ingest import load_sessions
from rupture_nlp.readers import (
    EXTENSIONS,
    FORMAT_ALIASES,
    FORMATS,
    InputFormat,
    check_format,
    detect_format,
    extensions,
    format_names,
    read_transcript,
    register_format,
    unregister_format,
)
from rupture_nlp.readers.registry import all_formats
from rupture_nlp.readers.text import read_text

SBV_MODULE = '''\
"""YouTube SBV captions: blocks of a timing line ``0:00:01.000,0:00:04.000`` and cue lines
(speakers as in WebVTT/SRT cues, see :mod:`rupture_nlp.readers.subtitles`)."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import RuptureError
from .base import RawTranscript, repair_time_slip
from .registry import InputFormat, register_format
from .speakers import SpeakerResolver
from .subtitles import Timing, check_speakers, cue_pieces

_TIMING = re.compile(r"(\\d+):([0-5]\\d):([0-5]\\d)\\.(\\d{3}),(\\d+):([0-5]\\d):([0-5]\\d)\\.(\\d{3})\\s*$")


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def read_sbv(text: str, path: str | Path, resolver: SpeakerResolver, *, strict: bool = False) -> RawTranscript:
    """One piece per cue, or per speaker in a cue; RuptureError for bad or unordered timings."""
    meta: dict = {}
    pieces, cue, timing, prev = [], [], None, None
    for no, line in enumerate(text.lstrip("\\ufeff").splitlines() + [""], 1):
        if timing is None and line.strip():
            m = _TIMING.match(line.strip())
            if m is None:
                raise RuptureError("expected an SBV timing line 'h:mm:ss.mmm,h:mm:ss.mmm'", path, no)
            start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
            if end < start:
                raise RuptureError("cue ends before it starts", path, no)
            start = prev = repair_time_slip(start, prev, meta, strict=strict, path=path, line=no,
                                            message="cue starts before the cue before it")
            timing = Timing(no, start, max(end, start))
        elif timing is not None and line.strip():
            cue.append(line)
        elif timing is not None:
            pieces += cue_pieces(cue, timing, timing.start, timing.end, resolver.is_known)
            cue, timing = [], None
    check_speakers(pieces, path, "SBV")
    return RawTranscript(pieces, meta)


FORMAT = register_format(InputFormat(
    "sbv", read=read_sbv, extensions=(".sbv",), aliases=("subviewer",),
    sniff=lambda head: _TIMING.match(head.lstrip().split("\\n", 1)[0]) is not None))
'''

SBV = (
    "0:00:01.000,0:00:04.000\nT: How was the week? Tell me.\n\n"
    "0:00:04.500,0:00:06.000\nC: Fine, I guess.\nIt was long.\n\n"
    "0:00:04.200,0:00:09.000\nT: Long how?\n"
)


@pytest.fixture
def sbv():
    """The SBV format, registered as its module would register it, and removed afterwards."""
    namespace = {"__name__": "rupture_nlp.readers.sbv", "__package__": "rupture_nlp.readers"}
    exec(compile(SBV_MODULE, "sbv.py", "exec"), namespace)  # noqa: S102 - the module text above
    try:
        yield namespace["FORMAT"]
    finally:
        if "sbv" in format_names():
            unregister_format("sbv")


def test_built_in_formats_are_the_tables_they_replace():
    assert FORMATS == ("txt", "csv", "tsv", "srt", "vtt", "jsonl")
    assert EXTENSIONS == {
        ".txt": "txt",
        ".text": "txt",
        ".csv": "csv",
        ".tsv": "tsv",
        ".tab": "tsv",
        ".vtt": "vtt",
        ".webvtt": "vtt",
        ".srt": "srt",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "jsonl",
    }
    assert FORMAT_ALIASES == {
        "text": "txt",
        "webvtt": "vtt",
        "ndjson": "jsonl",
        "json": "jsonl",
        "canonical": "jsonl",
        "subrip": "srt",
    }
    by_name = {f.name: f for f in all_formats()}
    assert by_name["jsonl"].sessions is not None and by_name["jsonl"].read is None
    assert all(f.read is not None for name, f in by_name.items() if name != "jsonl")
    assert check_format(" .WebVTT") == "vtt" and check_format(None) is None
    with pytest.raises(RuptureError, match="unknown format 'docx'; choose one of txt, csv, tsv, srt, vtt, jsonl"):
        check_format("docx")


def test_a_registered_format_is_detected_checked_read_and_segmented(sbv, tmp_path, monkeypatch, capsys):
    assert "sbv" in format_names() and extensions()[".sbv"] == "sbv"
    assert check_format("SBV") == "sbv" and check_format("subviewer") == "sbv"
    assert detect_format("a.sbv", "T: hi\n") == "sbv"  # by extension
    assert detect_format("a.txt", "\ufeff" + SBV) == "sbv"  # unmistakable content wins over the extension
    assert detect_format("a.txt", "T: hi\n") == "txt" and detect_format("a.srt", SBV) == "sbv"

    p = write(tmp_path / "captions" / "s1.sbv", SBV)
    raw = read_transcript(p)
    assert [(x.speaker_name, x.start, x.end, x.line) for x in raw.pieces] == [
        ("T", 1.0, 4.0, 2),
        ("C", 4.5, 6.0, 5),
        ("T", 4.5, 9.0, 9),
    ]
    assert raw.meta["source_format"] == "sbv"  # set for every format that does not set it itself
    assert raw.meta["repairs"] == [{"kind": "timestamp_clamped", "line": 8, "from": 4.2, "to": 4.5}]
    (s,) = load_sessions(p)
    assert [(u.speaker, u.text, u.start, u.end) for u in s.utterances] == [
        ("therapist", "How was the week?", 1.0, 3.0),
        ("therapist", "Tell me.", 3.0, 4.0),
        ("client", "Fine, I guess.", 4.5, 5.25),
        ("client", "It was long.", 5.25, 6.0),
        ("therapist", "Long how?", 4.5, 9.0),
    ]
    assert s.session_id == "s1" and s.meta["source_format"] == "sbv"
    (same,) = load_sessions(write(tmp_path / "s1.dat", SBV), format="subviewer")
    assert [u.text for u in same.utterances] == [u.text for u in s.utterances]

    out = tmp_path / "out.jsonl"
    renamed = write(tmp_path / "renamed.txt", SBV.replace("T: ", "DR. LEE: "))
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "segment",
        str(renamed),
        "--out",
        str(out),
        "--format",
        "sbv",
        "--speakers",
        "DR. LEE=therapist",
    )
    assert code == 0, err
    assert json.loads(out.read_text())["meta"]["source_format"] == "sbv"
    write(tmp_path / "captions" / "README.md", "not a transcript")
    code, _, err = run_cli(monkeypatch, capsys, "segment", str(tmp_path / "captions"), "--out", str(out))
    assert code == 0 and "1 session(s)" in err, err  # folders take the format's files, and only those

    assert unregister_format("sbv") is sbv
    with pytest.raises(RuptureError, match="unknown format 'sbv'"):
        check_format("sbv")
    assert detect_format("a.sbv", SBV) == "txt" and ".sbv" not in extensions()
    code, _, err = run_cli(monkeypatch, capsys, "segment", str(p), "--out", str(out), "--format", "sbv")
    assert code == 2 and "choose one of txt, csv" in err
    code, _, err = run_cli(monkeypatch, capsys, "segment", str(tmp_path / "captions"), "--out", str(out))
    assert code == 1 and "no input files" in err


def test_formats_of_whole_sessions_are_streamed_not_read_as_transcripts(tmp_path):
    p = write(
        tmp_path / "s.jsonl",
        '{"session_id": "a", "utterances": [{"id": "a-1", "turn": 0, "speaker": "client", "text": "Hi."}]}\n',
    )
    assert [s.session_id for s in load_sessions(p)] == ["a"]
    with pytest.raises(RuptureError, match="jsonl files hold whole sessions"):
        read_transcript(p)


def test_conflicting_or_malformed_formats_are_refused():
    register_format(InputFormat("subrip2", read=read_text, extensions=(".SRT",)))
    try:
        with pytest.raises(ValueError, match="'srt' and 'subrip2' both claim '.srt'"):
            format_names()
    finally:
        unregister_format("subrip2")
    assert "srt" in format_names()
    with pytest.raises(ValueError, match="either read or sessions"):
        InputFormat("x")
    with pytest.raises(ValueError, match="priority 0"):
        InputFormat("x", read=read_text, priority=0)


def test_a_new_module_in_the_readers_package_is_a_new_format(tmp_path):
    """The whole change for a new format: one module in ``rupture_nlp/readers/`` (here in a copy
    of the package)."""
    package = Path(__import__("rupture_nlp").__file__).parent
    shutil.copytree(package, tmp_path / "rupture_nlp", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "rupture_nlp" / "readers" / "sbv.py").write_text(SBV_MODULE, encoding="utf-8")
    p = write(tmp_path / "s1.dat", SBV)
    code = (
        "import json, rupture_nlp.readers as r; "
        f"raw = r.read_transcript({str(p)!r}); "
        "print(json.dumps([r.__file__, r.FORMATS, r.check_format('subviewer'), r.extensions()['.sbv'], "
        "raw.meta['source_format'], len(raw.pieces)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    where, names, *rest = json.loads(out)
    assert where == str(tmp_path / "rupture_nlp" / "readers" / "__init__.py")
    assert names == ["txt", "csv", "tsv", "sbv", "srt", "vtt", "jsonl"] and rest == ["sbv", "sbv", "sbv", 3]
