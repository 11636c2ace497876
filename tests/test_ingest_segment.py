"""Segmentation rules, offsets, ids, times and the spaCy face of the pipeline."""

from __future__ import annotations

import re

import pytest
import spacy

from ingest_helpers import check_offsets, one_session, texts, write
from rupture_nlp.ingest import load_docs, load_sessions, make_pipeline
from rupture_nlp.readers.base import Turn, TurnPiece
from rupture_nlp.records import Session, Utterance
from rupture_nlp.segment import UtteranceSegmenter, doc_to_session, make_doc, session_to_doc

EVENT = re.compile(r"\[[^\[\]\n]{1,80}\]")
SEG = UtteranceSegmenter()


def split(text: str, pieces: list[str] | None = None, seg: UtteranceSegmenter = SEG) -> list[str]:
    """Units of ``text``; or of ``pieces`` joined by spaces, with their starts as piece hints."""
    starts: list[int] = []
    if pieces is not None:
        pos = 0
        for p in pieces:
            starts.append(pos)
            pos += len(p) + 1
        text = " ".join(pieces)
    events = [(m.start(), m.end(), m.group()[1:-1]) for m in EVENT.finditer(text)]
    return [text[a:b] for a, b in seg.split(text, starts, events)]


@pytest.mark.parametrize(
    "text,units",
    [
        # sentences; abbreviations and initials do not end one; lower case after "." continues
        ("I went home. Then I slept! Did you?", ["I went home.", "Then I slept!", "Did you?"]),
        ("Dr. Lee saw J. Smith at 5 p.m. and left.", ["Dr. Lee saw J. Smith at 5 p.m. and left."]),
        ('She said "why?" and left. "Fine." Okay', ['She said "why?" and left.', '"Fine."', "Okay"]),
        # backchannels as their own utterances
        ("Okay. And how's the week been?", ["Okay.", "And how's the week been?"]),
        ("Mm-hmm, and then what happened?", ["Mm-hmm,", "and then what happened?"]),
        ("Yeah, yeah. I know what you mean.", ["Yeah, yeah.", "I know what you mean."]),
        ("Right, so let's look at the diary.", ["Right, so let's look at the diary."]),
        ("Yeah I think so.", ["Yeah I think so."]),
        # ellipses: hesitation stays, a new capitalised start splits
        ("It's just... I thought you were different.", ["It's just... I thought you were different."]),
        ("Thursday was... yeah.", ["Thursday was... yeah."]),
        ("I don't know... Anyway, the week was fine.", ["I don't know...", "Anyway, the week was fine."]),
        # interruptions
        ("I was going to--I mean, it's fine.", ["I was going to--", "I mean, it's fine."]),
        ("So it was, um -- It was hard.", ["So it was, um --", "It was hard."]),
        ("the thing -- the diary -- is what matters", ["the thing -- the diary -- is what matters"]),
        ("my sister—Fiona—said so.", ["my sister—Fiona—said so."]),
        # trailing fragments are kept
        ("If you had to guess, with a full bus--", ["If you had to guess, with a full bus--"]),
        ("And then...", ["And then..."]),
        # events stay with an utterance, never alone
        ("I don't know. [sighs]", ["I don't know. [sighs]"]),
        ("Fine. [laughs] So anyway.", ["Fine.", "[laughs] So anyway."]),
        ("Fair. [breathes out] ... Okay, that's thirty.", ["Fair.", "[breathes out] ... Okay, that's thirty."]),
        ("[shrugs]", ["[shrugs]"]),
        ("...", ["..."]),
    ],
)
def test_split_rules(text, units):
    assert split(text) == units


@pytest.mark.parametrize(
    "pieces,units",
    [
        # the source's lines decide where an event belongs
        (["The week was a week. [laughs]", "Work was mad."], ["The week was a week. [laughs]", "Work was mad."]),
        (["I mixed them up.", "[laughs] So, a danger."], ["I mixed them up.", "[laughs] So, a danger."]),
        # an event alone on its line attaches to the next line (or the previous one at the end)
        (["[sighs]", "Wednesday I sat alone."], ["[sighs] Wednesday I sat alone."]),
        (["Seventy-five.", "[reads again]"], ["Seventy-five. [reads again]"]),
        # interrupted and resumed
        (["in June--", "--and she wants an updo"], ["in June--", "--and she wants an updo"]),
        # a cue that breaks mid-sentence does not split it; a capitalised new line does
        (["so I was thinking that", "my mother would know"], ["so I was thinking that my mother would know"]),
        (["so I was thinking that", "I should go"], ["so I was thinking that I should go"]),
        (["so I told her", "My mother said no"], ["so I told her", "My mother said no"]),
        (["Well,", "Maria said no"], ["Well, Maria said no"]),
    ],
)
def test_split_uses_source_lines(pieces, units):
    assert split("", pieces) == units


def test_split_configuration():
    never = UtteranceSegmenter(ellipsis="never", dash="never", backchannels=[], attach_events=False)
    assert split("I don't know... Anyway, fine. Okay.", seg=never) == ["I don't know... Anyway, fine.", "Okay."]
    assert split("I was going to--I mean.", seg=never) == ["I was going to--I mean."]
    assert split("Mm-hmm, go on.", seg=never) == ["Mm-hmm, go on."]
    always = UtteranceSegmenter(ellipsis="always")
    assert split("It's just... I thought so.", seg=always) == ["It's just...", "I thought so."]
    with pytest.raises(ValueError):
        UtteranceSegmenter(ellipsis="sometimes")


# Written in the style of the bundled corpus (one utterance per line, consecutive lines of one
# speaker form a turn), not copied from it.
CORPUS_STYLE = """\
T: Come in. Shall we pick up where we left off?
C: If you like.
T: Last week you mentioned the argument with your brother.
T: How have things been since then?
C: [shrugs] Same as ever.
C: He rang on Sunday--
C: --and of course it was about money again.
T: Mm-hmm.
T: What was that like for you?
C: It's just... I don't see why it's always me.
C: [pause]
C: Sorry. I'm not trying to be difficult.
T: You're not being difficult. This matters.
C: Okay. [laughs]
C: Anyway, the week was fine otherwise.
"""


def test_corpus_convention_line_boundaries_are_recovered(tmp_path):
    s = one_session(write(tmp_path / "style.txt", CORPUS_STYLE))
    expected = [
        "Come in.",
        "Shall we pick up where we left off?",
        "If you like.",
        "Last week you mentioned the argument with your brother.",
        "How have things been since then?",
        "[shrugs] Same as ever.",
        "He rang on Sunday--",
        "--and of course it was about money again.",
        "Mm-hmm.",
        "What was that like for you?",
        "It's just... I don't see why it's always me.",
        "[pause] Sorry.",
        "I'm not trying to be difficult.",
        "You're not being difficult.",
        "This matters.",
        "Okay. [laughs]",
        "Anyway, the week was fine otherwise.",
    ]
    # every line break inside a turn is an utterance boundary, except around the event alone
    # on its line, which joins the next line
    assert texts(s) == expected
    # the same turns joined on one line each: only the two places where the line break itself
    # carried the information differ
    joined = "\n".join(f"{sp}: {' '.join(t)}" for sp, t in _turns(CORPUS_STYLE))
    s2 = one_session(write(tmp_path / "joined.txt", joined))
    assert texts(s2) == expected[:6] + ["He rang on Sunday-- --and of course it was about money again."] + expected[
        8:15
    ] + ["Okay.", "[laughs] Anyway, the week was fine otherwise."]


def _turns(text: str) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for ln in text.splitlines():
        sp, t = ln.split(": ", 1)
        if out and out[-1][0] == sp:
            out[-1][1].append(t)
        else:
            out.append((sp, [t]))
    return out


# ------------------------------------------------------------------ ids, offsets, events
def test_ids_offsets_and_events_on_a_session(tmp_path):
    p = write(tmp_path / "Session 7.txt", CORPUS_STYLE)
    s = one_session(p)
    assert s.session_id == "Session-7"
    assert [u.id for u in s.utterances] == [f"Session-7-u{i:04d}" for i in range(1, len(s.utterances) + 1)]
    assert one_session(p).to_dict() == s.to_dict()  # same input, same output
    check_offsets(p, s)
    turns = [u.turn for u in s.utterances]
    assert turns == sorted(turns) and turns[0] == 0 and set(turns) == set(range(turns[-1] + 1))
    events = {u.text: u.events for u in s.utterances if u.events}
    assert events == {"[shrugs] Same as ever.": ["shrugs"], "[pause] Sorry.": ["pause"], "Okay. [laughs]": ["laughs"]}
    # ids depend on the content before them only: appending a turn keeps every earlier id
    s2 = one_session(write(tmp_path / "b" / "Session 7.txt", CORPUS_STYLE + "T: One more thing.\n"))
    assert [u.to_dict() for u in s2.utterances[: len(s.utterances)]] == [u.to_dict() for u in s.utterances]


# ------------------------------------------------------------------ times
def test_times_from_cues_are_kept_and_split_cues_interpolated(tmp_path):
    vtt = (
        "WEBVTT\n\n00:00:10.000 --> 00:00:12.000\n<v T>Okay. Tell me more about that.\n\n"
        "00:00:13.000 --> 00:00:14.000\n<v C>No.\n\n"
        "00:00:14.500 --> 00:00:16.000\n<v C>I mean, fine.\n"
    )
    s = one_session(write(tmp_path / "t.vtt", vtt))
    assert [(u.text, u.start, u.end) for u in s.utterances] == [
        ("Okay.", 10.0, 10.333),  # 1 of the cue's 6 words
        ("Tell me more about that.", 10.333, 12.0),
        ("No.", 13.0, 14.0),
        ("I mean, fine.", 14.5, 16.0),
    ]


def test_times_are_null_without_any_and_monotonic_with_some(tmp_path):
    s = one_session(write(tmp_path / "n.txt", CORPUS_STYLE))
    assert all(u.start is None and u.end is None for u in s.utterances)
    ts = "".join(f"[00:00:{10 + 5 * i:02d}] {ln}\n" for i, ln in enumerate(CORPUS_STYLE.splitlines()[:8]))
    s = one_session(write(tmp_path / "t.txt", ts))
    for u, v in zip(s.utterances, s.utterances[1:]):
        assert u.start <= u.end <= v.start + 1e-9
    assert s.utterances[0].start == 10.0


def test_csv_turn_times_shared_by_word_count(tmp_path):
    p = write(
        tmp_path / "c.csv",
        "speaker,start,end,text\nClient,100,110,One two three four. Five six seven eight nine ten.\n",
    )
    s = one_session(p)
    assert [(u.start, u.end) for u in s.utterances] == [(100.0, 104.0), (104.0, 110.0)]


# ------------------------------------------------------------------ the spaCy face
def test_docs_have_turn_and_utterance_spans_with_attributes(tmp_path):
    p = write(tmp_path / "d.csv", "speaker,start,end,text\nT,1,2,Hi. How are you?\nC,3,4,[sighs] Tired.\n")
    doc = next(load_docs(p))
    assert doc._.session_id == "d" and doc._.meta["source_format"] == "csv"
    utts = list(doc.spans["utterances"])
    assert [u.text for u in utts] == ["Hi.", "How are you?", "[sighs] Tired."]
    assert [s.text for s in doc.sents][0] == "Hi."
    u = utts[2]
    assert (u._.utterance_id, u._.speaker, u._.turn, u._.events, u._.start, u._.end) == (
        "d-u0003",
        "client",
        1,
        ["sighs"],
        3.0,
        4.0,
    )
    assert [t._.speaker for t in doc.spans["turns"]] == ["therapist", "client"]
    assert [e.label_ for e in doc.spans["events"]] == ["sighs"]
    assert doc_to_session(doc).to_dict() == one_session(p).to_dict()


def test_pipeline_is_a_plain_spacy_pipeline(tmp_path):
    nlp = make_pipeline({"rupture_utterances": {"ellipsis": "never"}})
    assert nlp.pipe_names == ["rupture_events", "rupture_utterances", "rupture_times"]
    doc = nlp("Mm-hmm. I don't know... Anyway. [laughs]")
    assert [s.text for s in doc.sents] == ["Mm-hmm.", "I don't know... Anyway. [laughs]"]
    assert doc.spans["utterances"][0]._.is_backchannel and not doc.spans["utterances"][1]._.is_backchannel
    nlp.to_disk(tmp_path / "pipe")
    again = spacy.load(tmp_path / "pipe")
    assert again.get_pipe("rupture_utterances").ellipsis == "never"
    with pytest.raises(ValueError, match="no such component"):
        make_pipeline({"rupture_nothing": {}})


def test_make_doc_from_turns_for_python_users():
    nlp = make_pipeline()
    turns = [
        Turn("therapist", "Dr Lee", "Welcome. Sit anywhere.", [TurnPiece(0, 22, 0.0, 2.0, 1)]),
        Turn("client", "Sam", "Thanks.", [TurnPiece(0, 7, 2.5, 3.0, 2)]),
    ]
    doc = nlp(make_doc(nlp, turns, session_id="py1"))
    s = doc_to_session(doc)
    assert [(u.id, u.speaker_name, u.text, u.start, u.end) for u in s.utterances] == [
        ("py1-u0001", "Dr Lee", "Welcome.", 0.0, 0.667),
        ("py1-u0002", "Dr Lee", "Sit anywhere.", 0.667, 2.0),
        ("py1-u0003", "Sam", "Thanks.", 2.5, 3.0),
    ]


def test_canonical_sessions_round_trip_through_docs_unchanged(tmp_path):
    s = Session(
        "c1",
        [
            Utterance("c1-a", 0, "therapist", "Okay. So, the diary.", 1.0, 3.0, char_start=0, char_end=20),
            Utterance(
                "c1-b",
                0,
                "therapist",
                "How did it go?",
                3.2,
                4.0,
                char_start=21,
                char_end=35,
                labels=["repair/invite_discussion"],
                scores={"repair/invite_discussion": 0.9},
            ),
            Utterance("c1-c", 1, "client", "[sighs]  Not great.", None, None, events=["sighs"], extra={"x": 1}),
            Utterance("c1-d", 1, "client", " odd spacing ", None, None),
            Utterance("c1-e", 1, "client", "", None, None),
        ],
        meta={"m": 1},
        extra={"e": 2},
    )
    nlp = make_pipeline()
    doc = session_to_doc(nlp, s)
    assert doc_to_session(doc).to_dict() == s.to_dict()
    # running the pipeline on it again does not re-segment it
    assert doc_to_session(nlp(doc)).to_dict() == s.to_dict()
    p = tmp_path / "c.jsonl"
    p.write_text(s.to_json() + "\n")
    assert [doc_to_session(d).to_dict() for d in load_docs(p)] == [s.to_dict()]
    assert [x.to_dict() for x in load_sessions(p)] == [s.to_dict()]


def test_timeline_sides_interpolation_and_extrapolation():
    from rupture_nlp.timeline import Timeline

    # piece 1: words 0-4 from 10 s to 12 s; pause; piece 2: words 4-6 from 13 s to 14 s
    tl = Timeline([0, 4, 4, 6], [10.0, 12.0, 13.0, 14.0], [True, False, True, False], words_per_second=2.0)
    assert tl.at(4, "end") == 12.0 and tl.at(4, "start") == 13.0  # the pause belongs to neither
    assert tl.at(2, "start") == 11.0 and tl.at(5, "end") == 13.5
    assert tl.at(8, "end") == 15.0  # after the last anchor: 2 words at 2 words/s
    assert Timeline([10], [3.0], [True], 2.0).at(0, "start") == 0.0  # never before zero
    with pytest.raises(ValueError):
        Timeline([0], [1.0, 2.0], [True])
