"""WebVTT and SRT files that the plain fast paths do not take are read through webvtt-py's and
srt's public APIs, with the same checked timings, clamped slips and overlap notices."""

from __future__ import annotations

import pytest
import srt
import webvtt

from ingest_helpers import write
from rupture_nlp.errors import RuptureError
from rupture_nlp.readers import read_transcript

# the slip at the third cue (827 < 828) is clamped; the fourth cue overlaps the third
VTT = (
    "WEBVTT\n\n00:13:40.000 --> 00:13:47.000\n<v T>How was it?\n\n00:13:48.000 --> 00:13:50.000\n"
    "<v C>Well, I was going to\n\n00:13:47.000 --> 00:13:49.000\n<v T>Sorry, go on.\n\n"
    "00:13:48.500 --> 00:13:53.000\n<v C>Fine.\n"
)
SRT = (
    "1\n00:13:40,000 --> 00:13:47,000\nT: How was it?\n\n2\n00:13:48,000 --> 00:13:50,000\n"
    "C: Well, I was going to\n\n3\n00:13:47,000 --> 00:13:49,000\nT: Sorry, go on.\n\n"
    "4\n00:13:48,500 --> 00:13:53,000\nC: Fine.\n"
)


def _read(tmp_path, name: str, content: str, **kw):
    raw = read_transcript(write(tmp_path / name, content), **kw)
    return [(p.speaker_name, p.text, p.start, p.end, p.line) for p in raw.pieces], {
        k: raw.meta.get(k) for k in ("repairs", "notices")
    }


@pytest.mark.parametrize(
    "name,plain,other",
    [
        ("a.vtt", VTT, VTT.replace("WEBVTT\n\n", "WEBVTT\n\nSTYLE\n::cue { color: red }\n\n")),  # webvtt-py
        ("a.vtt", VTT, VTT.replace("WEBVTT\n\n", "WEBVTT\n\nREGION\nid:r1 width:40%\n\n")),  # webvtt-py
        ("a.srt", SRT, SRT.replace("\n", "\r\n")),  # CRLF: srt.parse
        ("a.srt", SRT, SRT.replace("\n\n2\n", "\n\n2 \n")),  # an index line with a space: srt.parse
    ],
)
def test_files_the_libraries_read_give_what_the_fast_path_gives(tmp_path, monkeypatch, name, plain, other):
    calls = []
    for module, function in ((webvtt, "from_buffer"), (srt, "parse")):
        original = getattr(module, function)
        monkeypatch.setattr(module, function, lambda *a, _f=original, **kw: calls.append(a) or _f(*a, **kw))
    fast, fast_meta = _read(tmp_path, "plain-" + name, plain)
    assert not calls
    slow, slow_meta = _read(tmp_path, "other-" + name, other)
    assert len(calls) == 1
    shift = other.replace("\r\n", "\n").count("\n") - plain.count("\n")  # lines the STYLE block adds
    assert [(*p[:4], p[4] - shift) for p in slow] == fast
    assert fast_meta["repairs"] == [
        {"kind": "timestamp_clamped", "line": 9 if name.endswith("vtt") else 10, "from": 827.0, "to": 828.0}
    ]
    assert fast_meta["notices"] == [
        {"kind": "overlapping_cues", "count": 1, "line": 12 if name.endswith("vtt") else 14}
    ]
    assert [r["kind"] for r in slow_meta["repairs"]] == ["timestamp_clamped"]
    assert slow_meta["notices"][0]["count"] == 1


def test_what_srt_parse_refuses_names_the_line_or_the_timing(tmp_path):
    with pytest.raises(RuptureError) as ei:
        read_transcript(write(tmp_path / "g.srt", "garbage\n\n" + SRT))
    assert ei.value.line == 1 and "malformed SRT block" in ei.value.message
    huge = SRT + "\n5\n99999999999:00:00,000 - > 99999999999:00:01,000\nC: Later.\n"  # an arrow only srt reads
    with pytest.raises(RuptureError, match="malformed SRT cue timing"):
        read_transcript(write(tmp_path / "h.srt", huge))
