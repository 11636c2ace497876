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


def test_size_and_session_lengths(corpus):
    sessions = all_sessions(corpus)
    assert len(sessions) >= 120
    assert sum(len(s.utterances) for s in sessions) >= 9000
    assert all(50 <= len(s.utterances) <= 110 for s in sessions)
    assert len({s.session_id for s in sessions}) == len(sessions)


def test_label_coverage_and_rates(corpus):
    sessions = all_sessions(corpus)
    utts = [u for s in sessions for u in s.utterances]
    counts = collections.Counter(l for u in utts for l in u.labels or [])
    assert set(counts) <= set(SCHEMA.label_ids)
    low = {l: counts[l] for l in SCHEMA.label_ids if counts[l] < 60}
    assert not low, f"labels under 60 occurrences: {low}"
    share = sum(1 for u in utts if u.labels) / len(utts)
    assert 0.12 <= share <= 0.22
    no_rupture = [s for s in sessions if not any(
        SCHEMA.category_of(l) != "repair" for u in s.utterances for l in u.labels or [])]
    assert len(no_rupture) >= 0.15 * len(sessions)
    # labels sit on the speaker the schema says
    for u in utts:
        for l in u.labels or []:
            assert SCHEMA.label(l).speaker in ("any", u.speaker), (u.id, l)


def test_times_are_plausible(corpus):
    for s in all_sessions(corpus):
        prev = -1.0
        for u in s.utterances:
            assert u.start is not None and u.end is not None and u.end > u.start >= prev
            prev = u.start


def _words(text):
    return re.findall(r"[a-z0-9']+", text.lower())


def test_no_template_text(corpus):
    c = collections.Counter(" ".join(_words(u.text)) for s in all_sessions(corpus) for u in s.utterances
                            if len(_words(u.text)) > 6)
    repeated = {t: n for t, n in c.items() if n > 2}
    assert not repeated


def test_no_near_duplicate_sessions(corpus):
    def shingles(s):
        w = [x for u in s.utterances for x in _words(u.text)]
        return {tuple(w[i:i + 4]) for i in range(len(w) - 3)}
    sh = {s.session_id: shingles(s) for s in all_sessions(corpus)}
    worst = max(((len(a & b) / len(a | b)), i, j) for (i, a), (j, b) in itertools.combinations(sh.items(), 2))
    assert worst[0] < 0.2, f"near-duplicate sessions: {worst}"


def test_split_is_by_session_stratified_and_documented(corpus):
    n = {p: len(corpus[p]) for p in PARTS}
    total = sum(n.values())
    assert 0.62 <= n["train"] / total <= 0.78
    assert 0.10 <= n["dev"] / total <= 0.20 and 0.10 <= n["test"] / total <= 0.20
    for p in PARTS:
        labs = {l for s in corpus[p] for u in s.utterances for l in u.labels or []}
        assert labs == set(SCHEMA.label_ids), f"{p} lacks {set(SCHEMA.label_ids) - labs}"
        assert all(s.meta["split"] == p for s in corpus[p])
    splits = json.loads((ROOT / "corpora" / "splits.json").read_text())
    assert splits == {s.session_id: p for p in PARTS for s in corpus[p]}
    readme = (ROOT / "corpora" / "README.md").read_text()
    for word in ("synthetic", "train", "dev", "test", "split"):
        assert word in readme.lower()


def test_committed_corpus_is_what_the_sources_build(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_corpus.py"), "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for f in FILES + [ROOT / "corpora" / "splits.json"]:
        assert (tmp_path / f.name).read_bytes() == f.read_bytes(), f"{f.name} is stale: rebuild the corpus"
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
    bad = tmp_path / "bad.jsonl"
    s = json.loads(FILES[1].read_text().splitlines()[0])
    s["utterances"][0]["labels"] = ["withdrawal/sulking"]
    bad.write_text(json.dumps(s) + "\n")
    r = CliRunner().invoke(app, ["corpus", "stats", str(bad)])
    assert r.exit_code == 1 and "withdrawal/sulking" in r.output
