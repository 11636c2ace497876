"""Two-coder agreement (`rupture corpus agreement`): hand-computed values, errors, bootstrap, CLI."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rupture_nlp.corpus.agreement import agreement_files, coder_agreement, fmt
from rupture_nlp.errors import RuptureError
from rupture_nlp.records import Session, Utterance, read_sessions, write_sessions
from rupture_nlp.schema import load_schema

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "corpora" / "dev.jsonl"
RUPTURE = str(Path(sys.executable).with_name("rupture"))
SCHEMA = load_schema()
W, R = "withdrawal/denial", "repair/invite_discussion"
N_BOOT = 40


def toy(sid: str, withdrawal: set[int], n: int = 5) -> Session:
    """A session of ``n`` client utterances: W on the indexes given, R on utterance 4."""
    return Session(
        sid,
        [
            Utterance(
                f"{sid}-u{i}",
                i,
                "client",
                f"said thing {i}",
                labels=([W] if i in withdrawal else []) + ([R] if i == 4 else []),
            )
            for i in range(n)
        ],
    )


# Coder A marks withdrawal on 1, 2, 3 utterances of sessions s1, s2, s3; coder B marks the same
# and one more in s3 (utterance 3). Both mark repair on utterance 4 of every session.
A_TOY = [toy("s1", {0}), toy("s2", {0, 1}), toy("s3", {0, 1, 2})]
B_TOY = [toy("s1", {0}), toy("s2", {0, 1}), toy("s3", {0, 1, 2, 3})]


def test_hand_computed_disagreement():
    r = coder_agreement(A_TOY, B_TOY, SCHEMA, n_boot=0)
    wd = r["categories"]["withdrawal"]
    # withdrawal over 15 utterances: both yes 6, B only 1, A only 0, both no 8.
    # p_o = 14/15; p_e = (6/15)(7/15) + (9/15)(8/15) = 114/225;
    # kappa = (210/225 - 114/225) / (111/225) = 96/111 = 32/37 = 0.86486...
    assert wd["kappa"] == pytest.approx(32 / 37)
    assert r["labels"][W]["kappa"] == pytest.approx(32 / 37)
    # Krippendorff (nominal, 2 coders, 15 units): coincidences o_11 = 12, o_00 = 16, o_01 = o_10 = 1;
    # n_1 = 13, n_0 = 17, n = 30; alpha = 1 - (n - 1)(o_01 + o_10) / (2 n_0 n_1) = 1 - 58/442 = 192/221
    assert wd["alpha"] == pytest.approx(192 / 221)
    assert wd["percent_agreement"] == pytest.approx(100 * 14 / 15)
    assert wd["positives"] == {"a": 6, "b": 7} and r["labels"][W]["positives"] == {"a": 6, "b": 7}
    # ICC(2,1) of per-session withdrawal counts A = [1, 2, 3], B = [1, 2, 4]: grand mean 13/6,
    # MSR = 2 * sum((row mean - 13/6)^2) / 2 = 19/6, MSC = 3 * sum((col mean - 13/6)^2) = 1/6,
    # SSE = SST - SSR - SSC = 41/6 - 38/6 - 1/6 = 1/3, MSE = 1/6;
    # ICC = (MSR - MSE) / (MSR + MSE + 2 (MSC - MSE) / 3) = 3 / (20/6) = 0.9
    assert wd["icc"] == pytest.approx(0.9) and wd["mean_count"] == pytest.approx({"a": 2.0, "b": 7 / 3})
    # overall: one nominal code per utterance = its category set (none / W / R here).
    # n_W = 13, n_R = 6, n_none = 11 (n = 30); disagreements o_(none,W) = o_(W,none) = 1;
    # alpha = 1 - (n - 1) * 2 / (n^2 - sum n_c^2) = 1 - 58 / (900 - 326) = 258/287
    assert r["overall"]["alpha"] == pytest.approx(258 / 287)
    assert r["overall"]["percent_agreement"] == pytest.approx(100 * 14 / 15)
    # repair: identical codes -> kappa 1; but every session has count 1 -> ICC undefined, not a crash
    rp = r["categories"]["repair"]
    assert rp["kappa"] == pytest.approx(1.0) and rp["alpha"] == pytest.approx(1.0)
    assert rp["icc"] is None and "no variance" in rp["icc_reason"]
    # nobody used confrontation or withdrawal/minimal_response: undefined, None
    cf = r["categories"]["confrontation"]
    assert cf["kappa"] is None and cf["alpha"] is None and cf["icc"] is None
    assert cf["positives"] == {"a": 0, "b": 0} and cf["percent_agreement"] == 100.0
    assert r["labels"]["withdrawal/minimal_response"]["kappa"] is None
    assert r["bootstrap"]["n"] == 0 and wd["kappa_ci95"] is None and wd["icc_ci95"] is None
    json.dumps(r, allow_nan=False)  # JSON-able, no NaN


def test_identical_coders_agree_perfectly():
    sessions = list(read_sessions(DEV))[:6]
    r = coder_agreement(sessions, sessions, SCHEMA, n_boot=0)
    for c, v in r["categories"].items():
        assert v["kappa"] == pytest.approx(1.0) and v["alpha"] == pytest.approx(1.0), c
        assert v["icc"] == pytest.approx(1.0) and v["percent_agreement"] == 100.0, c
    assert r["overall"]["alpha"] == pytest.approx(1.0) and r["overall"]["percent_agreement_labels"] == 100.0
    for l, v in r["labels"].items():
        assert v["kappa"] == (None if v["positives"]["a"] == 0 else pytest.approx(1.0)), l
    # the session order of B does not matter (matched by session_id)
    assert coder_agreement(sessions, sessions[::-1], SCHEMA, n_boot=0)["categories"] == r["categories"]


# --------------------------------------------------------------------------- errors
def _write(path: Path, sessions) -> Path:
    write_sessions(path, sessions)
    return path


@pytest.mark.parametrize(
    "change, expect",
    [
        (lambda s: s[2].utterances[3].__setattr__("id", "s3-uX"), "session 's3': utterance ids differ"),
        (lambda s: s[1].utterances.pop(), "session 's2': utterance ids differ"),
        (lambda s: s.pop(0), "session 's1' is missing"),
        (lambda s: s.append(toy("s4", set())), "session 's4' is missing"),
        (lambda s: s.append(toy("s1", set())), "session 's1' appears more than once"),
        (lambda s: s[0].utterances[1].__setattr__("labels", None), "utterance 's1-u1' is not coded"),
        (lambda s: s[0].utterances[1].__setattr__("labels", ["withdrawal/sulking"]), "'withdrawal/sulking' is not in"),
    ],
)
def test_mismatched_files_are_one_clear_error(tmp_path, change, expect):
    a = _write(tmp_path / "a.jsonl", A_TOY)
    changed = [Session.from_dict(s.to_dict()) for s in B_TOY]
    change(changed)
    b = _write(tmp_path / "b.jsonl", changed)
    with pytest.raises(RuptureError) as e:
        agreement_files(a, b, SCHEMA, n_boot=0)
    # the message names the session; the error names the file that differs (a missing session:
    # the file it is missing from)
    assert expect in e.value.message
    assert e.value.path == str(a if expect == "session 's4' is missing" else b)
    assert "\n" not in str(e.value) and "said thing" not in str(e.value)  # no transcript text


def test_cli_error_is_one_line_naming_the_file(tmp_path):
    a = _write(tmp_path / "a.jsonl", A_TOY)
    changed = [Session.from_dict(s.to_dict()) for s in B_TOY]
    changed[2].utterances[3].id = "s3-uX"
    b = _write(tmp_path / "b.jsonl", changed)
    r = run("corpus", "agreement", str(a), str(b), "--bootstrap", "0")
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert str(b) in lines[0] and "session 's3'" in lines[0] and "'s3-uX'" in lines[0]


# --------------------------------------------------------------------------- bootstrap and CLI
@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A = the first 8 dev sessions; B = the same with about 5% of the utterances recoded
    (labels dropped, or withdrawal/minimal_response added)."""
    tmp = tmp_path_factory.mktemp("agreement")
    sessions = list(read_sessions(DEV))[:8]
    rng = random.Random(5)
    flipped = [Session.from_dict(s.to_dict()) for s in sessions]
    for s in flipped:
        for u in s.utterances:
            if rng.random() < 0.05:
                u.labels = [] if u.labels else ["withdrawal/minimal_response"]
    a, b = _write(tmp / "a.jsonl", sessions), _write(tmp / "b.jsonl", flipped)
    return {"a": a, "b": b, "tmp": tmp, "result": agreement_files(a, b, SCHEMA, n_boot=N_BOOT, seed=13)}


def test_bootstrap_intervals_contain_the_estimate_and_are_reproducible(pair):
    r = pair["result"]
    assert r["bootstrap"] == {"n": N_BOOT, "seed": 13, "level": 0.95, "unit": "session"}
    checked = 0
    for c, v in r["categories"].items():
        for key in ("kappa", "alpha", "icc"):
            lo, hi = v[f"{key}_ci95"]
            assert lo <= v[key] <= hi, (c, key)
            assert v["n_defined"][key] == N_BOOT
            checked += 1
    lo, hi = r["overall"]["alpha_ci95"]
    assert lo <= r["overall"]["alpha"] <= hi and checked == 9
    # recoding withdrawal only: the other categories agree better than withdrawal
    kappa = {c: v["kappa"] for c, v in r["categories"].items()}
    assert kappa["withdrawal"] < min(kappa["confrontation"], kappa["repair"])
    # seed 14 draws other resamples: other intervals, same point estimates
    other = agreement_files(pair["a"], pair["b"], SCHEMA, n_boot=N_BOOT, seed=14)
    assert other["categories"]["withdrawal"]["kappa"] == r["categories"]["withdrawal"]["kappa"]
    assert [v["kappa_ci95"] for v in other["categories"].values()] != [
        v["kappa_ci95"] for v in r["categories"].values()
    ]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RUPTURE, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(Path.home()), "HF_HUB_OFFLINE": "1"},
    )


def test_cli_end_to_end(pair):
    out = pair["tmp"] / "res" / "agreement.json"
    r = run(
        "corpus",
        "agreement",
        str(pair["a"]),
        str(pair["b"]),
        "--json",
        str(out),
        "--bootstrap",
        str(N_BOOT),
        "--seed",
        "13",
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    # the same seed gives the same resamples: the CLI's JSON is the API's result, to the digit
    assert res == pair["result"]
    assert set(res) == {"files", "schema", "n_sessions", "n_utterances", "bootstrap", "categories", "overall", "labels"}
    assert res["n_sessions"] == 8 and set(res["categories"]) == {"withdrawal", "confrontation", "repair"}
    assert set(res["categories"]["withdrawal"]) == {
        "kappa",
        "kappa_ci95",
        "alpha",
        "alpha_ci95",
        "percent_agreement",
        "positives",
        "icc",
        "icc_ci95",
        "icc_ci95_f",
        "icc_reason",
        "mean_count",
        "n_defined",
    }
    assert set(res["overall"]) == {
        "alpha",
        "alpha_ci95",
        "alpha_definition",
        "percent_agreement",
        "percent_agreement_labels",
        "n_defined",
    }
    assert set(res["labels"]) == set(SCHEMA.label_ids)
    assert set(res["labels"][W]) == {"category", "kappa", "percent_agreement", "positives"}
    # the printed table rows carry the JSON's numbers
    rows = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if line.count("│") > 3}
    for c, v in res["categories"].items():
        row = rows[c]
        for key in ("kappa", "alpha", "icc"):
            assert fmt(v[key], v[f"{key}_ci95"]) in row, (c, key, row)
        assert f"{v['positives']['a']}/{v['positives']['b']}" in row
    assert fmt(res["overall"]["alpha"], res["overall"]["alpha_ci95"]) in rows["overall"]
    mr = res["labels"]["withdrawal/minimal_response"]
    assert mr["positives"]["b"] > mr["positives"]["a"]
    row = rows["withdrawal/minimal_response"]
    assert fmt(mr["kappa"]) in row and f"{mr['positives']['a']}/{mr['positives']['b']}" in row
    assert f"({N_BOOT} resamples, seed 13)" in r.stdout
    assert f"wrote {out}" in r.stderr
