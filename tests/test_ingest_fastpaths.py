"""The fast paths of ingestion give exactly what the reference paths give.

``rupture segment`` takes shortcuts where the general code would spend more than the spaCy
tokenizer (see ``scripts/bench_segment.py``): cue texts read straight from plain WebVTT and
SRT files instead of through webvtt-py / srt objects, usual timing lines parsed with one
expression, records made from Docs without span groups (see ``make_record_doc``), times
computed with numpy. Each test here runs
a fast path and its reference on many generated inputs, ordinary and odd, and asserts the
same result; each also asserts that the fast path was taken often enough to be tested.
"""

from __future__ import annotations

import io
import json
import random
import re
import subprocess
import sys
from bisect import bisect_left, bisect_right

import numpy as np
import pytest
import srt
import webvtt

from ingest_helpers import write
from rupture_nlp.errors import RuptureError
from rupture_nlp.ingest import load_sessions, make_pipeline, segment_files
from rupture_nlp.readers.base import Turn, TurnPiece, parse_clock
from rupture_nlp.readers.encoding import _CONTROL, _check_control_chars
from rupture_nlp.readers.srt import _COMMON_TIMING as SRT_COMMON
from rupture_nlp.readers.srt import _srt_seconds, cue_texts, plain_cues
from rupture_nlp.readers.subtitles import scan_timings
from rupture_nlp.readers.vtt import _COMMON_TIMING as VTT_COMMON
from rupture_nlp.readers.vtt import _vtt_seconds, plain_cue_lines
from rupture_nlp.segment import (
    UtteranceSegmenter,
    doc_to_session,
    make_doc,
    make_record_doc,
    plain_pipeline,
    round_array,
)
from rupture_nlp.segment.rules import _DASH, _TERM_NEXT
from rupture_nlp.timeline import Timeline

NLP = make_pipeline()


def _clock(t: float, sep: str = ".", hours: bool = True) -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return (f"{h:02d}:" if hours or h else "") + f"{m:02d}:{s:02d}{sep}{ms:03d}"


CUE_LINES = [
    "<v Dr. Lee>How was the week?",
    "<v.loud Client>Fine, I guess.</v>",
    "Therapist: And work?",
    "- Client: <i>Busy</i> &amp; long.",
    "continued line",
    "T: [laughs] okay",
    "42",
    "",
    " ",
    "C: so--",
    "<c.yellow>P:</c> Mm-hmm.",
    "NOTE not a note here",
    "{\\an8}T: top",
    "STYLE word",
    "Client:Yes.",
]


def _vtt(rng: random.Random) -> str:
    """A WebVTT file, mostly plain, sometimes with what only webvtt-py should read."""
    nl = rng.choice(["\n"] * 6 + ["\r\n", "\r"])
    out = [rng.choice(["WEBVTT", "WEBVTT - session", "\ufeffWEBVTT", "WEBVTT\nKind: captions"])]
    if rng.random() < 0.1:
        out.append("STYLE\n::cue { color: red }" if rng.random() < 0.5 else "REGION\nid:r1 width:40%")
    t = rng.uniform(0, 5)
    for i in range(rng.randint(1, 8)):
        if rng.random() < 0.08:
            out.append("NOTE a comment" + rng.choice(["", "\nover two lines"]))
        start, t = t, t + rng.uniform(0.2, 4)
        timing = f"{_clock(start, hours=rng.random() < 0.7)} --> {_clock(t)}"
        if rng.random() < 0.1:
            timing += rng.choice([" align:start position:10%", "  line:0", "\tsize:50%"])
        if rng.random() < 0.05:
            timing = " " + timing
        block = ([rng.choice(["1", f"cue-{i}", "a b"])] if rng.random() < 0.3 else []) + [timing]
        block += [rng.choice(CUE_LINES) for _ in range(rng.randint(1, 3))]
        out.append("\n".join(block))
        t += rng.uniform(0, 1)
    sep = "\n\n"
    text = ""
    for j, part in enumerate(out):
        if j:
            text += rng.choice([sep] * 10 + ["\n\n\n", "\n \n", "\n"])
        text += part
    text += rng.choice(["\n", "", "\n\n"])
    return text.replace("\n", nl)


def test_plain_vtt_cues_are_what_webvtt_py_reads():
    rng = random.Random(1)
    fast = 0
    for _ in range(1500):
        text = _vtt(rng).lstrip("\ufeff")
        lines = text.splitlines()
        try:
            timings = scan_timings(lines, _vtt_seconds, "x.vtt", "WebVTT", VTT_COMMON)
        except RuptureError:
            continue
        got = plain_cue_lines(text, lines, timings)
        if got is None:
            continue
        fast += 1
        captions = webvtt.from_buffer(io.StringIO(text)).captions
        assert got == [c.lines for c in captions], repr(text)
        assert len(captions) == len(timings)
    assert fast > 300


def _srt(rng: random.Random) -> str:
    """An SRT file, often of plain blocks, sometimes with what srt.parse reads differently or
    refuses."""
    odd = rng.random() < 0.5  # else only the odd cue text
    nl = rng.choice(["\n"] * 6 + ["\r\n"]) if odd else "\n"
    blocks, t = [], rng.uniform(0, 5)
    for i in range(1, rng.randint(2, 9)):
        start, t = t, t + rng.uniform(0.2, 4)
        timing = f"{_clock(start, ',')} --> {_clock(t, ',')}"
        if odd and rng.random() < 0.05:
            timing = rng.choice([f"{_clock(start)} --> {_clock(t)}", timing.replace("-->", "- >"), timing + " X1:40"])
        pool = CUE_LINES[:7] + ["12", "-3.5 ", "Client: 12 angry men", "x", " ", "3 apples", "00:00:01,000 hi"]
        lines = [rng.choice(pool + ([""] if odd else [])) for _ in range(rng.randint(1, 3))]
        blocks.append("\n".join(([str(i)] if not odd or rng.random() < 0.95 else []) + [timing] + lines))
    text = ""
    for j, b in enumerate(blocks):
        if j:
            text += rng.choice(["\n\n"] * 12 + (["\n\n\n", "\n", "\n \n"] if odd else []))
        text += b
    if odd:
        text = rng.choice(["", "", "\n", " \n", "garbage\n\n"]) + text
    text += rng.choice(["\n", "", "\n\n"] + (["\n\n\n"] if odd else []))
    return text.replace("\n", nl)


def test_srt_cues_are_what_srt_parse_reads():
    rng = random.Random(2)
    fast = plain = 0
    for _ in range(3000):
        text = _srt(rng)
        try:
            timings = scan_timings(text.splitlines(), _srt_seconds, "x.srt", "SRT", SRT_COMMON)
        except RuptureError:
            continue
        got = cue_texts(text, timings)
        blocks = plain_cues(text, timings)
        if got is None and blocks is None:
            continue
        parsed = [(s.content, s.start.total_seconds().hex(), s.end.total_seconds().hex()) for s in srt.parse(text)]
        if got is not None:
            fast += 1
            assert [(c, a.hex(), b.hex()) for c, a, b in got] == parsed, repr(text)
        if blocks is not None:
            plain += 1
            assert [("\n".join(lines), a.hex(), b.hex()) for lines, a, b in blocks] == parsed, repr(text)
    assert fast > 1000 and plain > 300


@pytest.mark.parametrize(
    "what,parse,common,sep", [("WebVTT", _vtt_seconds, VTT_COMMON, "."), ("SRT", _srt_seconds, SRT_COMMON, ",")]
)
def test_usual_timing_lines_read_as_the_general_parser_reads_them(what, parse, common, sep):
    rng = random.Random(3)
    fields = ["00", "01", "59", "60", "99", "7", "123", "1234567890", "0", "٣٣"]
    for _ in range(3000):
        a = (
            f"{rng.choice(fields)}:{rng.choice(fields)}:{rng.choice(fields)}"
            f"{rng.choice([sep, '.', ','])}{rng.choice(['000', '5', '999', '1000'])}"
        )
        if rng.random() < 0.3:
            a = a.split(":", 1)[1]
        b = _clock(rng.uniform(0, 99999), sep)
        line = (
            rng.choice(["", " ", "\t"])
            + a
            + rng.choice([" --> ", "-->", "  -->\t"])
            + b
            + rng.choice(["", " x", "x", "\u00a0"])
        )
        outcomes = []
        for c in (None, common):
            try:
                timings = scan_timings([line], parse, "f", what, c)
                outcomes.append([(t.line, t.start.hex(), t.end.hex()) for t in timings])
            except RuptureError as e:
                outcomes.append(str(e))
        assert outcomes[0] == outcomes[1], line


def test_fast_scanning_term_and_dash_patterns_match_as_the_plain_ones():
    # the patterns are written with a literal first in each alternative, for re's quick scan
    plain = {
        _TERM_NEXT: (r"\.\.+|…|\.[.?!]*|\?[.?!]*|![.?!]*", r"\.{2,}|…|[.?!]+"),
        _DASH: (r"--+|—|–(?<=\s–)", r"-{2,}|—|(?<=\s)–"),
    }
    references = {}
    for pattern, (fast, slow) in plain.items():
        assert fast in pattern.pattern
        references[pattern] = re.compile(pattern.pattern.replace(fast, slow), pattern.flags)
    rng = random.Random(4)
    atoms = [
        ".",
        "..",
        "…",
        "?!",
        "!",
        "'",
        "”",
        ")",
        "]",
        " ",
        "  ",
        "\t",
        "\n",
        "-",
        "--",
        "—",
        "–",
        "a",
        "Bc",
        "[laughs]",
        "(sighs)",
        '"',
        "«",
        "¿",
        "3",
        "?..",
        "!?!",
    ]
    for _ in range(5000):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 20)))
        for pattern, reference in references.items():
            assert [m.span() + m.groups() for m in pattern.finditer(text)] == [
                m.span() + m.groups() for m in reference.finditer(text)
            ], repr(text)


@pytest.mark.parametrize("backchannels", [None, ["ok", "i see", "uh-huh", "Mm"], ["k", "ok"], ["i\tsee", "jä", "yeah"]])
def test_backchannel_pretest_never_skips_a_match(backchannels):
    seg = UtteranceSegmenter(**({} if backchannels is None else {"backchannels": backchannels}))
    rng = random.Random(10)
    atoms = [
        "mm",
        "Mm-hmm",
        "MHM",
        "uh",
        " huh",
        "I",
        " see",
        "\tsee",
        "i",
        "ok",
        "OK",
        "k",
        "\u212a",
        "ja",
        "Jä",
        "yeah",
        "Yes",
        "right",
        "It",
        ",",
        ".",
        "!",
        " ",
        "\u00a0",
        "'s",
        "-",
        "x",
        "so",
    ]
    tested = 0
    for _ in range(20000):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(1, 5)))
        if text[0] in seg.bc_first and seg.bc_run.match(text, 0, len(text)):
            tested += 1
            assert seg._may_start_backchannel(text, 0, len(text)), repr(text)
    assert tested > 100


def _timeline_at(P: list, T: list, flags: list, rate: float, pos: int, side: str) -> float:
    """The seconds at one word position, in plain Python: the reference of Timeline.at_array."""
    lo = bisect_left(P, pos)
    if lo < len(P) and P[lo] == pos:  # anchors exactly here: lo..hi-1
        hi = bisect_right(P, pos, lo)
        wanted = [i for i in range(lo, hi) if flags[i] == (side == "start")]
        if hi - lo == 1 or not wanted:  # one anchor wins on either side; else the last/first anchor
            return T[hi - 1] if side == "start" else T[lo]
        return T[wanted[-1]] if side == "start" else T[wanted[0]]  # the last start, the first end
    if lo == 0:
        return max(0.0, T[0] - (P[0] - pos) / rate)
    if lo == len(P):
        return T[-1] + (pos - P[-1]) / rate
    p0, t0, p1, t1 = P[lo - 1], T[lo - 1], P[lo], T[lo]
    return max(t0, t0 + (t1 - t0) * (pos - p0) / (p1 - p0))


def test_timeline_arrays_give_the_floats_of_plain_python():
    rng = random.Random(5)
    odd = [float("inf"), float("nan"), -0.0, 0.0, -1.5, 1e308]
    for k in range(3000):
        n = rng.randint(1, 10)
        pos = sorted(rng.randint(0, 30) for _ in range(n))
        secs = [rng.choice([round(rng.uniform(0, 90), rng.choice([0, 1, 3])), rng.uniform(0, 90)]) for _ in range(n)]
        if k % 3 == 0:  # times no source should give, computed as Python would all the same
            secs = [rng.choice(odd) if rng.random() < 0.3 else x for x in secs]
        flags = [rng.random() < 0.5 for _ in range(n)]
        rate = rng.choice([2.5, 1.3, 2])
        tl = Timeline(pos, secs, flags, rate)
        queries = [rng.randint(-5, 40) for _ in range(25)]
        for side in ("start", "end"):
            assert [x.hex() for x in tl.at_array(np.array(queries), side).tolist()] == [
                float(_timeline_at(pos, secs, flags, rate, q, side)).hex() for q in queries
            ]


def test_rounded_arrays_are_python_round():
    rng = random.Random(9)
    values = [2.675, 1.0005, 0.0005, 0.0015, 1e-7, 0.0, -0.0, -1.2345, 1e12, float("inf"), 123456.7895, 5e-324]
    values += [rng.uniform(0, 10000) for _ in range(20000)]
    values += [k / 1000 + rng.choice([0, 0.0005, -0.0005, 5e-10]) for k in range(0, 200000, 7)]
    for decimals in (3, 0, 2, 6, 16, -1):
        got = round_array(np.array(values), decimals).tolist()
        assert [(x.hex(), x.hex()) for x in got] == [(round(v, decimals).hex(),) * 2 for v in values]


WORDS = [
    "I",
    "I'm",
    "okay.",
    "Okay",
    "mm-hmm,",
    "Mm-hmm.",
    "yeah",
    "right?",
    "Dr.",
    "e.g.",
    "A.",
    "World!",
    "...",
    "…",
    "--",
    "—",
    "–",
    "[laughs]",
    "[pause]",
    "(laughs)",
    '"Quote."',
    "don't.",
    "¿Qué?",
    "\t",
    "\u00a0",
    "é",
    "U.S.",
    "word--Word",
    "so...Yes",
    "ok,and",
    "end.[laughs]",
    "«Non»",
    '"',
    "😀",
    "1.",
    "(",
    ")",
]


def _turns(rng: random.Random) -> list[Turn]:
    turns, t = [], rng.uniform(0, 50)
    for _ in range(rng.randint(1, 5)):
        texts = []
        for _ in range(rng.randint(1, 4)):
            x = "".join(rng.choice(WORDS) + rng.choice([" ", " ", "", "  "]) for _ in range(rng.randint(1, 8)))
            texts.append(" ".join(x.split()) if rng.random() < 0.8 else x)
        texts = [x for x in texts if x] or ["x"]
        pieces, off = [], 0
        for x in texts:
            st = None if rng.random() < 0.3 else round(t, rng.choice([0, 1, 3]))
            t += rng.uniform(0, 5)
            en = None if rng.random() < 0.4 else round(t, rng.choice([0, 1, 3]))
            pieces.append(TurnPiece(off, off + len(x), st, en, rng.choice([None, 3])))
            off += len(x) + 1
        turns.append(
            Turn(
                rng.choice(["therapist", "client"]),
                rng.choice(["T", 'Dr. "Lee"']),
                " ".join(texts),
                pieces,
                rng.choice([None, 1]),
            )
        )
    return turns


def test_record_docs_give_the_record_of_full_docs():
    assert plain_pipeline(NLP)
    rng = random.Random(6)
    for _ in range(600):
        turns = _turns(rng)
        meta = {"k": rng.choice([1, "v", None, [1.5]])}
        full = NLP(make_doc(NLP, turns, session_id='s\u00e9"', meta=meta))
        record = NLP(make_record_doc(NLP, turns, session_id='s\u00e9"', meta=meta))
        expected = doc_to_session(full).to_json()
        assert doc_to_session(record).to_json() == expected
        # and the Doc's own spans say the same
        utts = full.spans["utterances"]
        assert [(u._.utterance_id, u._.start, u._.end, u.text) for u in utts] == [
            (u["id"], u["start"], u["end"], u["text"]) for u in json.loads(expected)["utterances"]
        ]


def test_records_with_times_json_cannot_write_as_numbers():
    # times too large for a float (a CSV time of 400 digits) come out as JSON's Infinity/NaN
    turns = [
        Turn("client", "C", "Fine. Thanks.", [TurnPiece(0, 13, 1.0, float("inf"), 2)]),
        Turn("therapist", "T", "Okay.", [TurnPiece(0, 5, float("inf"), None, 3)]),
    ]
    full = NLP(make_doc(NLP, turns, session_id="s"))
    record = NLP(make_record_doc(NLP, turns, session_id="s"))
    expected = doc_to_session(full).to_json()
    assert "Infinity" in expected and doc_to_session(record).to_json() == expected


def test_a_tokenizer_that_joins_across_spaces_takes_the_long_way():
    nlp = make_pipeline()
    assert plain_pipeline(nlp)
    nlp.tokenizer.add_special_case("New York", [{"ORTH": "New York"}])
    assert not plain_pipeline(nlp)


SENTENCES = [
    "How was the week?",
    "Fine, I suppose.",
    "Mm-hmm.",
    "I don't know -- it was hard.",
    "[laughs] Not really.",
    "So... maybe.",
    "You keep asking me that!",
    "Let's slow down for a moment.",
    "Okay. And then?",
]


def _sessions(tmp_path, rng: random.Random) -> list:
    """One small transcript in each format (turns of 1-3 sentences, each its own line/row/cue)."""
    files = []
    for k, fmt in enumerate(["txt", "timestamped.txt", "csv", "tsv", "vtt", "srt"]):
        cues, t = [], 2.0
        for i in range(rng.randint(3, 12)):
            who = "Therapist" if i % 2 == 0 else "Client"
            for _ in range(rng.randint(1, 3)):
                cues.append((i, who, rng.choice(SENTENCES), t, t + 1.5))
                t += 2.0
        if fmt == "txt":
            text = "".join(f"{w}: {s}\n" for _i, w, s, _a, _b in cues)
        elif fmt == "timestamped.txt":
            text = "".join(f"[{_clock(a)[:8]}] {w}: {s}\n" for _i, w, s, a, _b in cues)
        elif fmt in ("csv", "tsv"):
            d = "," if fmt == "csv" else "\t"
            rows = "".join(f'{w}{d}{a:.2f}{d}{b:.2f}{d}"{s}"\n' for _i, w, s, a, b in cues)
            text = f"speaker{d}start{d}end{d}text\n" + rows
        elif fmt == "vtt":
            text = "WEBVTT\n\n" + "".join(f"{_clock(a)} --> {_clock(b)}\n<v {w}>{s}\n\n" for _i, w, s, a, b in cues)
        else:
            text = "".join(
                f"{n}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{w}: {s}\n\n"
                for n, (_i, w, s, a, b) in enumerate(cues, 1)
            )
        files.append(write(tmp_path / "in" / f"s{k}.{fmt}", text))
    return files


def test_segment_files_writes_what_load_sessions_gives(tmp_path):
    files = _sessions(tmp_path, random.Random(8))
    odd = (
        "WEBVTT\n\nNOTE hi\n\nx\n00:00:01.000 --> 00:00:02.000 align:start\n<v T>Hello  there.\n\n"
        "00:00:02.500 --> 00:00:04.000\n<v C>Hi!"
    )
    files.append(write(tmp_path / "in" / "odd.vtt", odd))
    out = tmp_path / "out.jsonl"
    rep = segment_files(files, out)
    assert not rep.failures and rep.sessions == len(files)
    expected = "".join(s.to_json() + "\n" for f in files for s in load_sessions(f))
    assert out.read_text(encoding="utf-8") == expected
    assert [json.loads(x)["session_id"] for x in expected.splitlines()][-1] == "odd"


def test_control_character_count_without_regex_on_ascii():
    rng = random.Random(7)
    for _ in range(500):
        s = "".join(chr(rng.choice([rng.randint(0, 127), 9, 10, 32, 97])) for _ in range(rng.randint(1, 200)))
        bad = len(_CONTROL.findall(s))
        too_many = bad > max(8, len(s) // 20)
        try:
            _check_control_chars(s, "f")
            assert not too_many
        except RuptureError:
            assert too_many


def test_clock_and_seconds_parse_as_before():
    for v, want in [("1:02:03.5", 3723.5), ("02:03", 123.0), ("12.5", 12.5), ("12,5", 12.5), (" 7 ", 7.0)]:
        assert parse_clock(v) == want
    for v in ["1e5", "inf", "1:60:00", "-3", "", "1:2:3:4"]:
        with pytest.raises(ValueError):
            parse_clock(v)


def test_reading_canonical_jsonl_does_not_import_spacy(tmp_path):
    p = write(
        tmp_path / "c.jsonl",
        '{"session_id": "s", "utterances": [{"id": "s-u1", "turn": 0, "speaker": "client", "text": "Hi."}]}\n',
    )
    code = (
        "import sys; from rupture_nlp.ingest import load_sessions; "
        f"n = len(list(load_sessions({str(p)!r}))); "
        "print(n, 'spacy' in sys.modules, 'webvtt' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "False", "False"]
