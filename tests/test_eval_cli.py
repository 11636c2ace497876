"""`rupture evaluate` end to end on a model directory holding only baselines, and its errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eval_helpers import make_session, toy_schema, write_jsonl
from rupture_nlp.baselines import baseline_names
from rupture_nlp.errors import RuptureError
from rupture_nlp.report.evaluation import format_report
from rupture_nlp.workflow import evaluate_model_dir

RUPTURE = str(Path(sys.executable).with_name("rupture"))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RUPTURE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "160", "HOME": str(Path.home())},
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory, trained_baselines):
    t = trained_baselines
    tmp = tmp_path_factory.mktemp("cli")
    data = write_jsonl(tmp / "test.jsonl", t["test"])
    return {**t, "data": data, "tmp": tmp}


def test_evaluate_cli_end_to_end(setup):
    out = setup["tmp"] / "res" / "eval.json"
    r = run(
        "evaluate",
        "--model",
        str(setup["root"]),
        "--data",
        str(setup["data"]),
        "--json",
        str(out),
        "--bootstrap",
        "200",
        "--seed",
        "3",
    )
    assert r.returncode == 0, r.stderr
    assert "tfidf (baseline)" in r.stdout and "textcat (baseline)" in r.stdout
    assert "confrontation/complaint_activities" in r.stdout
    res = json.loads(out.read_text())
    assert {"fine", "coarse", "session_icc", "baselines"} <= set(res)
    assert res["fine"] is None and res["model"]["present"] is False  # no transformer in this dir
    assert list(res["baselines"]) == baseline_names()  # every registered one, in order
    assert res["data"]["sessions"] == 5 and res["bootstrap"] == {"n": 200, "seed": 3, "level": 0.95, "unit": "session"}
    # the CLI is a thin layer: same numbers as the Python API with the same seed
    api = evaluate_model_dir(setup["root"], setup["data"], n_boot=200, seed=3)
    for name in ("tfidf", "textcat"):
        assert res["baselines"][name]["fine"] == api["baselines"][name]["fine"]
        assert res["baselines"][name]["session_icc"] == api["baselines"][name]["session_icc"]
        assert res["baselines"][name]["fine"]["macro"]["f1"] >= 0.8
    assert [p.name for p in out.parent.iterdir()] == ["eval.json"]  # nothing half-written beside it
    md = format_report(api)
    assert (
        md.count("(baseline) |") == len(baseline_names()) and "percentile bootstrap over sessions (200 resamples" in md
    )


@pytest.mark.parametrize("case", ["missing_dir", "unknown_labels"])
def test_evaluate_cli_errors_are_one_line(setup, case, tmp_path):
    model, data = setup["root"], setup["data"]
    if case == "missing_dir":
        model, expect = tmp_path / "no-such-model", "model directory not found"
    elif case == "unknown_labels":
        data = write_jsonl(tmp_path / "odd.jsonl", [make_session("o1", [("C", "Hm.", ["withdrawal/sulking", "wd/x"])])])
        expect = "labels not in the model's schema '3rs': wd/x, withdrawal/sulking"
    r = run("evaluate", "--model", str(model), "--data", str(data), "--bootstrap", "0")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], r.stderr
    assert "Traceback" not in r.stderr and "Hm." not in r.stderr  # no transcript text


def test_evaluate_model_dir_errors(setup, tmp_path):
    model, data = setup["root"], setup["data"]
    with pytest.raises(RuptureError, match="not a rupture model directory"):
        evaluate_model_dir(tmp_path, data)
    with pytest.raises(RuptureError, match="not a directory"):
        evaluate_model_dir(data, data)
    with pytest.raises(RuptureError, match="data file not found"):
        evaluate_model_dir(model, tmp_path / "none.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(RuptureError, match="no sessions"):
        evaluate_model_dir(model, empty)
    unlabelled = write_jsonl(tmp_path / "raw.jsonl", [make_session("r1", [("C", "Hello.", None)])])
    with pytest.raises(RuptureError, match="no gold labels"):
        evaluate_model_dir(model, unlabelled)
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"session_id": "x", "utterances": [}\n')
    with pytest.raises(RuptureError, match="invalid JSON") as e:
        evaluate_model_dir(model, bad_json)
    assert e.value.line == 1
    toy = tmp_path / "toy.yaml"
    toy_schema().save(toy)
    with pytest.raises(RuptureError, match="does not match the label schema"):
        evaluate_model_dir(model, data, schema=toy)
    broken = tmp_path / "broken"
    shutil.copytree(model / "baselines", broken / "baselines")
    (broken / "baselines" / "textcat" / "config.json").write_text("[1, 2")
    with pytest.raises(RuptureError, match="corrupt baseline config.json"):
        evaluate_model_dir(broken, data)
    half = tmp_path / "half"
    shutil.copytree(model / "baselines", half / "baselines")
    (half / "config.json").write_text("{}")
    with pytest.raises(RuptureError, match="lacks schema.yaml"):
        evaluate_model_dir(half, data)


DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "rupture-3rs-minilm"


@pytest.mark.skipif(not (DEFAULT_MODEL / "config.json").is_file(), reason="the default model is not committed yet")
def test_evaluate_model_dir_with_the_committed_transformer(setup):
    small = setup["test"][:2]
    data = write_jsonl(setup["tmp"] / "small.jsonl", small)
    res = evaluate_model_dir(DEFAULT_MODEL, data, n_boot=100, seed=1)
    assert res["model"]["present"] and res["model"]["model_version"]
    assert res["fine"]["micro"]["f1"] is not None and set(res["session_icc"]) == {
        "withdrawal",
        "confrontation",
        "repair",
    }
    assert set(res["baselines"]) == {"tfidf", "textcat"}
    for b in res["baselines"].values():
        lo, hi = b["vs_model"]["fine_macro_f1_diff_ci"]
        assert -1 <= lo <= hi <= 1
    md = format_report(res)
    assert md.splitlines()[2].startswith(f"| {res['model']['model_version']} |")
    assert "paired bootstrap" in md
