"""Inference backends: the OpenVINO backend gives the torch backend's scores and labels, through
the Python API and ``rupture tag --backend``; bad choices are one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_helpers import data_dir
from rupture_nlp.errors import RuptureError
from rupture_nlp.model import RuptureClassifier
from rupture_nlp.model.backends import BACKENDS, ExportedNet
from rupture_nlp.records import read_sessions


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
    assert BACKENDS == ("torch", "openvino")
    with pytest.raises(RuptureError, match="backend must be one of"):
        RuptureClassifier.from_pretrained(tiny_model("session"), backend="tensorrt")
    with pytest.raises(RuptureError, match="float32"):
        RuptureClassifier.from_pretrained(tiny_model("session"), backend="openvino", quantize="int8")
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if it were not installed
    clf = RuptureClassifier.from_pretrained(tiny_model("session"), backend="openvino")
    with pytest.raises(RuptureError, match="needs the openvino package"):
        clf.predict_proba(list(read_sessions(data_dir(tiny_model("session")) / "dev.jsonl")))


def test_cli_tag_with_the_openvino_backend_writes_the_torch_labels(tiny_model, tmp_path):
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
    r = subprocess.run(
        [rupture, "tag", str(src), "--model", str(d), "--out", str(tmp_path / "x.jsonl"), "--backend", "cuda"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr and "--backend" in r.stderr
