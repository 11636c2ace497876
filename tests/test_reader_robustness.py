"""Never lose a session (issue 10): small damage is repaired with one warning line per file
and recorded in ``meta["repairs"]``, or refused with ``strict``; what cannot be repaired is
refused with a line number; long sessions segment; messages quote no transcript text."""

from __future__ import annotations

import json
import logging

import pytest
from typer.testing import CliRunner

from ingest_helpers import one_session, texts, write
from rupture_nlp.cli import app
from rupture_nlp.errors import RuptureError
from rupture_nlp.ingest import load_sessions, make_pipeline, segment_files
from rupture_nlp.readers.base import MAX_TIME_SLIP
from rupture_nlp.readers.encoding import HEAD_BYTES


def error_of(path, **kw) -> RuptureError:
    with pytest.raises(RuptureError) as ei:
        list(load_sessions(path, **kw))
    return ei.value


def warnings_of(caplog, path) -> list[str]:
    """The warning lines logged about one file."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("rupture_nlp") and r.getMessage().startswith(f"{path}:")
    ]


# ------------------------------------------------------------------ 6. timestamp slips
# In every timed format: a start one second before the one above it (an interruption), on the
# line/row/cue given; the slipping piece is the therapist's "Sorry, go on."
SLIPS = {
    "txt": (
        "[00:13:40] T: How was it?\n[00:13:48] C: Well, I was going to\n[00:13:47] T: Sorry, go on.\n"
        "[00:13:52] C: Fine.\n",
        3,
    ),
    "csv": (
        'speaker,start,end,text\nT,820,827,How was it?\nC,828,830,"Well, I was going to"\n'
        'T,827,829,"Sorry, go on."\nC,832,833,Fine.\n',
        4,
    ),
    "vtt": (
        "WEBVTT\n\n00:13:40.000 --> 00:13:47.000\n<v T>How was it?\n\n00:13:48.000 --> 00:13:50.000\n"
        "<v C>Well, I was going to\n\n00:13:47.000 --> 00:13:49.000\n<v T>Sorry, go on.\n\n"
        "00:13:52.000 --> 00:13:53.000\n<v C>Fine.\n",
        9,
    ),
    "srt": (
        "1\n00:13:40,000 --> 00:13:47,000\nT: How was it?\n\n2\n00:13:48,000 --> 00:13:50,000\n"
        "C: Well, I was going to\n\n3\n00:13:47,000 --> 00:13:49,000\nT: Sorry, go on.\n\n"
        "4\n00:13:52,000 --> 00:13:53,000\nC: Fine.\n",
        10,
    ),
}


@pytest.mark.parametrize("fmt", sorted(SLIPS))
def test_one_second_slip_is_clamped_recorded_and_warned_once(tmp_path, caplog, fmt):
    content, line = SLIPS[fmt]
    p = write(tmp_path / f"slip.{fmt}", content)
    with caplog.at_level(logging.WARNING):
        s = one_session(p)
    assert s.meta["repairs"] == [{"kind": "timestamp_clamped", "line": line, "from": 827.0, "to": 828.0}]
    sorry = next(u for u in s.utterances if u.text == "Sorry, go on.")
    assert sorry.start == 828.0 and sorry.end >= sorry.start
    starts = [u.start for u in s.utterances]
    assert starts == sorted(starts)
    [warning] = warnings_of(caplog, p)
    assert f"line {line}" in warning and "1 timestamp" in warning and "Sorry" not in warning
    # strict: refused as before, naming the line
    e = error_of(p, strict=True)
    assert e.line == line and ("back in time" in e.message or "out of time order" in e.message)


@pytest.mark.parametrize("fmt", sorted(SLIPS))
def test_a_large_jump_back_is_refused_even_when_repairing(tmp_path, fmt):
    content, line = SLIPS[fmt]
    content = content.replace("13:47", "13:44").replace(",827,829,", ",824,829,")  # 4 s back
    e = error_of(write(tmp_path / f"jump.{fmt}", content))
    assert e.line == line and f"{MAX_TIME_SLIP:g} s" in e.message


# ------------------------------------------------------------------ 7. long sessions
def _long_transcript(target_chars: int) -> str:
    words = "well I think the week was hard and you know it kept coming back to me again".split()
    lines, n, i = [], 0, 0
    while n < target_chars:
        body = " ".join(words[(i + k) % len(words)] for k in range(8 + i % 30))
        line = f"{'T' if i % 2 == 0 else 'C'}: {body.capitalize()}. Really {words[i % len(words)]}?\n"
        lines.append(line)
        n += len(line)
        i += 1
    return "".join(lines)


def test_a_long_session_segments_turn_by_turn_as_a_short_one_would(tmp_path, monkeypatch):
    p = write(tmp_path / "long.txt", _long_transcript(1_200_000))
    assert p.stat().st_size > 1_100_000  # over spaCy's nlp.max_length of 1,000,000 characters
    s = one_session(p)
    assert len(s.utterances) > 20_000 and s.utterances[-1].text.startswith("Really")
    # the same utterances as one Doc made without the limit
    nlp = make_pipeline()
    nlp.max_length = 10**8
    assert s.to_json() == one_session(p, nlp=nlp).to_json()
    rep = segment_files([p], tmp_path / "out.jsonl")
    assert rep.files_ok == 1 and rep.utterances == len(s.utterances)
    assert json.loads((tmp_path / "out.jsonl").read_text())["utterances"] == s.to_dict()["utterances"]
    # beyond the documented limit: one RuptureError naming the file, not spaCy's ValueError
    import rupture_nlp.segment as segment

    monkeypatch.setattr(segment, "MAX_SESSION_CHARS", 1_000_000)
    e = error_of(p)
    assert e.path == str(p) and "too long" in e.message and "1,000,000" in e.message


# ------------------------------------------------------------------ 8a. unclosed CSV quotes
def test_csv_unclosed_quote_is_refused_at_its_line(tmp_path):
    e = error_of(
        write(tmp_path / "q.csv", 'speaker,text\nT,Hello.\nC,"Well I was\nT,Go on.\nC,Okay "then".\nT,Right.\n')
    )
    assert e.line == 3 and "unclosed quote" in e.message and "Well" not in e.message
    # ...also when it runs to the end of the file
    e = error_of(
        write(tmp_path / "eof.csv", 'Speaker;Start;Text\nDr Lee;1;Hello.\nMaria;2;"Well I was\nthinking; you know\n'),
        speakers="first",
    )
    assert e.line == 3 and "unclosed quote" in e.message and "end of the file" in e.message
    # a quoted field over lines that holds no rows is fine
    s = one_session(write(tmp_path / "ok.csv", 'speaker,text\nT,"How was\nyour week, then?"\nC,"Fine, thanks."\n'))
    assert texts(s) == ["How was your week, then?", "Fine, thanks."]


# ------------------------------------------------------------------ 8b. control characters
def test_control_characters_after_the_head_are_removed_with_a_warning(tmp_path, caplog):
    head = "T: How was the week?\nC: Fine.\n" * (HEAD_BYTES // 30 + 10)
    n_head = head.count("\n")
    p = write(tmp_path / "nul.txt", (head + "T: So what\x00 happened\x00\x01 then?\nC: Nothing.\n").encode())
    with caplog.at_level(logging.WARNING):
        s = one_session(p)
    assert "So what happened then?" in texts(s)
    assert s.meta["repairs"] == [{"kind": "control_chars_removed", "count": 3, "line": n_head + 1}]
    [warning] = warnings_of(caplog, p)
    assert "3 control character" in warning and f"line {n_head + 1}" in warning
    e = error_of(p, strict=True)
    assert e.line == n_head + 1 and "control character" in e.message
    # a few NULs in the head: the same repair, not "binary file"
    s = one_session(write(tmp_path / "nul2.txt", b"T: Hello\x00 there.\nC: Hi.\n"))
    assert texts(s) == ["Hello there.", "Hi."] and s.meta["repairs"][0]["count"] == 1


# ------------------------------------------------------------------ 8c. mixed encodings
def test_a_file_mixing_utf8_and_latin1_is_decoded_line_by_line(tmp_path, caplog):
    data = (
        "T: Je suis allé au café.\n".encode()
        + "C: Très bien, merci. Où ça?\n".encode("latin-1")
        + "T: Ça va?\n".encode()
        + "C: Déjà vu.\n".encode("cp1252")
    )
    p = write(tmp_path / "mixed.txt", data)
    with caplog.at_level(logging.WARNING):
        s = one_session(p)
    assert texts(s) == ["Je suis allé au café.", "Très bien, merci.", "Où ça?", "Ça va?", "Déjà vu."]
    assert s.meta["repairs"] == [{"kind": "mixed_encoding", "encoding": "cp1252", "count": 2, "lines": [2, 4]}]
    assert s.meta["source_encoding"] == "utf-8 (some lines cp1252)"
    [warning] = warnings_of(caplog, p)
    assert "2 line(s)" in warning and "lines 2, 4" in warning
    e = error_of(p, strict=True)
    assert e.line == 2 and "not UTF-8" in e.message
    # a legacy file as a whole is still one encoding, without a repair
    s = one_session(write(tmp_path / "latin.txt", "T: Très bien.\nC: Où ça?\n".encode("latin-1")))
    assert texts(s) == ["Très bien.", "Où ça?"] and "repairs" not in s.meta


# ------------------------------------------------------------------ 9. overlaps, one speaker
def test_overlapping_cues_and_one_speaker_transcripts_are_warned_about(tmp_path, caplog):
    vtt = write(
        tmp_path / "asr.vtt",
        "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v SPEAKER_00>How was it?\n\n"
        "00:00:03.500 --> 00:00:06.000\n<v SPEAKER_01>Fine, fine.\n\n"
        "00:00:05.000 --> 00:00:07.000\n<v SPEAKER_00>Good.\n",
    )
    one = write(tmp_path / "one.txt", "T: Hello?\nT: Is anyone there?\n")
    with caplog.at_level(logging.WARNING):
        s = one_session(vtt, speakers="first")
        t = one_session(one)
    assert s.meta["notices"] == [{"kind": "overlapping_cues", "count": 2, "line": 6}]
    assert [u.speaker for u in s.utterances] == ["therapist", "client", "therapist"]
    [warning] = warnings_of(caplog, vtt)
    assert "2 cue(s) overlap" in warning and "line 6" in warning
    assert t.meta["notices"] == [{"kind": "one_speaker", "speaker": "therapist", "turns": 1}]
    [warning] = warnings_of(caplog, one)
    assert "only the therapist speaks" in warning


def test_every_problem_of_a_file_is_one_warning_line(tmp_path, caplog):
    p = write(
        tmp_path / "many.vtt",
        "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v T>How\x00 was it?\n\n"
        "00:00:05.000 --> 00:00:06.000\n<v C>Fine.\n\n"
        "00:00:04.500 --> 00:00:05.500\n<v T>Good.\n\n"
        "00:00:05.200 --> 00:00:06.500\n<v C>Yes.\n",
    )
    with caplog.at_level(logging.WARNING):
        s = one_session(p)
    assert [r["kind"] for r in s.meta["repairs"]] == ["control_chars_removed", "timestamp_clamped"]
    [warning] = warnings_of(caplog, p)
    assert "control character" in warning and "timestamp" in warning and "overlap" in warning


# ------------------------------------------------------------------ 11. messages, speakers="first"
def test_header_less_csv_error_quotes_no_transcript_text(tmp_path):
    e = error_of(write(tmp_path / "nohead.csv", "T,I never told anyone about my brother\nC,Okay\n"))
    assert "brother" not in str(e) and "'T'" not in str(e)
    assert e.line == 1 and "2 field(s)" in e.message and "header row missing" in e.message
    e = error_of(write(tmp_path / "names.csv", "Maria,Hi\nLee,Hello\n"))
    assert "Maria" not in str(e) and "Hi" not in str(e)


def test_speakers_first_gives_roles_by_order_of_speaking(tmp_path):
    p = write(tmp_path / "names.txt", "DR. LEE: Welcome back.\nMARIA: Thanks.\nDR. LEE: Shall we?\n")
    s = one_session(p, speakers="first")
    assert [u.speaker for u in s.utterances] == ["therapist", "client", "therapist"]
    assert s.meta["speakers_from_first"] == {"DR. LEE": "therapist", "MARIA": "client"}
    # a built-in name keeps its role; the other name takes the free one
    s = one_session(write(tmp_path / "b.txt", "Client: Sorry I'm late.\nDR. LEE: No matter.\n"), speakers="first")
    assert [u.speaker for u in s.utterances] == ["client", "therapist"]
    # more names than roles: the usual error, saying why
    e = error_of(write(tmp_path / "three.txt", "A: Hi.\nB: Hey.\nC D: Hello.\n"), speakers="first")
    assert "who talks first" in e.message and "--speakers" in e.message


# ------------------------------------------------------------------ CLI flags
def test_segment_cli_strict_speakers_from_first_and_warning_lines(tmp_path):
    slip = write(
        tmp_path / "slip.txt", "[00:00:01] DR LEE: How was it?\n[00:00:05] SAM: Fine.\n[00:00:04] DR LEE: Only fine?\n"
    )
    out = tmp_path / "out.jsonl"
    r = CliRunner().invoke(app, ["segment", str(slip), "--out", str(out), "--speakers-from-first"])
    assert r.exit_code == 0, r.output
    s = json.loads(out.read_text())
    assert [u["speaker"] for u in s["utterances"]] == ["therapist", "client", "therapist"]
    assert s["meta"]["repairs"][0]["line"] == 3
    warning_lines = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert warning_lines == [
        f"warning: {slip}: set 1 timestamp(s) that went back in time (by up to 1 s) to the time before (line 3)"
    ]
    r = CliRunner().invoke(
        app, ["segment", str(slip), "--out", str(tmp_path / "strict.jsonl"), "--speakers-from-first", "--strict"]
    )
    assert r.exit_code == 1 and f"{slip}:3: timestamp goes back in time" in r.stderr
    assert not (tmp_path / "strict.jsonl").exists()
    r = CliRunner().invoke(
        app, ["segment", str(slip), "--out", str(out), "--speakers-from-first", "--speakers", "DR LEE=therapist"]
    )
    assert r.exit_code != 0


def test_tag_cli_passes_strict_and_speakers_from_first(tmp_path):
    slip = write(
        tmp_path / "slip.txt", "[00:00:01] DR LEE: How was it?\n[00:00:05] SAM: Fine.\n[00:00:04] DR LEE: Only fine?\n"
    )
    clean = write(tmp_path / "clean.txt", "[00:00:01] DR LEE: How was it?\n[00:00:05] SAM: Fine.\n")
    out = tmp_path / "tagged.jsonl"
    r = CliRunner().invoke(app, ["tag", str(slip), str(clean), "--out", str(out), "--speakers-from-first", "--strict"])
    assert r.exit_code == 1 and f"{slip}:3: timestamp goes back in time" in r.stderr
    [s] = [json.loads(line) for line in out.read_text().splitlines()]
    assert s["session_id"] == "clean" and [u["speaker"] for u in s["utterances"]] == ["therapist", "client"]
