"""ASR renderings of labelled sessions (rupture_nlp.corpus.asr, ``rupture corpus render-asr``)."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import re
from pathlib import Path

import pytest

from rupture_nlp.corpus.asr import AsrConfig, confusions, render_session, render_sessions, speakers_spec, to_srt, to_vtt
from rupture_nlp.errors import RuptureError
from rupture_nlp.ingest import load_sessions
from rupture_nlp.readers import read_transcript
from rupture_nlp.records import Session, Utterance, read_sessions
from rupture_nlp.schema import load_schema
from rupture_nlp.validate import validate_file

from ingest_helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
DEV, TEST = ROOT / "corpora" / "dev.jsonl", ROOT / "corpora" / "test.jsonl"
SCHEMA = load_schema()
#: every knob that changes words or case off: the rendering only regroups words and drops
#: what recognisers do not hear (events, dashes, quotes)
PLAIN = AsrConfig(
    lowercase_session_rate=0,
    lowercase_segment_rate=0,
    punct_drop_rate=0,
    filler_rate=0,
    false_start_rate=0,
    confusion_rate=0,
    speaker_error_rate=0,
)
_TRAIL = re.compile(r"[,.?!;:…](?=\s|$)")


@pytest.fixture(scope="module")
def sessions() -> list[Session]:
    return list(read_sessions(DEV)) + list(read_sessions(TEST))


def source_roles(session: Session) -> dict[str, str]:
    return {u.id: u.speaker for u in session.utterances}


def heard(text: str) -> str:
    """What the renderer keeps of an authored text when every knob is off."""
    text = re.sub(r"--+|—|[\"“”]", " ", re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", text))
    return " ".join(t for t in text.split() if any(c.isalnum() for c in t))


def test_same_seed_same_bytes_other_seed_differs(sessions):
    a = [s.to_json() for s in render_sessions(sessions[:6], seed=11)]
    b = [s.to_json() for s in render_sessions(sessions[:6], seed=11)]
    c = [s.to_json() for s in render_sessions(sessions[:6], seed=12)]
    assert a == b
    assert all(x != y for x, y in zip(a, c))
    assert [s.to_json() for s in sessions[:6]] == [s.to_json() for s in list(read_sessions(DEV))[:6]]  # untouched


@pytest.mark.parametrize(
    "config", [AsrConfig(), AsrConfig(speaker_error_rate=0.5, min_segment_s=0.5, max_segment_s=2.0, filler_rate=0.2)]
)
def test_labels_kept_exactly_and_on_allowed_roles(sessions, config):
    for seed in (0, 1):
        for s in sessions:
            r = render_session(s, config, seed)
            before = collections.Counter(l for u in s.utterances for l in u.labels or [])
            after = collections.Counter(l for u in r.utterances for l in u.labels or [])
            assert after == before, s.session_id
            roles, by_id = source_roles(s), {u.id: u for u in s.utterances}
            for u in r.utterances:
                for l in u.labels:
                    assert SCHEMA.label(l).speaker in ("any", u.speaker), (u.id, l)
                    # the label comes from a source utterance whose words this segment holds
                    assert any(l in (by_id[i].labels or []) for i in u.extra["source_ids"]), (u.id, l)
                assert {roles[i] for i in u.extra["source_ids"]} == {roles[u.extra["source_ids"][0]]}


def test_speaker_errors_only_on_unlabelled_segments_at_the_configured_rate(sessions):
    flips = unlabelled = 0
    zero_names = set()
    for seed in (0, 1, 2):
        for s in sessions:
            r = render_session(s, AsrConfig(speaker_error_rate=0.1), seed)
            roles = source_roles(s)
            names = {(u.speaker_name, u.speaker) for u in r.utterances}
            assert len(names) == 2 and {n for n, _ in names} == {"SPEAKER_00", "SPEAKER_01"}
            zero_names |= {role for name, role in names if name == "SPEAKER_00"}
            for u in r.utterances:
                flipped = u.speaker != roles[u.extra["source_ids"][0]]
                if u.labels:
                    assert not flipped, u.id
                else:
                    unlabelled += 1
                    flips += flipped
            turns = [u.turn for u in r.utterances]
            assert turns[0] == 0 and all(
                b - a == (x.speaker != y.speaker)
                for a, b, x, y in zip(turns, turns[1:], r.utterances, r.utterances[1:])
            )
    assert unlabelled > 5000
    assert 0.085 <= flips / unlabelled <= 0.115
    assert zero_names == {"therapist", "client"}  # which role is SPEAKER_00 varies by session
    r = render_session(sessions[0], dataclasses.replace(AsrConfig(), speaker_error_rate=0.0), 0)
    roles = source_roles(sessions[0])
    assert all(u.speaker == roles[u.extra["source_ids"][0]] for u in r.utterances)


def test_plain_rendering_keeps_every_heard_word(sessions):
    for s in sessions[:5]:
        r = render_session(s, PLAIN, 3)
        assert " ".join(u.text for u in r.utterances) == " ".join(heard(u.text) for u in s.utterances if heard(u.text))


def test_casing_and_punctuation_rates_are_applied(sessions):
    # the random draws do not depend on the rates: the same seed differs only where a rate acts
    kept = total = lowered = cased = 0
    for s in sessions:
        base = render_session(s, PLAIN, 5)
        punct = render_session(s, dataclasses.replace(PLAIN, punct_drop_rate=0.7), 5)
        low = render_session(s, dataclasses.replace(PLAIN, lowercase_segment_rate=0.3), 5)
        total += sum(len(_TRAIL.findall(u.text)) for u in base.utterances)
        kept += sum(len(_TRAIL.findall(u.text)) for u in punct.utterances)
        for b, l in zip(base.utterances, low.utterances):
            assert l.text in (b.text, b.text.lower())
            if b.text != b.text.lower():
                cased += 1
                lowered += l.text != b.text
        assert [
            u.text.lower()
            for u in render_session(s, dataclasses.replace(PLAIN, lowercase_session_rate=1), 5).utterances
        ] == [u.text.lower() for u in base.utterances]
    assert total > 5000 and 0.27 <= kept / total <= 0.33
    assert cased > 2000 and 0.27 <= lowered / cased <= 0.33
    whole = sum(
        all(u.text == u.text.lower() for u in render_session(s, AsrConfig(lowercase_session_rate=0.5), seed).utterances)
        for s in sessions
        for seed in (0, 1, 2)
    )
    assert 0.38 <= whole / (3 * len(sessions)) <= 0.62


def test_fillers_false_starts_and_confusions(sessions):
    fillers = words = starts = utts = 0
    for s in sessions:
        r = render_session(s, dataclasses.replace(PLAIN, filler_rate=0.1, false_start_rate=0.2), 2)
        src = collections.Counter(w.lower().strip(",.?!") for u in s.utterances for w in heard(u.text).split())
        out = collections.Counter(w.lower().strip(",.?!") for u in r.utterances for w in u.text.split())
        fillers += sum(out[f] - src[f] for f in ("um", "uh", "like", "know"))
        words += sum(src.values())
        starts += sum(w.endswith("-") for u in r.utterances for w in u.text.split())
        starts -= sum(w.endswith("-") for u in s.utterances for w in heard(u.text).split())
        utts += sum(
            1
            for u in s.utterances
            if heard(u.text)  # those starting with a word
            and heard(u.text).split()[0].rstrip(",.?!;:…").replace("'", "").isalpha()
        )
    assert 0.09 <= fillers / words <= 0.11
    assert 0.17 <= starts / utts <= 0.23
    table = confusions()
    assert sum(len(v) for v in table.values()) >= 80
    assert all(w.lower() != " ".join(k) for k, v in table.items() for w in v)
    s = Session(
        "c1",
        [
            Utterance(
                "c1-u1",
                0,
                "client",
                "Want to go there because it is kind of late, kind, of.",
                start=0.0,
                end=4.0,
                labels=[],
            )
        ],
    )
    r = render_session(s, dataclasses.replace(PLAIN, confusion_rate=1.0), 0)
    assert r.utterances[0].text == "Wanna go their 'cause it's kinda late, kind, of."  # not across commas


def parts(session: Session) -> list[int]:
    """Per source utterance, its part: turns (speaker changes) split before each labelled
    utterance that shares a label with an earlier one since the last such split."""
    out, seen = [], set()
    for k, u in enumerate(session.utterances):
        labels = set(u.labels or [])
        if k == 0 or u.speaker != session.utterances[k - 1].speaker or labels & seen:
            out.append(out[-1] + 1 if out else 0)
            seen = set()
        else:
            out.append(out[-1])
        seen |= labels
    return out


@pytest.mark.parametrize("config", [AsrConfig(), AsrConfig(min_segment_s=3.0, max_segment_s=10.0, pause_cut_s=1.0)])
def test_segments_are_cut_by_time_within_turns(sessions, config):
    lo, hi, pause = config.min_segment_s, config.max_segment_s, config.pause_cut_s
    durations, alone = [], 0
    for s in sessions:
        r = render_session(s, config, 4)
        pos = {u.id: i for i, u in enumerate(s.utterances)}
        part = parts(s)
        seg_part = [part[pos[u.extra["source_ids"][0]]] for u in r.utterances]
        # a segment starts a stretch after a speaker change, a label split or a silence over pause_cut_s
        opens = [
            k == 0 or seg_part[k] != seg_part[k - 1] or u.start - r.utterances[k - 1].end > pause + 1e-3
            for k, u in enumerate(r.utterances)
        ] + [True]
        for k, u in enumerate(r.utterances):
            ids = [pos[i] for i in u.extra["source_ids"]]
            assert ids == list(range(ids[0], ids[-1] + 1))  # consecutive source utterances
            assert {part[i] for i in ids} == {seg_part[k]}  # never across a speaker change or a label split
            first, last = s.utterances[ids[0]], s.utterances[ids[-1]]
            assert first.start - 1e-3 <= u.start <= u.end <= last.end + 1e-3  # within the source's times
            assert k == 0 or u.start >= r.utterances[k - 1].end - 1e-3
            dur = round(u.end - u.start, 3)
            assert dur <= hi or len(u.text.split()) == 1, u.id
            if opens[k] and opens[k + 1]:
                alone += 1  # a whole stretch (short turn, ...): any duration up to max_segment_s
            else:
                assert dur >= lo - 1e-3, u.id
                durations.append(dur)
    assert len(durations) > 2000 and alone > 2000
    assert lo + 0.25 * (hi - lo) < sum(durations) / len(durations) < hi - 0.25 * (hi - lo)


def test_a_file_renders_only_its_own_sessions(sessions, tmp_path):
    dev = list(read_sessions(DEV))
    rendered = list(render_sessions(read_sessions(DEV), seed=9))
    assert [r.session_id for r in rendered] == [s.session_id for s in dev]
    for s, r in zip(dev, rendered):
        assert r.meta["split"] == "dev" and r.meta["units"] == "asr"
        assert {k: v for k, v in r.meta.items() if k not in ("units", "rendering")} == {
            k: v for k, v in s.meta.items() if k != "units"
        }
        assert r.meta["rendering"] == {
            "kind": "asr",
            "seed": 9,
            "config": dataclasses.asdict(AsrConfig()),
            "times": "source",
        }
        assert all(i.startswith(s.session_id + "-u") for u in r.utterances for i in u.extra["source_ids"])
        assert [u.id for u in r.utterances] == [f"{s.session_id}-u{n:04d}" for n in range(1, len(r.utterances) + 1)]
    assert render_session(dev[3], seed=9).to_json() == rendered[3].to_json()  # independent of the other sessions


def test_sessions_without_times_get_synthetic_ones(sessions):
    s = next(x for x in sessions if x.utterances[0].text[:1].isalnum())
    untimed = Session(s.session_id, [dataclasses.replace(u, start=None, end=None) for u in s.utterances], s.meta)
    r = render_session(untimed, PLAIN, 0)
    assert r.meta["rendering"]["times"] == "synthetic"
    # 2.6 words/s, 0.3 s between utterances
    ends = list(itertools.accumulate(max(1, len(u.text.split())) / 2.6 + 0.3 for u in s.utterances))
    span = {u.id: (e - (max(1, len(u.text.split())) / 2.6 + 0.3), e - 0.3) for u, e in zip(s.utterances, ends)}
    for u in r.utterances:
        assert span[u.extra["source_ids"][0]][0] - 1e-3 <= u.start < u.end <= span[u.extra["source_ids"][-1]][1] + 1e-3
    assert r.utterances[0].start == 0.0
    assert all(a.end <= b.start for a, b in zip(r.utterances, r.utterances[1:]))
    assert " ".join(u.text for u in r.utterances) == " ".join(heard(u.text) for u in s.utterances if heard(u.text))


def test_events_dropped_unless_a_labelled_utterance_needs_them():
    s = Session(
        "e1",
        [
            Utterance("e1-u1", 0, "therapist", "How was the week? [pause]", start=0.0, end=3.0, labels=[]),
            Utterance("e1-u2", 1, "client", "[laughs]", start=3.2, end=4.0, labels=[]),
            Utterance("e1-u3", 2, "therapist", "R&D <team> then--", start=4.2, end=6.0, labels=[]),
            Utterance("e1-u4", 3, "client", "[shrugs]", start=6.2, end=7.0, labels=["withdrawal/minimal_response"]),
            Utterance("e1-u5", 3, "client", "--", start=7.0, end=7.5, labels=[]),
        ],
    )
    r = render_session(s, PLAIN, 0)
    assert [(u.text, u.extra["source_ids"], u.labels, u.start, u.end) for u in r.utterances] == [
        ("How was the week?", ["e1-u1"], [], 0.0, round(4 / 2.6, 3)),  # the pause is silence
        ("R&D <team> then", ["e1-u3"], [], 4.2, 6.0),
        ("[shrugs]", ["e1-u4"], ["withdrawal/minimal_response"], 6.2, 7.0),
    ]
    assert "R&amp;D &lt;team&gt; then" in to_vtt(r)
    kept = render_session(s, dataclasses.replace(PLAIN, drop_events=False), 0)
    assert [u.text for u in kept.utterances] == ["How was the week? [pause]", "[laughs]", "R&D <team> then", "[shrugs]"]
    assert (
        render_session(Session("x", [Utterance("x-u1", 0, "client", "Hi.", labels=None)]), PLAIN).utterances[0].labels
        is None
    )


def test_config_is_validated():
    for bad in (
        {"punct_drop_rate": 1.5},
        {"filler_rate": -0.1},
        {"min_segment_s": 0},
        {"max_segment_s": -1.0},
        {"min_segment_s": 5.0, "max_segment_s": 4.0},
        {"words_per_second": float("nan")},
        {"drop_events": "yes"},
        {"confusion_rate": True},
    ):
        with pytest.raises(RuptureError):
            AsrConfig(**bad)


def test_cli_renders_and_subtitles_read_back(tmp_path, monkeypatch, capsys):
    small = tmp_path / "two.jsonl"
    small.write_text("".join(DEV.read_text(encoding="utf-8").splitlines(keepends=True)[:2]), encoding="utf-8")
    out, out2 = tmp_path / "asr.jsonl", tmp_path / "asr2.jsonl"
    code, _o, err = run_cli(
        monkeypatch,
        capsys,
        "corpus",
        "render-asr",
        str(small),
        "--out",
        str(out),
        "--vtt",
        str(tmp_path / "vtt"),
        "--srt",
        str(tmp_path / "srt"),
        "--seed",
        "7",
        "--filler-rate",
        "0.05",
    )
    assert code == 0, err
    assert "rendered 2 session(s)" in err
    assert (
        run_cli(
            monkeypatch,
            capsys,
            "corpus",
            "render-asr",
            str(small),
            "--out",
            str(out2),
            "--seed",
            "7",
            "--filler-rate",
            "0.05",
        )[0]
        == 0
    )
    assert out.read_bytes() == out2.read_bytes()
    assert not list(validate_file(out, SCHEMA))
    rendered = list(read_sessions(out))
    assert [r.session_id for r in rendered] == [s.session_id for s in list(read_sessions(DEV))[:2]]
    assert rendered[0].meta["rendering"]["config"]["filler_rate"] == 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == ["asr.jsonl", "asr2.jsonl", "srt", "two.jsonl", "vtt"]
    for r in rendered:
        for ext in ("vtt", "srt"):
            path = tmp_path / ext / f"{r.session_id}.{ext}"
            assert path.stat().st_mode & 0o777 == 0o600
            pieces = read_transcript(path, speakers=speakers_spec(r)).pieces
            assert len(pieces) == len(r.utterances)
            for p, u in zip(pieces, r.utterances):
                assert (p.speaker_name, p.text) == (u.speaker_name, u.text)
                assert abs(p.start - u.start) <= 1e-3 and abs(p.end - u.end) <= 1e-3
            (seg,) = load_sessions(path, speakers=speakers_spec(r))
            assert seg.session_id == r.session_id
            assert [(t[0].speaker, " ".join(u.text for u in t)) for t in seg.turns()] == [
                (t[0].speaker, " ".join(u.text for u in t)) for t in r.turns()
            ]
        assert to_vtt(r).startswith("WEBVTT\n\n") and to_srt(r).startswith("1\n")


def test_cli_refuses_bad_options_before_writing(tmp_path, monkeypatch, capsys):
    small = tmp_path / "one.jsonl"
    small.write_text(DEV.read_text(encoding="utf-8").splitlines(keepends=True)[0], encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, _o, err = run_cli(
        monkeypatch,
        capsys,
        "corpus",
        "render-asr",
        str(small),
        "--out",
        str(out),
        "--min-segment",
        "5",
        "--max-segment",
        "2",
    )
    assert code == 1 and "max_segment_s" in err and "Traceback" not in err and not out.exists()
    (tmp_path / "afile").write_text("x")
    code, _o, err = run_cli(
        monkeypatch, capsys, "corpus", "render-asr", str(small), "--out", str(out), "--vtt", str(tmp_path / "afile")
    )
    assert code == 1 and "not a folder" in err and not out.exists()
    dup = tmp_path / "dup.jsonl"
    dup.write_text(small.read_text() * 2)
    code, _o, err = run_cli(monkeypatch, capsys, "corpus", "render-asr", str(dup), "--out", str(out))
    assert code == 1 and "appears twice" in err and not out.exists()
