"""Fixed choices of the CLI are Enums: typer lists them in --help and refuses others before any work."""

from __future__ import annotations

from typer.testing import CliRunner

from rupture_nlp.cli import app
from rupture_nlp.cli.app import Engine, Policy, Pooling, PushOrder, Weights
from rupture_nlp.engines import ENGINES
from rupture_nlp.labelstudio.pull import POLICIES
from rupture_nlp.model.classifier import WEIGHT_MODES


def test_choices_match_the_library_and_bad_values_are_usage_errors(tmp_path):
    assert {w.value for w in Weights} == set(WEIGHT_MODES)
    assert {p.value for p in Policy} == set(POLICIES)
    assert {e.value for e in Engine} == set(ENGINES)
    assert {p.value for p in Pooling} == {"mean", "cls"} and {o.value for o in PushOrder} == {"session", "uncertainty"}
    missing = str(tmp_path / "none.jsonl")
    for args, option in (
        (
            ["train", "--train", missing, "--dev", missing, "--out", str(tmp_path / "m"), "--weights", "half"],
            "--weights",
        ),
        (
            ["train", "--train", missing, "--dev", missing, "--out", str(tmp_path / "m"), "--pooling", "max"],
            "--pooling",
        ),
        (["ls", "push", missing, "--project", "p", "--order", "random"], "--order"),
        (["ls", "pull", "--project", "p", "--out", str(tmp_path / "o.jsonl"), "--policy", "any"], "--policy"),
        (["tag", missing, "--out", str(tmp_path / "o.jsonl"), "--engine", "spark"], "--engine"),
    ):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert option in r.output and "Traceback" not in r.output
    assert not (tmp_path / "m").exists() and not (tmp_path / "o.jsonl").exists()
