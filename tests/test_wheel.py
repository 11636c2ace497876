"""Issue 11: the installed package works outside the source checkout.

The slow test builds a wheel from (a snapshot of) the repository, installs it into a fresh
virtualenv outside the checkout that borrows the project venv's dependencies through a ``.pth``
line (not the editable install's finder, which lives in a ``.pth`` file that such a line does not
run), and drives the CLI from a temporary directory: segment, tag with the shipped default model
and with ``--model``, the Label Studio server script, report. The fast tests pin how the default
model is found (``rupture_nlp/resources.py``) and the checkout's ``scripts/labelstudio.sh``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from rupture_nlp import resources
from rupture_nlp.errors import RuptureError

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "rupture-3rs-minilm"
EXAMPLE = ROOT / "corpora" / "examples" / "b1-cbt-22.txt"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**over: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RUPTURE_", "LABEL_STUDIO_", "PYTHON", "VIRTUAL_ENV", "XDG_"))
    }
    env.update(over)
    return env


# --------------------------------------------------------------------------- the default model
def test_rupture_model_setting_wins_and_must_be_a_model_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RUPTURE_MODEL", str(MODEL))
    assert resources.default_model_dir() == MODEL
    monkeypatch.setenv("RUPTURE_MODEL", str(tmp_path))
    with pytest.raises(RuptureError, match="RUPTURE_MODEL is not a model directory") as e:
        resources.default_model_dir()
    assert e.value.path == str(tmp_path) and "\n" not in str(e.value)


def test_without_a_setting_the_packaged_model_then_the_checkout_model(monkeypatch, tmp_path):
    monkeypatch.delenv("RUPTURE_MODEL", raising=False)
    # a checkout (editable install): nothing under rupture_nlp/data/models, the committed model
    assert resources.packaged_model_dir() is None
    assert resources.checkout_root() == ROOT
    assert resources.default_model_dir() == MODEL
    # an installed wheel carries its own copy
    monkeypatch.setattr(resources, "packaged_model_dir", lambda: tmp_path)
    assert resources.default_model_dir() == tmp_path
    # neither: one line saying how to get a model
    monkeypatch.setattr(resources, "packaged_model_dir", lambda: None)
    monkeypatch.setattr(resources, "checkout_root", lambda: None)
    with pytest.raises(RuptureError) as e:
        resources.default_model_dir()
    msg = str(e.value)
    assert "--model DIR" in msg and "RUPTURE_MODEL" in msg and "\n" not in msg


def test_tag_names_a_bad_rupture_model_in_one_line(tmp_path):
    (tmp_path / "s.txt").write_text("T: Hello.\nC: Hi.\n")
    r = subprocess.run(
        [str(Path(sys.executable).with_name("rupture")), "tag", "s.txt", "--out", "t.jsonl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=_clean_env(RUPTURE_MODEL=str(tmp_path / "nowhere"), COLUMNS="200"),
    )
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "RUPTURE_MODEL is not a model directory" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "t.jsonl").exists()


# --------------------------------------------------------------------------- the Label Studio script
def test_checkout_script_hands_over_to_the_packaged_one(tmp_path):
    packaged = ROOT / "rupture_nlp" / "data" / "labelstudio.sh"
    assert packaged.is_file() and "rupture_nlp/data/labelstudio.sh" in (ROOT / "scripts" / "labelstudio.sh").read_text()
    env = _clean_env(LABEL_STUDIO_PORT=str(_free_port()), LABEL_STUDIO_BASE_DATA_DIR=str(tmp_path / "d"))
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "labelstudio.sh"), "status"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert r.returncode == 3 and "not running" in r.stdout
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "labelstudio.sh"), "nonsense"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert r.returncode == 2 and "usage: labelstudio.sh install|start|stop|status|creds" in r.stderr


# --------------------------------------------------------------------------- a real wheel
def _snapshot_sources(dst: Path) -> Path:
    """The files the wheel is built from, copied (a model build may be rewriting models/)."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    dst.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, dst / name)
    for name in ("rupture_nlp", "models"):
        shutil.copytree(ROOT / name, dst / name, ignore=skip)
    return dst


@pytest.mark.slow
def test_installed_wheel_works_outside_the_checkout(tmp_path):
    py = sys.executable  # the project venv: its pip builds and installs, its packages are the dependencies
    src = _snapshot_sources(tmp_path / "src")
    dist = tmp_path / "dist"
    r = subprocess.run(
        [py, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(src)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = dist.glob("rupture_nlp-*.whl")

    # the wheel carries the server script and every file of the default model, byte for byte
    model_src = src / "models" / "rupture-3rs-minilm"
    want = {
        f"rupture_nlp/data/models/rupture-3rs-minilm/{p.relative_to(model_src).as_posix()}": p
        for p in model_src.rglob("*")
        if p.is_file()
    }
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        assert {
            "rupture_nlp/data/labelstudio.sh",
            "rupture_nlp/data/schema_3rs.yaml",
            "rupture_nlp/data/calibration.jsonl",
        } <= names
        assert {n for n in names if "/data/models/" in n} == want.keys()
        assert all(z.read(n) == p.read_bytes() for n, p in want.items())
    assert whl.stat().st_size < 12_000_000

    # a fresh venv outside the checkout; the project's dependencies through a .pth line
    venv = tmp_path / "venv"
    subprocess.run([py, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    vpy = venv / "bin" / "python"
    r = subprocess.run(
        [py, "-m", "pip", "--python", str(vpy), "install", "-q", "--no-deps", "--no-index", str(whl)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    site = Path(
        subprocess.run(
            [str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    deps = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (site / "_rupture_test_deps.pth").write_text("".join(f"{d}\n" for d in deps))

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(EXAMPLE, work / "session.txt")
    home = tmp_path / "home"
    home.mkdir()
    port = _free_port()
    env = _clean_env(PATH=f"{venv / 'bin'}:/usr/bin:/bin", HOME=str(home), COLUMNS="200", LABEL_STUDIO_PORT=str(port))

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args), cwd=work, env={**env, **extra}, capture_output=True, text=True, check=False, timeout=300
        )

    # the package comes from the new venv, not from the checkout
    probe = run(
        str(vpy),
        "-c",
        "import json, sys, importlib.metadata as md, rupture_nlp; "
        "from rupture_nlp import resources as r; "
        "print(json.dumps({'file': rupture_nlp.__file__, 'dist': str(md.distribution('rupture-nlp')._path), "
        "'checkout': str(r.checkout_root()), 'model': str(r.default_model_dir()), "
        "'editable': [repr(f) for f in sys.meta_path + sys.path_hooks if 'editable' in repr(f).lower()], "
        "'path': [p for p in sys.path if p.startswith(sys.argv[1])]}))",
        str(ROOT),
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    info = json.loads(probe.stdout)
    assert info["file"].startswith(str(site)) and info["dist"].startswith(str(site))
    assert info["checkout"] == "None" and info["editable"] == []
    assert info["model"] == str(site / "rupture_nlp" / "data" / "models" / "rupture-3rs-minilm")
    assert set(info["path"]) <= set(deps)  # only the dependencies' site-packages, never the checkout
    probe = run(
        str(vpy),
        "-c",
        "from rupture_nlp import resources as r; print(r.default_model_dir())",
        RUPTURE_MODEL=str(model_src),
    )
    assert probe.returncode == 0 and probe.stdout.strip() == str(model_src)

    rupture = str(venv / "bin" / "rupture")
    r = run(rupture, "segment", "session.txt", "--out", "seg.jsonl")
    assert r.returncode == 0, r.stderr[-3000:]
    (seg,) = [json.loads(l) for l in (work / "seg.jsonl").read_text().splitlines()]
    assert seg["session_id"] == "session" and len(seg["utterances"]) > 10

    # the shipped model (no --model, no RUPTURE_MODEL) and the same model named with --model agree
    r = run(rupture, "tag", "seg.jsonl", "--out", "tagged.jsonl", "--csv", "tagged.csv")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "1 session(s)" in r.stdout and "model rupture-3rs-minilm@" in r.stdout
    r = run(rupture, "tag", "seg.jsonl", "--model", str(model_src), "--out", "tagged-model.jsonl")
    assert r.returncode == 0, r.stderr[-3000:]
    shipped = json.loads((work / "tagged.jsonl").read_text())
    named = json.loads((work / "tagged-model.jsonl").read_text())
    assert [u["id"] for u in shipped["utterances"]] == [u["id"] for u in seg["utterances"]]
    assert all("scores" in u and u["labels"] is not None for u in shipped["utterances"])
    assert shipped == named
    r = run(rupture, "tag", "seg.jsonl", "--out", "never.jsonl", RUPTURE_MODEL=str(work))
    assert r.returncode == 1 and "RUPTURE_MODEL is not a model directory" in r.stderr
    assert not (work / "never.jsonl").exists()

    # the Label Studio script ships in the package; its state goes under ~/.local/share/rupture-nlp
    r = run(rupture, "ls", "server", "status")
    assert r.returncode == 3 and f"not running (http://127.0.0.1:{port})" in r.stdout, r.stderr
    r = run(rupture, "ls", "server", "creds")
    assert r.returncode == 0, r.stderr
    creds = home / ".local" / "share" / "rupture-nlp" / ".labelstudio" / "credentials.env"
    assert str(creds) in r.stdout and stat.S_IMODE(creds.stat().st_mode) == 0o600
    r = run(rupture, "ls", "server", "start")  # not installed: says where it looked, starts nothing
    assert r.returncode == 1 and str(home / ".local" / "share" / "rupture-nlp" / ".venv-labelstudio") in r.stderr
    assert "rupture ls server install" in r.stderr
    r = run(rupture, "ls", "server", "status", RUPTURE_LABELSTUDIO_HOME=str(tmp_path / "ls-home"))
    assert r.returncode == 3

    r = run(rupture, "report", "tagged.jsonl", "--out", "report")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (work / "report" / "index.html").is_file()
    assert "session" in (work / "report" / "sessions.csv").read_text()
    assert sorted(p.name for p in work.iterdir()) == [
        "report",
        "seg.jsonl",
        "session.txt",
        "tagged-model.jsonl",
        "tagged.csv",
        "tagged.jsonl",
    ]
