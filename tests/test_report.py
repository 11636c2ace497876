"""Reports: segments, episodes, tables and the HTML pages (rendered in headless Chromium)."""

from __future__ import annotations

import csv
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from rupture_nlp.cli import app
from rupture_nlp.records import Session, Utterance, write_sessions
from rupture_nlp.report import build_report, find_episodes, segment_index
from rupture_nlp.schema import load_schema

SCHEMA = load_schema()
CODES = {
    "W": "withdrawal/minimal_response",
    "D": "withdrawal/denial",
    "X": "confrontation/complaint_therapist",
    "R": "repair/invite_discussion",
    "V": "repair/validate_defense",
}


def make_session(codes: str, times: list[float] | None = None, sid: str = "s1", scores=None) -> Session:
    """One utterance per character: '.' unlabelled, letters from CODES. Client speaks marker lines,
    the therapist repair lines, and they alternate otherwise."""
    utts = []
    for i, c in enumerate(codes):
        label = CODES.get(c)
        spk = "therapist" if c in "RV" else "client" if c in "WDX" else ("therapist" if i % 2 == 0 else "client")
        start = times[i] if times else None
        utts.append(
            Utterance(
                id=f"{sid}-u{i + 1:04d}",
                turn=i,
                speaker=spk,
                text=f"utterance {i}",
                start=start,
                end=None if start is None else start + 2.0,
                labels=[label] if label else [],
                scores=(scores[i] if scores else None),
            )
        )
    return Session(session_id=sid, utterances=utts, meta={"therapist": "t9", "session_number": 4})


def test_segments_at_boundaries():
    s = make_session("......", times=[0.0, 299.9, 300.0, 599.99, 600.0, 1250.0])
    assert segment_index(s, 5) == [0, 0, 1, 1, 2, 4]
    s.utterances[3].start = None
    assert segment_index(s, 5) == [0, 0, 1, 1, 2, 4]
    s.utterances[2].start = None
    assert segment_index(s, 5) == [0, 0, 0, 0, 2, 4]
    assert segment_index(s, 10) == [0, 0, 0, 0, 1, 2]
    untimed = make_session("." * 7)
    assert segment_index(untimed, 5, segment_utterances=3) == [0, 0, 0, 1, 1, 1, 2]


def outcomes(codes, window=5):
    s = make_session(codes)
    return [(e.markers, e.repairs, e.outcome) for e in find_episodes(s, SCHEMA, window)]


def test_episode_resolved():
    assert outcomes(".W.R......") == [([1], [3], "resolved")]


def test_episode_no_repair_and_run_of_markers():
    assert outcomes(".W.D......") == [([1, 3], [], "no_repair")]
    # the gap from 3 to 9 is longer than the window: two episodes
    assert outcomes(".W.D.....W") == [([1, 3], [], "no_repair"), ([9], [], "no_repair")]
    # a repair too late (6 after the last marker) does not count
    assert outcomes(".W......R.") == [([1], [], "no_repair")]


def test_episode_unresolved_then_next_episode():
    assert outcomes(".W.R.W.....") == [([1], [3], "unresolved"), ([5], [], "no_repair")]


def test_overlapping_episodes_and_repair_sequences():
    # repair at 2, a confrontation at 4 inside the follow-up window -> unresolved; it opens episode 2,
    # repaired by 6 and 7 (one repair sequence), then calm -> resolved
    assert outcomes(".WR.X.RV......") == [([1], [2], "unresolved"), ([4], [6, 7], "resolved")]
    # with a window of 1 the confrontation comes too late to undo the first repair
    assert outcomes(".WR.X.RV......", window=1) == [([1], [2], "resolved"), ([4], [], "no_repair")]


def test_tables_on_a_small_known_session(tmp_path):
    # 12 utterances, 30 s apart: session spans 0..332 s (5.533 min)
    times = [30.0 * i for i in range(12)]
    sc = [None] * 12
    sc[1] = {"withdrawal/minimal_response": 0.91, "repair/invite_discussion": 0.02}
    sc[10] = {"confrontation/complaint_therapist": 0.77}
    s = make_session(".W.R......X.", times=times, scores=sc)
    res = build_report([s], tmp_path, schema=SCHEMA, repair_window=3)
    assert res.n_sessions == 1 and res.n_episodes == 2
    rows = list(csv.DictReader(open(tmp_path / "sessions.csv")))
    assert len(rows) == 1
    r = rows[0]
    assert r["meta_therapist"] == "t9" and r["meta_session_number"] == "4"
    assert r["n_utterances"] == "12" and float(r["duration_min"]) == pytest.approx(332 / 60, abs=0.01)
    assert (r["n_withdrawal"], r["n_confrontation"], r["n_repair"]) == ("1", "1", "1")
    assert float(r["rate10_withdrawal"]) == pytest.approx(10 / (332 / 60), abs=1e-3)
    assert r["n_withdrawal/minimal_response"] == "1" and r["n_withdrawal/denial"] == "0"
    assert (r["n_episodes"], r["n_resolved"], r["n_no_repair"], r["share_resolved"]) == ("2", "1", "1", "0.5")
    assert r["therapist_repair_utterances"] == "1"
    assert r["first_rupture_s"] == "30.0" and r["first_rupture_utterance"] == "s1-u0002"
    segs = list(csv.DictReader(open(tmp_path / "segments.csv")))
    assert [x["segment"] for x in segs] == ["0", "1"]
    assert [x["n_utterances"] for x in segs] == ["10", "2"]  # 0..270 s, then 300 and 330 s
    assert segs[0]["max_score"] == "0.91" and segs[0]["max_score_withdrawal"] == "0.91"
    assert segs[0]["max_score_repair"] == "0.02" and segs[1]["max_score_confrontation"] == "0.77"
    assert (segs[1]["n_confrontation"], segs[1]["first_utterance"]) == ("1", "s1-u0011")
    eps = list(csv.DictReader(open(tmp_path / "episodes.csv")))
    assert eps[0]["outcome"] == "resolved" and eps[0]["repair_utterance"] == "s1-u0004"
    assert eps[0]["utterances_to_repair"] == "2" and float(eps[0]["seconds_to_repair"]) == 60.0
    assert eps[1]["kind"] == "confrontation" and eps[1]["outcome"] == "no_repair" and eps[1]["repairs"] == ""
    assert "share_resolved" in (tmp_path / "README.txt").read_text()


def _report_dir(tmp_path):
    s1 = make_session(
        ".W.R....X.RV...D....",
        times=[40.0 * i for i in range(20)],
        sid="alpha",
        scores=[{"withdrawal/minimal_response": 0.1 * (i % 10)} for i in range(20)],
    )
    s2 = make_session("....", sid="beta")
    p = tmp_path / "tagged.jsonl"
    write_sessions(p, [s1, s2])
    out = tmp_path / "report"
    r = CliRunner().invoke(app, ["report", str(p), "--out", str(out), "--segment-minutes", "5"])
    assert r.exit_code == 0, r.output
    return out


def test_html_pages_are_static_and_complete(tmp_path):
    out = _report_dir(tmp_path)
    index = (out / "index.html").read_text()
    assert 'href="sessions/alpha.html"' in index and "Corpus summary" in index
    page = (out / "sessions" / "alpha.html").read_text()
    assert "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert 'class="withdrawal"' in page and 'title="withdrawal/minimal_response 0.10"' in page
    assert "No rupture episodes." in (out / "sessions" / "beta.html").read_text()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_html_renders_in_headless_chromium(tmp_path):
    from PIL import Image, ImageStat

    out = _report_dir(tmp_path)
    for name in ("index.html", "sessions/alpha.html"):
        shot = tmp_path / (name.replace("/", "_") + ".png")
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--window-size=1200,1600",
                f"--screenshot={shot}",
                (out / name).resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        img = Image.open(shot).convert("L")
        stat = ImageStat.Stat(img)
        assert img.size == (1200, 1600)
        assert stat.stddev[0] > 10, f"{name} rendered blank"
        dark = sum(img.histogram()[:128])
        assert dark > 2000, f"{name} shows almost no text"
