"""The bundled corpus: size, label coverage, no templates, the split, and its tooling."""

from __future__ import annotations

import collections
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rupture_nlp.cli import app
from rupture_nlp.records import read_sessions
from rupture_nlp.schema import load_schema

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("train", "dev", "test")
FILES = [ROOT / "corpora" / f"{p}.jsonl" for p in PARTS]
SCHEMA = load_schema()


@pytest.fixture(scope="module")
def corpus():
    return {p: list(read_sessions(f)) for p, f in zip(PARTS, FILES)}


def all_sessions(corpus):
    return [s for p in PARTS for s in corpus[p]]


def authored_count(s) -> int:
    """Authored utterances (source lines) of an aligned session."""
    return len({i for u in s.utterances for i in u.extra["source_ids"]})


def minutes(s) -> float:
    return s.utterances[-1].end / 60


def test_size_and_session_lengths(corpus):
    sessions = all_sessions(corpus)
    assert len(sessions) >= 184
    assert sum(authored_count(s) for s in sessions) >= 22000
    assert sum(len(s.utterances) for s in sessions) > sum(authored_count(s) for s in sessions)
    assert len({s.session_id for s in sessions}) == len(sessions)
    kinds = collections.defaultdict(list)
    for s in sessions:
        kinds[s.meta["collection"]].append(s)
    assert set(kinds) == {"stretch", "whole_session", "health_counselling"}
    assert all(50 <= authored_count(s) <= 110 for s in kinds["stretch"])
    assert len(kinds["whole_session"]) >= 30 and all(40 <= minutes(s) <= 55 for s in kinds["whole_session"])
    assert all(authored_count(s) >= 250 for s in kinds["whole_session"])
    assert len(kinds["health_counselling"]) >= 30
    assert all(10 <= minutes(s) <= 30 for s in kinds["health_counselling"])


def test_label_coverage_and_rates(corpus):
    sessions = all_sessions(corpus)
    utts = [u for s in sessions for u in s.utterances]
    counts = collections.Counter(l for u in utts for l in u.labels or [])
    assert set(counts) <= set(SCHEMA.label_ids)
    low = {l: counts[l] for l in SCHEMA.label_ids if counts[l] < 120}
    assert not low, f"labels under 120 occurrences: {low}"
    # near real base rates: the share of authored utterances (coded lines) that carry a label
    share = sum(1 for u in utts if u.labels) / sum(authored_count(s) for s in sessions)
    assert 0.08 <= share <= 0.18
    no_rupture = [
        s for s in sessions if not any(SCHEMA.category_of(l) != "repair" for u in s.utterances for l in u.labels or [])
    ]
    assert len(no_rupture) >= 0.15 * len(sessions)
    # labels sit on the speaker the schema says
    for u in utts:
        for l in u.labels or []:
            assert SCHEMA.label(l).speaker in ("any", u.speaker), (u.id, l)


def test_hard_negatives_are_unlabelled_and_in_every_new_collection(corpus):
    sessions = all_sessions(corpus)
    hn = collections.Counter()
    for s in sessions:
        for u in s.utterances:
            for h in u.extra.get("hard_negative") or []:
                hn[(s.meta["collection"], h)] += 1
                if not u.labels:
                    continue
                # a unit holding a labelled line and a hard-negative line is the only exception
                assert len(u.extra["source_ids"]) > 1, u.id
    for kind in ("whole_session", "health_counselling"):
        classes = {h for k, h in hn if k == kind}
        assert {
            "reflection",
            "information",
            "sustain_talk",
            "problem_talk",
            "third_party_complaint",
            "brief_answer",
            "tiredness",
        } <= classes, kind
    readme = (ROOT / "corpora" / "README.md").read_text()
    for h in ("sustain_talk", "third_party_complaint", "brief_answer", "reflection"):
        assert h in readme


def test_times_are_plausible(corpus):
    for s in all_sessions(corpus):
        prev = -1.0
        for u in s.utterances:
            assert u.start is not None and u.end is not None and u.end > u.start >= prev
            prev = u.start


def _words(text):
    return re.findall(r"[a-z0-9']+", text.lower())


def test_no_template_text(corpus):
    c = collections.Counter(
        " ".join(_words(u.text)) for s in all_sessions(corpus) for u in s.utterances if len(_words(u.text)) > 6
    )
    repeated = {t: n for t, n in c.items() if n > 2}
    assert not repeated


def test_no_near_duplicate_sessions(corpus):
    def shingles(s):
        w = [x for u in s.utterances for x in _words(u.text)]
        return {tuple(w[i : i + 4]) for i in range(len(w) - 3)}

    sh = {s.session_id: shingles(s) for s in all_sessions(corpus)}
    worst = max(((len(a & b) / len(a | b)), i, j) for (i, a), (j, b) in itertools.combinations(sh.items(), 2))
    assert worst[0] < 0.2, f"near-duplicate sessions: {worst}"


def test_split_is_by_session_stratified_and_documented(corpus):
    n = {p: len(corpus[p]) for p in PARTS}
    total = sum(n.values())
    assert 0.62 <= n["train"] / total <= 0.78
    assert 0.10 <= n["dev"] / total <= 0.20 and 0.10 <= n["test"] / total <= 0.20
    for p in PARTS:
        labs = collections.Counter(l for s in corpus[p] for u in s.utterances for l in u.labels or [])
        assert set(labs) == set(SCHEMA.label_ids), f"{p} lacks {set(SCHEMA.label_ids) - set(labs)}"
        if p != "train":
            assert min(labs.values()) >= 15, f"{p}: {labs.most_common()[-3:]}"
            kinds = collections.Counter(s.meta["collection"] for s in corpus[p])
            assert kinds["whole_session"] >= 2 and kinds["health_counselling"] >= 2, kinds
        assert all(s.meta["split"] == p for s in corpus[p])
    splits = json.loads((ROOT / "corpora" / "splits.json").read_text())
    assert splits == {s.session_id: p for p in PARTS for s in corpus[p]}
    # the datasheet's label table (units carrying each label, per split) is the corpus's
    readme = (ROOT / "corpora" / "README.md").read_text()
    head = "| label | train | dev | test | total |"
    assert head in readme, "corpora/README.md has no label table"
    rows = readme[readme.index(head) :].split("\n\n", 1)[0]
    table = {}
    for row in re.findall(r"^\| (`[^`]+`|\*\*[a-z ]+\*\*) \|(.+)\|$", rows, re.M):
        table[row[0].strip("`*")] = [int(c.strip().replace(",", "")) for c in row[1].split("|")]
    want = {
        l: [sum(l in (u.labels or []) for s in corpus[p] for u in s.utterances) for p in PARTS]
        for l in SCHEMA.label_ids
    }
    want["units"] = [sum(len(s.utterances) for s in corpus[p]) for p in PARTS]
    want["labelled units"] = [sum(bool(u.labels) for s in corpus[p] for u in s.utterances) for p in PARTS]
    want["sessions"] = [n[p] for p in PARTS]
    assert table == {k: [*v, sum(v)] for k, v in want.items()}, "corpora/README.md's label table is stale"


@pytest.mark.slow
def test_committed_corpus_is_what_the_sources_build(tmp_path):
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_corpus.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    for f in FILES + [ROOT / "corpora" / "splits.json"]:
        assert (tmp_path / f.name).read_bytes() == f.read_bytes(), f"{f.name} is stale: rebuild the corpus"
    for name in ("coder1.jsonl", "coder2.jsonl"):
        built, committed = tmp_path / "agreement" / name, ROOT / "corpora" / "agreement" / name
        assert built.read_bytes() == committed.read_bytes(), f"{name} is stale: rebuild the corpus"
    for f in (tmp_path / "examples").iterdir():
        assert f.read_bytes() == (ROOT / "corpora" / "examples" / f.name).read_bytes()


def test_raw_examples_in_every_format():
    ex = sorted(p.name for p in (ROOT / "corpora" / "examples").iterdir())
    for suffix in (".txt", ".timestamped.txt", ".csv", ".vtt", ".srt"):
        assert any(n.endswith(suffix) for n in ex), suffix
    for p in (ROOT / "corpora" / "examples").iterdir():
        assert "||" not in p.read_text() and "withdrawal/" not in p.read_text()


def test_corpus_stats_command_over_the_whole_corpus(tmp_path):
    r = CliRunner().invoke(app, ["corpus", "stats", *map(str, FILES)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "withdrawal/denial" in r.output and "train" in r.output and "test" in r.output
    # the parts of the corpus: collections in their aligned form, with session lengths
    rows = {line.split("│")[1].strip(): line for line in r.output.splitlines() if line.count("│") > 5}
    assert "whole_session (segmenter)" in rows and "health_counselling (segmenter)" in rows
    assert "32" in rows["whole_session (segmenter)"] and "13077" in rows["whole_session (segmenter)"]
    r = CliRunner().invoke(
        app,
        [
            "corpus",
            "stats",
            str(ROOT / "corpora" / "asr" / "test.jsonl"),
            str(ROOT / "corpora" / "agreement" / "coder2.jsonl"),
        ],
        terminal_width=200,
    )
    assert r.exit_code == 0, r.output
    assert "whole_session (asr)" in r.output and "stretch (authored, coder 2)" in r.output
    bad = tmp_path / "bad.jsonl"
    s = json.loads(FILES[1].read_text().splitlines()[0])
    s["utterances"][0]["labels"] = ["withdrawal/sulking"]
    bad.write_text(json.dumps(s) + "\n")
    r = CliRunner().invoke(app, ["corpus", "stats", str(bad)])
    assert r.exit_code == 1 and "withdrawal/sulking" in r.output
