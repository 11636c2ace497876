"""Every reader and format variant, speaker mapping, encodings, and every bad-input case."""

from __future__ import annotations

import json
import time

import pytest

from ingest_helpers import check_offsets, one_session, texts, write
from rupture_nlp.errors import RuptureError
from rupture_nlp.ingest import load_sessions, session_id_from_path
from rupture_nlp.readers import detect_format, read_transcript, read_turns
from rupture_nlp.readers.speakers import parse_speakers
from rupture_nlp.records import Session, Utterance, write_sessions


def error_of(path, **kw) -> RuptureError:
    with pytest.raises(RuptureError) as ei:
        list(load_sessions(path, **kw))
    return ei.value


# ------------------------------------------------------------------ plain text
def test_txt_built_in_prefixes_and_turn_merging(tmp_path):
    p = write(
        tmp_path / "s1.txt",
        "T: How was the week?\n\nC: Fine.\nc: It was okay, I guess.\n"
        "Therapist: Okay.\nPATIENT: Sure.\nCounsellor: Right then.\n",
    )
    s = one_session(p)
    assert [(u.turn, u.speaker, u.speaker_name, u.text) for u in s.utterances] == [
        (0, "therapist", "T", "How was the week?"),
        (1, "client", "C", "Fine."),
        (1, "client", "C", "It was okay, I guess."),
        (2, "therapist", "Therapist", "Okay."),
        (3, "client", "PATIENT", "Sure."),
        (4, "therapist", "Counsellor", "Right then."),
    ]
    assert s.session_id == "s1"
    assert s.meta["source_file"] == "s1.txt" and s.meta["source_format"] == "txt"
    assert s.meta["time_source"] == "none"
    assert all(u.start is None and u.end is None for u in s.utterances)
    check_offsets(p, s)


def test_txt_continuation_lines_join_the_turn(tmp_path):
    p = write(tmp_path / "wrap.txt", "T: So this is a long question that\nwraps onto a second line?\nC: Yes.\n")
    s = one_session(p)
    assert texts(s) == ["So this is a long question that wraps onto a second line?", "Yes."]


def test_txt_timestamps_in_brackets_parentheses_and_ranges(tmp_path):
    p = write(
        tmp_path / "ts.txt",
        "[00:00:05] Therapist: Hello there. How are you?\n"
        "(00:09) Client: Not bad.\n"
        "[00:00:12.500 --> 00:00:15.000] T: Good.\n"
        "C: [00:00:16] And you?\n",
    )
    s = one_session(p)
    assert texts(s) == ["Hello there.", "How are you?", "Not bad.", "Good.", "And you?"]
    starts = [u.start for u in s.utterances]
    assert starts[0] == 5.0 and starts[2] == 9.0 and starts[3] == 12.5 and starts[4] == 16.0
    # ends come from the next timestamp (or the range), the last one from a nominal speaking rate
    assert s.utterances[2].end == 12.5 and s.utterances[3].end == 15.0
    assert s.utterances[4].end > 16.0
    # within the first turn the time is shared out by word count: 2 words, then 3 words
    first, second = s.utterances[0], s.utterances[1]
    assert first.end == second.start
    assert (first.end - 5.0) / (9.0 - 5.0) == pytest.approx(2 / 5, abs=1e-3)
    assert s.meta["time_source"] == "starts"


def test_txt_names_need_a_mapping_and_the_error_lists_them(tmp_path):
    p = write(
        tmp_path / "names.txt",
        "DR. LEE: Welcome back.\nMARIA: Thanks.\nDR. LEE: Shall we start?\nMARIA: Okay.\nSpeaker 3: Sorry I'm late.\n",
    )
    e = error_of(p)
    assert "DR. LEE" in str(e) and "MARIA" in str(e) and "Speaker 3" in str(e) and "--speakers" in str(e)
    assert e.line == 1
    s = one_session(p, speakers="dr. lee=therapist, maria=client, SPEAKER 3=client")
    assert [(u.speaker, u.speaker_name) for u in s.utterances] == [
        ("therapist", "DR. LEE"),
        ("client", "MARIA"),
        ("therapist", "DR. LEE"),
        ("client", "MARIA"),
        ("client", "Speaker 3"),
    ]
    # a dict works as well as the string form
    assert (
        one_session(p, speakers={"DR. LEE": "therapist", "Maria": "patient", "speaker 3": "c"}).utterances[1].speaker
        == "client"
    )


def test_txt_sentences_with_colons_are_not_speaker_names(tmp_path):
    p = write(tmp_path / "colon.txt", "T: What did she say?\nC: She said it plainly\nand then she said: no way.\n")
    assert texts(one_session(p))[-1] == "She said it plainly and then she said: no way."


def test_txt_otter_style_name_and_time_lines(tmp_path):
    p = write(tmp_path / "otter.txt", "Therapist  0:03\nHow was your week?\n\nClient  0:07\nLong.\nVery long.\n")
    s = one_session(p)
    assert texts(s) == ["How was your week?", "Long.", "Very long."]
    assert s.utterances[0].start == 3.0 and s.utterances[1].start == 7.0


def test_txt_rev_style_time_before_the_colon(tmp_path):
    p = write(tmp_path / "rev.txt", "Speaker 1 (00:03):\nHow was your week?\n\nSpeaker 2 (01:10): Long.\n")
    s = one_session(p, speakers="Speaker 1=therapist,Speaker 2=client")
    assert [(u.speaker, u.text, u.start) for u in s.utterances] == [
        ("therapist", "How was your week?", 3.0),
        ("client", "Long.", 70.0),
    ]


def test_txt_header_comments_become_meta(tmp_path):
    p = write(tmp_path / "h.txt", "# modality: CBT\n# session_number: 3\nT: Hi.\nC: Hi.\n")
    assert one_session(p).meta["header"] == {"modality": "CBT", "session_number": "3"}


def test_txt_timestamps_going_backwards(tmp_path):
    p = write(tmp_path / "back.txt", "[00:01:00] T: One.\n[00:00:30] C: Two.\n")
    e = error_of(p)
    assert e.line == 2 and "back in time" in e.message


def test_txt_text_before_first_speaker(tmp_path):
    p = write(tmp_path / "pre.txt", "T: Fine.\n")
    write(p, "Session three, recorded Tuesday\nT: Hello.\nC: Hi.\n")
    e = error_of(p)
    assert e.line == 1 and "before the first speaker" in e.message


# ------------------------------------------------------------------ CSV / TSV
def test_csv_rows_merge_into_turns_with_times(tmp_path):
    p = write(
        tmp_path / "c.csv",
        "speaker,start,end,text\n"
        "Therapist,1.0,3.0,How was it?\n"
        "Client,3.5,4.0,Fine.\n"
        'Client,4.2,6.2,"Honestly, it was hard. Really hard."\n'
        'Therapist,7.0,8.0,"Say more, ""if"" you like."\n',
    )
    s = one_session(p)
    assert [(u.turn, u.speaker, u.text) for u in s.utterances] == [
        (0, "therapist", "How was it?"),
        (1, "client", "Fine."),
        (1, "client", "Honestly, it was hard."),
        (1, "client", "Really hard."),
        (2, "therapist", 'Say more, "if" you like.'),
    ]
    u = s.utterances
    assert (u[1].start, u[1].end) == (3.5, 4.0)  # one row, one utterance: the row's times exactly
    assert u[2].start == 4.2 and u[3].end == 6.2
    assert u[2].end == pytest.approx(4.2 + 2.0 * 4 / 6, abs=1e-3)  # 4 of the row's 6 words
    assert s.meta["source_format"] == "csv" and s.meta["time_source"] == "source"
    check_offsets(p, s)


def test_csv_column_name_variants_semicolons_clock_times_and_ms(tmp_path):
    p = write(tmp_path / "v.csv", "Speaker Name;Begin (ms);Stop ms;Utterance\nT;1500;2500;Hi.\nC;3000;3600;Hey.\n")
    s = one_session(p)
    assert [(u.text, u.start, u.end) for u in s.utterances] == [("Hi.", 1.5, 2.5), ("Hey.", 3.0, 3.6)]
    p2 = write(
        tmp_path / "clock.csv", "who,start_time,end_time,transcript\nT,00:01:02.5,00:01:04,Hi.\nC,1:05,1:06,Yo.\n"
    )
    s2 = one_session(p2)
    assert [(u.start, u.end) for u in s2.utterances] == [(62.5, 64.0), (65.0, 66.0)]


def test_tsv_with_role_column_and_multiline_field(tmp_path):
    p = write(
        tmp_path / "t.tsv",
        'name\trole\ttext\nDr Lee\ttherapist\tHello.\nMaria\tclient\t"Two\nlines."\nDr Lee\ttherapist\tOkay.\n',
    )
    s = one_session(p)
    assert [(u.speaker, u.speaker_name, u.text) for u in s.utterances] == [
        ("therapist", "Dr Lee", "Hello."),
        ("client", "Maria", "Two lines."),
        ("therapist", "Dr Lee", "Okay."),
    ]
    assert s.meta["source_format"] == "tsv"


def test_csv_without_text_column(tmp_path):
    p = write(tmp_path / "nt.csv", "speaker,start,words_said\nT,1,hello\n")
    e = error_of(p)
    assert "no text column" in e.message and "'words_said'" in e.message and e.line == 1


def test_csv_without_speaker_column_and_bad_time(tmp_path):
    e = error_of(write(tmp_path / "ns.csv", "text,start\nhello,1\n"))
    assert "no speaker column" in e.message
    e = error_of(write(tmp_path / "bt.csv", "speaker,start,text\nT,1.0,Hi.\nC,soon,Hey.\n"))
    assert e.line == 3 and "start is not a time" in e.message


# ------------------------------------------------------------------ WebVTT
VTT = """WEBVTT
Kind: captions

NOTE recorded in room 2

cue-1
00:00:01.000 --> 00:00:04.000
<v Therapist>How was the week? Anything new?

00:00:04.500 --> 00:00:05.000
<v.loud Client>Fine.</v>

00:00:05.200 --> 00:00:07.000
<v Client>Work &amp; home, <i>mostly</i>.

00:00:08.000 --> 00:00:10.000
Therapist: Tell me about work.
Client: Not much to tell.
"""


def test_vtt_voice_tags_prefixes_markup_and_multi_speaker_cues(tmp_path):
    p = write(tmp_path / "w.vtt", VTT)
    s = one_session(p)
    assert [(u.turn, u.speaker, u.text, u.start, u.end) for u in s.utterances] == [
        (0, "therapist", "How was the week?", 1.0, 3.0),  # 4 of the cue's 6 words
        (0, "therapist", "Anything new?", 3.0, 4.0),
        (1, "client", "Fine.", 4.5, 5.0),
        (1, "client", "Work & home, mostly.", 5.2, 7.0),
        (2, "therapist", "Tell me about work.", 8.0, 9.0),
        (3, "client", "Not much to tell.", 9.0, 10.0),
    ]
    assert s.meta["source_format"] == "vtt" and s.meta["time_source"] == "partial"
    check_offsets(p, s)


def test_vtt_broken_and_out_of_order_timings(tmp_path):
    e = error_of(
        write(
            tmp_path / "b.vtt",
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v T>Hi.\n\n00:00:03.000 --> 00:00:0x.000\n<v C>Hey.\n",
        )
    )
    assert e.line == 6 and "malformed" in e.message
    e = error_of(
        write(
            tmp_path / "o.vtt",
            "WEBVTT\n\n00:00:05.000 --> 00:00:06.000\n<v T>Hi.\n\n00:00:02.000 --> 00:00:03.000\n<v C>Hey.\n",
        )
    )
    assert e.line == 6 and "out of time order" in e.message
    e = error_of(write(tmp_path / "r.vtt", "WEBVTT\n\n00:00:05.000 --> 00:00:04.000\n<v T>Hi.\n"))
    assert e.line == 3 and "ends before it starts" in e.message


def test_vtt_without_speakers_or_header(tmp_path):
    e = error_of(write(tmp_path / "n.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello there.\n"))
    assert "no speaker in any cue" in e.message
    e = error_of(write(tmp_path / "h.vtt", "00:00:01.000 --> 00:00:02.000\n<v T>Hello.\n"))
    assert "WEBVTT" in e.message and e.line == 1


# ------------------------------------------------------------------ SRT
SRT = """1
00:00:01,000 --> 00:00:03,000
[SPEAKER_00]: <i>So</i>, where shall we start?

2
00:00:03,500 --> 00:00:04,000
[SPEAKER_01]: Dunno.

3
00:00:04,100 --> 00:00:06,100
[SPEAKER_01]: Maybe with the
argument on Sunday.
"""


def test_srt_speaker_prefixes_tags_and_continued_cues(tmp_path):
    p = write(tmp_path / "x.srt", SRT)
    e = error_of(p)
    assert "SPEAKER_00" in e.message and "SPEAKER_01" in e.message
    s = one_session(p, speakers="SPEAKER_00=therapist,SPEAKER_01=client")
    assert [(u.turn, u.speaker, u.text, u.start, u.end) for u in s.utterances] == [
        (0, "therapist", "So, where shall we start?", 1.0, 3.0),
        (1, "client", "Dunno.", 3.5, 4.0),
        (1, "client", "Maybe with the argument on Sunday.", 4.1, 6.1),
    ]
    assert s.meta["source_format"] == "srt"


def test_srt_broken_and_out_of_order_timings(tmp_path):
    e = error_of(
        write(
            tmp_path / "b.srt",
            "1\n00:00:01,000 --> 00:00:02,000\nT: Hi.\n\n2\n00:00:03,000 --> 00:00:0x,000\nC: Hey.\n",
        )
    )
    assert e.line == 6 and "malformed" in e.message
    e = error_of(
        write(
            tmp_path / "o.srt",
            "1\n00:00:05,000 --> 00:00:06,000\nT: Hi.\n\n2\n00:00:01,000 --> 00:00:02,000\nC: Hey.\n",
        )
    )
    assert e.line == 6 and "out of time order" in e.message


# ------------------------------------------------------------------ canonical JSONL
def test_jsonl_passes_through_unchanged(tmp_path):
    sessions = [
        Session(
            "a",
            [
                Utterance(
                    "a-x1",
                    0,
                    "therapist",
                    "Hello. How are you?",
                    1.0,
                    2.0,
                    labels=["repair/invite_discussion"],
                    extra={"note": 1},
                ),
                Utterance("a-x2", 1, "client", "Fine.", None, None, scores={"withdrawal/denial": 0.5}),
            ],
            meta={"k": "v"},
            extra={"custom": True},
        ),
        Session("b", [Utterance("b-1", 0, "client", "Hm.")]),
    ]
    p = tmp_path / "in.jsonl"
    write_sessions(p, sessions)
    out = list(load_sessions(p))
    assert [s.to_dict() for s in out] == [s.to_dict() for s in sessions]
    # also when the extension says otherwise but the content is JSON, or the format is forced
    q = write(tmp_path / "in.data", p.read_bytes())
    assert [s.to_dict() for s in load_sessions(q)] == [s.to_dict() for s in sessions]


def test_jsonl_invalid_line_and_blank_file(tmp_path):
    good = json.dumps({"session_id": "a", "utterances": []})
    e = error_of(write(tmp_path / "bad.jsonl", good + "\n{not json}\n"))
    assert e.line == 2 and "invalid JSON" in e.message
    e = error_of(write(tmp_path / "blank.jsonl", "\n\n  \n"))
    assert "blank" in e.message or "no sessions" in e.message


# ------------------------------------------------------------------ encodings
LATIN = "T: Ça va? Je suis allé au café.\nC: Très bien, merci. Naïve question: où est la señora?\n"


@pytest.mark.parametrize(
    "encoding,bom",
    [
        ("utf-8", b""),
        ("utf-8", b"\xef\xbb\xbf"),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("latin-1", b""),
        ("cp1252", b""),
    ],
)
def test_encodings(tmp_path, encoding, bom):
    text = LATIN + ("T: “Quotes” cost €5 – fine.\n" if encoding == "cp1252" else "")
    p = write(tmp_path / "enc.txt", bom + text.encode(encoding))
    s = one_session(p)
    assert texts(s)[:2] == ["Ça va?", "Je suis allé au café."]
    assert "Naïve question: où est la señora?" in texts(s)
    if encoding == "cp1252":
        assert texts(s)[-1] == "“Quotes” cost €5 – fine."
    expected = {
        "utf-8": "utf-8 (BOM)" if bom else "utf-8",
        "utf-16-le": "utf-16 (BOM)",
        "utf-16-be": "utf-16 (BOM)",
        "latin-1": "cp1252",
        "cp1252": "cp1252",
    }[encoding]
    assert s.meta["source_encoding"] == expected


def test_binary_files(tmp_path):
    e = error_of(write(tmp_path / "doc.txt", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"))
    assert "binary file" in e.message and "PDF" in e.message
    e = error_of(write(tmp_path / "w.txt", b"PK\x03\x04" + bytes(200)))
    assert "Word" in e.message
    e = error_of(write(tmp_path / "nul.txt", b"T: hello\x00\x00\x01\x02 there\n" * 20))
    assert "binary file" in e.message


def test_unreadable_encoding_or_control_characters(tmp_path):
    data = bytes((i * 37 + 11) % 32 for i in range(3000)).replace(b"\x00", b"\x01")
    e = error_of(write(tmp_path / "junk.txt", b"T: " + data))
    assert "binary" in e.message or "encoding" in e.message


def test_empty_and_blank_files(tmp_path):
    assert error_of(write(tmp_path / "e.txt", b"")).message == "empty file"
    assert "blank" in error_of(write(tmp_path / "b.txt", "  \n\n\t\n")).message
    assert "no such file" in error_of(tmp_path / "missing.txt").message
    assert "directory" in error_of(tmp_path).message


def test_huge_file_without_speaker_markers_fails_fast(tmp_path):
    p = tmp_path / "huge.txt"
    prose = ("It was a long day and nothing much happened, or so it seemed at the time. " * 2000).encode()
    with p.open("wb") as f:
        f.write(prose)
        f.truncate(3 * 2**30)  # a 3 GiB (sparse) file: reading it all would take ages
    t0 = time.perf_counter()
    e = error_of(p)
    assert time.perf_counter() - t0 < 5
    assert "no speaker labels in the first 64 KiB" in e.message and e.path == str(p)


def test_too_large_transcript_is_refused_before_reading(tmp_path):
    p = tmp_path / "big.txt"
    with p.open("wb") as f:
        f.write(b"T: Hello.\nC: Hi.\n" * 5000)
        f.truncate(300 * 2**20)
    e = error_of(p)
    assert "too large" in e.message


# ------------------------------------------------------------------ detection, ids, options
def test_format_detection_by_content_and_extension(tmp_path):
    assert detect_format("a.txt", "WEBVTT\n\n") == "vtt"
    assert detect_format("a.txt", "1\n00:00:01,000 --> 00:00:02,000\nT: hi\n") == "srt"
    assert detect_format("a.dat", '{"session_id": "x"}') == "jsonl"
    assert detect_format("a.csv", "T: hi") == "csv"
    assert detect_format("a.dat", "speaker\ttext\nT\thi\n") == "tsv"
    assert detect_format("a.dat", "T: hi\n") == "txt"
    # --format overrides detection: a .log file read as CSV
    p = write(tmp_path / "x.log", "speaker,text\nT,Hi.\nC,Hey.\n")
    assert texts(one_session(p, format="csv")) == ["Hi.", "Hey."]
    with pytest.raises(RuptureError, match="unknown format"):
        list(load_sessions(p, format="docx"))


def test_session_ids_from_file_names():
    assert session_id_from_path("dir/b1-cbt-01.timestamped.txt") == "b1-cbt-01"
    assert session_id_from_path("Session 3 (final).txt") == "Session-3-final"
    assert session_id_from_path("s.2024-05-01.vtt") == "s.2024-05-01"
    assert session_id_from_path("((( ))).txt") == "session"


def test_bad_speaker_mappings():
    with pytest.raises(RuptureError, match="expected NAME=therapist"):
        parse_speakers("DR LEE therapist")
    with pytest.raises(RuptureError, match="must be 'therapist' or 'client'"):
        parse_speakers("DR LEE=doctor")
    assert parse_speakers("Dr. Lee = Therapist; Maria=P") == {"dr. lee": "therapist", "maria": "client"}


def test_read_turns_keeps_source_lines_and_piece_offsets(tmp_path):
    p = write(tmp_path / "l.txt", "T: One.\n\nT: Two.\nC: Three.\n")
    turns, meta = read_turns(p)
    assert [(t.speaker, t.text, t.line) for t in turns] == [("therapist", "One. Two.", 1), ("client", "Three.", 4)]
    assert [(q.char_start, q.char_end, q.line) for q in turns[0].pieces] == [(0, 4, 1), (5, 9, 3)]
    assert read_transcript(p).meta["source_encoding"] == "utf-8"
