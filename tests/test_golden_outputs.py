"""Refactoring guard: outputs on the bundled inputs stay byte-identical to the committed goldens.

`tests/golden/examples.segment.jsonl` is `rupture segment corpora/examples`;
`tests/golden/report/` is `rupture report tests/golden/report-input.jsonl --no-html` (three gold-
labelled dev sessions). A change that alters them on purpose regenerates them with those commands
and says why in its commit.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from rupture_nlp.cli import app
from rupture_nlp.ingest import load_sessions

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"


def test_segment_output_on_the_examples_is_unchanged(tmp_path):
    out = tmp_path / "seg.jsonl"
    r = CliRunner().invoke(app, ["segment", str(ROOT / "corpora" / "examples"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes() == (GOLDEN / "examples.segment.jsonl").read_bytes()


def test_the_python_api_gives_the_same_sessions_as_the_cli():
    golden = (GOLDEN / "examples.segment.jsonl").read_text(encoding="utf-8").splitlines()
    files = sorted(p for p in (ROOT / "corpora" / "examples").iterdir() if p.is_file())
    api = [s.to_json() for f in files for s in load_sessions(f)]
    assert api == golden


def test_report_tables_are_unchanged(tmp_path):
    out = tmp_path / "report"
    r = CliRunner().invoke(app, ["report", str(GOLDEN / "report-input.jsonl"), "--out", str(out), "--no-html"])
    assert r.exit_code == 0, r.output
    for f in sorted((GOLDEN / "report").iterdir()):
        assert (out / f.name).read_bytes() == f.read_bytes(), f.name
