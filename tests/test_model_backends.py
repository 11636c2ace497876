"""Inference backends: the OpenVINO backend gives the torch backend's scores and labels, through
the Python API and ``rupture tag --backend``; the OpenVINO int8 backend really runs int8, is
calibrated on the package's own text only, gives the same scores on every load and keeps the
default model's labels; bad choices are one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_helpers import data_dir
from rupture_nlp.errors import RuptureError
from rupture_nlp.model import RuptureClassifier
from rupture_nlp.model.backends import BACKENDS, CALIBRATION_PATH, CALIBRATION_SIZE, ExportedNet, calibration_inputs
from rupture_nlp.records import read_sessions
from rupture_nlp.resources import default_model_dir

ROOT = Path(__file__).resolve().parents[1]


def _runtime_precisions(clf: RuptureClassifier) -> set[str]:
    """The element types the compiled OpenVINO network really computes in."""
    rm = clf._inference_net().compiled.get_runtime_model()
    return {str(op.get_rt_info()["runtimePrecision"].astype(str)) for op in rm.get_ordered_ops()} - {"dynamic"}


@pytest.mark.parametrize("kind", ["session", "lora"])  # the session model's encoder; a cross model's whole net
def test_openvino_backend_gives_the_torch_scores(tiny_model, kind):
    d = tiny_model(kind)
    dev = list(read_sessions(data_dir(d) / "dev.jsonl"))
    torch_clf = RuptureClassifier.from_pretrained(d)
    ov_clf = RuptureClassifier.from_pretrained(d, backend="openvino")
    assert ov_clf.backend == "openvino" and torch_clf.backend == "torch"
    P_torch, P_ov = torch_clf.predict_proba(dev), ov_clf.predict_proba(dev)
    assert isinstance(ov_clf._inference_net(), ExportedNet)  # really not torch
    assert P_ov.shape == P_torch.shape and P_ov.dtype == np.float32
    np.testing.assert_allclose(P_ov, P_torch, atol=1e-4)
    assert ov_clf.model_version == torch_clf.model_version  # the same model, run another way
    labels = lambda c: [u.labels for s in c.predict(dev) for u in s.utterances]  # noqa: E731 - two uses below
    assert labels(ov_clf) == labels(torch_clf)


def test_backend_choices_are_checked(tiny_model, monkeypatch):
    assert BACKENDS == ("torch", "openvino", "openvino-int8")
    with pytest.raises(RuptureError, match="backend must be one of"):
        RuptureClassifier.from_pretrained(tiny_model("session"), backend="tensorrt")
    for backend in ("openvino", "openvino-int8"):
        with pytest.raises(RuptureError, match="quantises its own way"):
            RuptureClassifier.from_pretrained(tiny_model("session"), backend=backend, quantize="int8")
    dev = list(read_sessions(data_dir(tiny_model("session")) / "dev.jsonl"))
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(RuptureError, match="needs the nncf package"):
        RuptureClassifier.from_pretrained(tiny_model("session"), backend="openvino-int8").predict_proba(dev)
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if it were not installed
    clf = RuptureClassifier.from_pretrained(tiny_model("session"), backend="openvino")
    with pytest.raises(RuptureError, match="needs the openvino package"):
        clf.predict_proba(list(read_sessions(data_dir(tiny_model("session")) / "dev.jsonl")))


def test_cli_tag_with_the_openvino_backends(tiny_model, tmp_path):
    """--backend openvino writes torch's labels; openvino-int8 tags every utterance and prints
    nothing of NNCF's (progress bars, logs); an unknown backend is a one-line error."""
    d = tiny_model("session")
    src = data_dir(d) / "dev.jsonl"
    rupture = str(Path(sys.executable).with_name("rupture"))
    outs = {}
    for backend in ("torch", "openvino"):
        out = tmp_path / f"{backend}.jsonl"
        r = subprocess.run(
            [rupture, "tag", str(src), "--model", str(d), "--out", str(out), "--backend", backend],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        outs[backend] = [[u.labels for u in s.utterances] for s in read_sessions(out)]
    assert outs["openvino"] == outs["torch"] and sum(map(len, outs["torch"])) > 0
    out = tmp_path / "int8.jsonl"
    r = subprocess.run(
        [rupture, "tag", str(src), "--model", str(d), "--out", str(out), "--backend", "openvino-int8"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "Statistics collection" not in r.stdout + r.stderr and "nncf" not in (r.stdout + r.stderr).lower()
    assert [len(s.utterances) for s in read_sessions(out)] == list(map(len, outs["torch"]))
    r = subprocess.run(
        [rupture, "tag", str(src), "--model", str(d), "--out", str(tmp_path / "x.jsonl"), "--backend", "cuda"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr and "--backend" in r.stderr


def test_calibration_text_is_the_packages_own_train_split_text():
    """openvino-int8 is calibrated on project-written train-split stretches: no dev/test session
    (the benchmark scores dev), no labels, clean and ASR-style halves."""
    import json

    sessions = list(read_sessions(CALIBRATION_PATH))
    splits = json.loads((ROOT / "corpora" / "splits.json").read_text())
    train = {json.loads(line)["session_id"] for line in open(ROOT / "corpora" / "train.jsonl")}
    sources = [s.meta["source"] for s in sessions]
    assert set(sources) <= train and all(splits[s] == "train" for s in sources)
    assert sum(len(s.utterances) for s in sessions) == CALIBRATION_SIZE
    assert all(not u.labels for s in sessions for u in s.utterances)
    texts = [u.text for s in sessions for u in s.utterances]
    corpus = lambda p: {u.text for s in read_sessions(p) for u in s.utterances}  # noqa: E731 - two uses below
    clean, asr = corpus(ROOT / "corpora" / "train.jsonl"), corpus(ROOT / "corpora" / "asr" / "train.jsonl")
    assert all(t in clean or t in asr for t in texts)  # nothing but the corpus's text
    assert sum(t in clean for t in texts) >= 100 and sum(t in asr and t not in clean for t in texts) >= 100


@pytest.mark.parametrize("kind", ["session", "lora"])
def test_calibration_inputs_are_the_models_own_inputs(tiny_model, kind):
    clf = RuptureClassifier.from_pretrained(tiny_model(kind))
    items = calibration_inputs(clf)
    assert len(items) == CALIBRATION_SIZE
    n_inputs = 3 if clf.config.arch == "session" else 4  # ids, mask, types (+ pause for a cross model)
    assert {len(i) for i in items} == {n_inputs}
    for ids, mask, types, *pause in items[:20]:
        assert ids.shape[0] == 1 and ids.shape == mask.shape == types.shape and mask.all()
        assert ids.shape[1] <= clf.config.input.max_length and ids[0, 0] == clf.tokenizer.cls_token_id
    assert len({i[0].tobytes() for i in items}) > CALIBRATION_SIZE * 0.9  # different utterances


def test_openvino_int8_backend_runs_int8_and_keeps_the_default_models_labels(monkeypatch, tmp_path):
    """The committed model under openvino-int8: int8 arithmetic really happens (float32 OpenVINO
    has none); the quantised network is saved in the cache (a private folder) and read from it on
    the next load, with the same scores (to float rounding) as quantising again without a cache (the
    calibration is fixed); the labels of three dev sessions stay those of torch for at least 97% of utterances."""
    model = default_model_dir()
    dev = list(read_sessions(ROOT / "corpora" / "dev.jsonl"))[:3]
    monkeypatch.setenv("RUPTURE_CACHE", str(tmp_path / "cache"))
    torch_clf = RuptureClassifier.from_pretrained(model)
    f32 = RuptureClassifier.from_pretrained(model, backend="openvino")
    q1 = RuptureClassifier.from_pretrained(model, backend="openvino-int8")
    assert "i8" in _runtime_precisions(q1) and "i8" not in _runtime_precisions(f32)
    (entry,) = (tmp_path / "cache").iterdir()
    assert not q1._inference_net().from_cache and (entry / "model.xml").is_file() and (entry / "model.bin").is_file()
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    q2 = RuptureClassifier.from_pretrained(model, backend="openvino-int8")
    assert q2._inference_net().from_cache and "i8" in _runtime_precisions(q2)
    monkeypatch.setenv("RUPTURE_CACHE", "off")
    q3 = RuptureClassifier.from_pretrained(model, backend="openvino-int8")
    assert not q3._inference_net().from_cache
    P, Q1, Q2, Q3 = (c.predict_proba(dev) for c in (torch_clf, q1, q2, q3))
    # the same quantised network: reading it back from disk reorders float sums, nothing more
    np.testing.assert_allclose(Q1, Q2, rtol=0, atol=1e-5)
    np.testing.assert_allclose(Q1, Q3, rtol=0, atol=1e-5)
    assert 0 < np.abs(Q1 - P).mean() < 0.01  # moved, a little
    labels = lambda c: [u.labels for s in c.predict(dev) for u in s.utterances]  # noqa: E731 - two uses below
    same = np.mean([a == b for a, b in zip(labels(torch_clf), labels(q1))])
    assert same >= 0.97, same
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [entry.name]  # no temporary folder left


def test_a_damaged_cache_entry_is_converted_again_and_replaced(tiny_model, monkeypatch, tmp_path):
    d = tiny_model("session")
    dev = list(read_sessions(data_dir(d) / "dev.jsonl"))
    monkeypatch.setenv("RUPTURE_CACHE", str(tmp_path))
    good = RuptureClassifier.from_pretrained(d, backend="openvino-int8")
    P = good.predict_proba(dev)
    (entry,) = tmp_path.iterdir()
    (entry / "model.xml").write_text("<net>cut off")
    again = RuptureClassifier.from_pretrained(d, backend="openvino-int8")
    assert not again._inference_net().from_cache
    np.testing.assert_allclose(again.predict_proba(dev), P, rtol=0, atol=1e-5)
    assert RuptureClassifier.from_pretrained(d, backend="openvino-int8")._inference_net().from_cache
    assert [p.name for p in tmp_path.iterdir()] == [entry.name]
    (tmp_path / "blocker").write_text("")  # a cache that cannot be written: tagging goes on without it
    monkeypatch.setenv("RUPTURE_CACHE", str(tmp_path / "blocker" / "cache"))
    np.testing.assert_array_equal(RuptureClassifier.from_pretrained(d, backend="openvino-int8").predict_proba(dev), P)


def test_evaluate_scores_a_backend(tiny_model, tmp_path):
    """`rupture evaluate --backend` scores the labels that backend gives: OpenVINO float32 the same
    numbers as torch, the result saying which backend ran."""
    import json

    d = tiny_model("session")
    rupture = str(Path(sys.executable).with_name("rupture"))
    res = {}
    for backend in ("torch", "openvino"):
        out = tmp_path / f"{backend}.json"
        r = subprocess.run(
            [rupture, "evaluate", "--model", str(d), "--data", str(data_dir(d) / "dev.jsonl")]
            + ["--backend", backend, "--bootstrap", "0", "--json", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        res[backend] = json.loads(out.read_text())
    assert res["openvino"]["model"]["backend"] == "openvino" and res["torch"]["model"]["backend"] == "torch"
    for level in ("fine", "coarse"):
        assert res["openvino"][level]["macro"] == res["torch"][level]["macro"]
    assert res["openvino"]["session_icc"] == res["torch"]["session_icc"]
