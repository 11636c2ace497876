"""Issue 10: model directories never run code, and every loaded file is in the model version;
the Label Studio script's generated credentials; unique report page names and empty reports;
`rupture validate` on label/speaker mismatches and blank texts."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rupture_nlp.errors import RuptureError
from rupture_nlp.records import Session, Utterance, write_sessions
from rupture_nlp.schema import load_schema
from rupture_nlp.validate import validate_file

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "labelstudio.sh"
RUPTURE = [sys.executable, "-c", "from rupture_nlp.cli import main; main()"]

# transformers would copy this file to its modules cache and import it from there: the marker
# path is absolute.
EVIL_PY = """
import pathlib
pathlib.Path({marker!r}).write_text("custom code ran")
from transformers import BertTokenizer, BertConfig, BertModel
class EvilTokenizer(BertTokenizer):
    pass
class EvilConfig(BertConfig):
    model_type = "evil"
class EvilModel(BertModel):
    config_class = EvilConfig
"""


# --------------------------------------------------------------------------- 10. model code and version
@pytest.fixture()
def model_copy(tiny_model, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_model("lora"), d)
    return d


def _edit_json(path: Path, **changes) -> None:
    d = json.loads(path.read_text())
    d.update(changes)
    path.write_text(json.dumps(d, indent=2))


def _evil_tokenizer(d: Path) -> Path:
    """A tokenizer config whose class exists only in evil.py beside it (transformers would ask);
    returns the file the code would create."""
    _edit_json(
        d / "tokenizer_config.json",
        tokenizer_class="EvilTokenizer",
        auto_map={"AutoTokenizer": ["evil.EvilTokenizer", "evil.EvilTokenizer"]},
    )
    marker = d.parent / "CODE_RAN"
    (d / "evil.py").write_text(EVIL_PY.format(marker=str(marker)))
    return marker


def test_auto_map_in_tokenizer_config_is_refused_without_prompt_or_code(model_copy, tmp_path):
    marker = _evil_tokenizer(model_copy)
    code = (
        "import sys\nfrom rupture_nlp.errors import RuptureError\nfrom rupture_nlp.model import RuptureClassifier\n"
        "try:\n    RuptureClassifier.from_pretrained(sys.argv[1])\nexcept RuptureError as e:\n"
        "    print(e, file=sys.stderr); sys.exit(1)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(model_copy)],
        input="y\ny\n",
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "hf-modules")},
    )
    assert not marker.exists(), "code from the model directory ran"
    assert not list((tmp_path / "hf-modules").rglob("evil.py"))
    assert "[y/N]" not in r.stdout + r.stderr
    assert r.returncode == 1
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "tokenizer_config.json" in lines[0] and "custom code" in lines[0], r.stderr


def test_auto_map_in_config_json_and_python_files_are_refused(tiny_model, model_copy):
    from rupture_nlp.model import RuptureClassifier

    _edit_json(model_copy / "config.json", auto_map={"AutoModel": "evil.EvilModel"})
    with pytest.raises(RuptureError) as e:
        RuptureClassifier.from_pretrained(model_copy)
    assert e.value.path == str(model_copy / "config.json") and "auto_map" in str(e.value)
    shutil.copy(tiny_model("lora") / "config.json", model_copy / "config.json")
    (model_copy / "modeling_evil.py").write_text("raise SystemExit('must never be imported')\n")
    with pytest.raises(RuptureError) as e:
        RuptureClassifier.from_pretrained(model_copy)
    assert e.value.path == str(model_copy / "modeling_evil.py") and "never runs code" in str(e.value)


def test_loaders_pass_trust_remote_code_false_even_past_the_check(model_copy, monkeypatch):
    """With the directory check switched off and "y" typed at any prompt, transformers still
    runs nothing: every from_pretrained gets trust_remote_code=False."""
    import builtins

    from rupture_nlp.model import hf

    monkeypatch.setattr(hf, "refuse_remote_code", lambda path: None)
    monkeypatch.setattr(builtins, "input", lambda *a: "y")
    marker = _evil_tokenizer(model_copy)
    with pytest.raises(RuptureError, match="cannot load the tokenizer"):
        hf.load_tokenizer(model_copy)
    enc = model_copy / "enc"
    enc.mkdir()
    (enc / "config.json").write_text(
        json.dumps({"model_type": "evil", "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}})
    )
    (enc / "evil.py").write_text(EVIL_PY.format(marker=str(marker)))
    with pytest.raises(RuptureError, match="cannot load the encoder"):
        hf.load_encoder(enc, "mean")
    assert not marker.exists()


def test_every_loaded_file_changes_the_model_version(model_copy):
    from rupture_nlp.model import RuptureClassifier

    v0 = RuptureClassifier.from_pretrained(model_copy).model_version
    assert v0 == json.loads((model_copy / "metrics.json").read_text())["model_version"]  # as training recorded
    _edit_json(model_copy / "tokenizer_config.json", model_max_length=256)
    v1 = RuptureClassifier.from_pretrained(model_copy).model_version
    assert v1 != v0
    _edit_json(model_copy / "adapter_config.json", lora_alpha=3)
    v2 = RuptureClassifier.from_pretrained(model_copy).model_version
    assert v2 not in (v0, v1)
    schema = model_copy / "schema.yaml"
    schema.write_text(schema.read_text().replace("description:", "description: (edited)", 1))
    assert RuptureClassifier.from_pretrained(model_copy).model_version not in (v0, v1, v2)


# --------------------------------------------------------------------------- 12. Label Studio credentials
FAKE_LABEL_STUDIO = """#!{python}
# Stands in for Label Studio: records the credentials it was started with, answers /health.
import http.server, json, os, sys
port = int(sys.argv[sys.argv.index("--port") + 1])
keys = ("LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN")
with open(os.path.join(os.environ["LABEL_STUDIO_BASE_DATA_DIR"], "fake-env.json"), "w") as f:
    json.dump({{k: os.environ.get(k) for k in keys}}, f)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{{"status": "UP"}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


def _script(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=120)


def _creds(path: Path) -> dict[str, str]:
    return dict(l.split("=", 1) for l in path.read_text().splitlines() if l and not l.startswith("#"))


@pytest.fixture()
def ls_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(tmp_path / "new" / "ls-data"), LABEL_STUDIO_VENV=str(tmp_path / "no-venv")
    )
    return env


def test_script_generates_private_credentials_once_and_never_prints_them(ls_env, tmp_path):
    data = Path(ls_env["LABEL_STUDIO_BASE_DATA_DIR"])
    r = _script("creds", ls_env)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    cf = data / "credentials.env"
    assert stat.S_IMODE(cf.stat().st_mode) == 0o600
    creds = _creds(cf)
    assert re.fullmatch(r"[0-9a-f]{40}", creds["LABEL_STUDIO_PASSWORD"])
    assert re.fullmatch(r"[0-9a-f]{40}", creds["LABEL_STUDIO_USER_TOKEN"])
    assert creds["LABEL_STUDIO_API_KEY"] == creds["LABEL_STUDIO_USER_TOKEN"]
    assert creds["LABEL_STUDIO_PASSWORD"] != creds["LABEL_STUDIO_USER_TOKEN"]
    assert "rupture-dev" not in cf.read_text()
    again = _script("creds", ls_env)
    assert again.returncode == 0 and _creds(cf) == creds  # reused, not regenerated
    assert str(cf) in r.stdout and str(cf) in again.stdout
    for out in (r.stdout, r.stderr, again.stdout, again.stderr):
        assert creds["LABEL_STUDIO_PASSWORD"] not in out and creds["LABEL_STUDIO_USER_TOKEN"] not in out
    # another data directory gets its own secrets
    other = _script("creds", {**ls_env, "LABEL_STUDIO_BASE_DATA_DIR": str(tmp_path / "other")})
    assert other.returncode == 0
    assert _creds(tmp_path / "other" / "credentials.env")["LABEL_STUDIO_USER_TOKEN"] != creds["LABEL_STUDIO_USER_TOKEN"]


def test_script_start_uses_stored_credentials_and_the_environment_first(ls_env, tmp_path):
    from ls_helpers import free_port

    venv = tmp_path / "fake-venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "label-studio"
    fake.write_text(FAKE_LABEL_STUDIO.format(python=sys.executable))
    fake.chmod(0o755)
    (venv / "bin" / "python").symlink_to(sys.executable)
    data = Path(ls_env["LABEL_STUDIO_BASE_DATA_DIR"])
    env = {
        **ls_env,
        "LABEL_STUDIO_VENV": str(venv),
        "LABEL_STUDIO_PORT": str(free_port()),
        "LABEL_STUDIO_START_TIMEOUT": "60",
    }

    def start_and_stop(env) -> tuple[dict, str]:
        r = _script("start", env)
        try:
            assert r.returncode == 0, r.stderr
            seen = json.loads((data / "fake-env.json").read_text())
        finally:
            pid = (data / "server.pid").read_text().strip() if (data / "server.pid").exists() else ""
            s = _script("stop", env)
            if s.returncode != 0 and pid:
                os.kill(int(pid), signal.SIGKILL)
        return seen, r.stdout + r.stderr

    seen, out = start_and_stop(env)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    creds = _creds(data / "credentials.env")
    assert seen == {k: creds[k] for k in ("LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN")}
    assert creds["LABEL_STUDIO_PASSWORD"] not in out and creds["LABEL_STUDIO_USER_TOKEN"] not in out
    assert "credentials.env" in out
    time.sleep(0.2)
    seen, out = start_and_stop({**env, "LABEL_STUDIO_PASSWORD": "from-the-environment"})
    assert seen["LABEL_STUDIO_PASSWORD"] == "from-the-environment"
    assert seen["LABEL_STUDIO_USER_TOKEN"] == creds["LABEL_STUDIO_USER_TOKEN"]
    assert _creds(data / "credentials.env") == creds and "from-the-environment" not in out


# --------------------------------------------------------------------------- 17. report pages
def _session(sid: str, speaker_labels: list[tuple[str, list[str]]] | None = None) -> Session:
    rows = speaker_labels or [("therapist", []), ("client", ["withdrawal/denial"]), ("therapist", [])]
    utts = [
        Utterance(
            id=f"{sid}-u{i}", turn=i, speaker=spk, text=f"line {i}", start=2.0 * i, end=2.0 * i + 1.5, labels=labs
        )
        for i, (spk, labs) in enumerate(rows)
    ]
    return Session(session_id=sid, utterances=utts, meta={})


def test_report_pages_of_similar_ids_are_distinct_and_linked(tmp_path):
    from rupture_nlp.report import build_report, page_names

    ids = ["a/b", "a_b", "A_B", "plain", "../up"]
    out = tmp_path / "report"
    res = build_report([_session(i) for i in ids], out)
    assert res.n_sessions == 5
    pages = sorted(p.name for p in (out / "sessions").iterdir())
    assert len(pages) == 5 and "plain.html" in pages
    names = page_names(ids)
    assert page_names(list(reversed(ids))) == names  # stable: the same id, the same page
    assert names["plain"] == "plain.html" and names["a/b"] != names["a_b"]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+\.html", n) and not n.startswith(".") for n in names.values())
    index = (out / "index.html").read_text()
    for sid, name in names.items():
        assert f'href="sessions/{name}"' in index
        assert f"<h1>Session {html.escape(sid)}</h1>" in (out / "sessions" / name).read_text()


def test_report_of_no_sessions_fails_in_one_line_and_writes_nothing(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    out = tmp_path / "report"
    r = subprocess.run([*RUPTURE, "report", str(empty), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "no sessions" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_report_refuses_duplicate_session_ids(tmp_path):
    from rupture_nlp.report import build_report

    with pytest.raises(RuptureError, match="more than once"):
        build_report([_session("s1"), _session("s1")], tmp_path / "r")
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- 18. validate
def test_validate_reports_label_speaker_mismatch_and_blank_text(tmp_path):
    good = _session("ok", [("therapist", ["repair/invite_discussion"]), ("client", ["withdrawal/denial"])])
    wrong = _session(
        "wrong", [("therapist", ["withdrawal/denial"]), ("client", ["repair/invite_discussion"]), ("client", [])]
    )
    wrong.utterances[2].text = "  \t "
    empty = _session("empty", [("client", [])])
    empty.utterances[0].text = ""
    p = tmp_path / "v.jsonl"
    write_sessions(p, [good, wrong, empty])
    msgs = [str(m) for m in validate_file(p, load_schema())]
    assert not any(m.startswith(f"{p}:1:") for m in msgs), msgs
    assert any(
        m.startswith(f"{p}:2: utterances/0/labels")
        and "client label(s) on a therapist utterance" in m
        and "withdrawal/denial" in m
        for m in msgs
    ), msgs
    assert any(
        m.startswith(f"{p}:2: utterances/1/labels")
        and "therapist label(s) on a client utterance" in m
        and "repair/invite_discussion" in m
        for m in msgs
    ), msgs
    assert any(m.startswith(f"{p}:2: utterances/2/text") and "blank" in m for m in msgs), msgs
    assert any(m.startswith(f"{p}:3: utterances/0/text") and "blank" in m for m in msgs), msgs
    assert len(msgs) == 4, msgs
    r = subprocess.run([*RUPTURE, "validate", str(p)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "4 problem(s)" in r.stderr
