"""``rupture tag --engine ray`` (issue 14) on a real Ray cluster of two node processes (a head and a
worker started with ``ray start``) and on the embedded instance: the same sessions, ids, labels and
scores as the local engine, the same one-line failures, resuming across engines, Ctrl-C, and no
Ray process left behind."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from rupture_nlp.errors import RuptureError
from rupture_nlp.records import read_sessions
from rupture_nlp.tagging import TagInterrupted, journal_path, tag_files

from model_helpers import data_dir

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "corpora" / "examples"
RUPTURE = str(Path(sys.executable).with_name("rupture"))
RAY = str(Path(sys.executable).with_name("ray"))
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "RUPTURE_PROGRESS": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}


# ------------------------------------------------------------------------------------------ helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``: a process started with
    ``start_new_session`` and everything it started, detached Ray actors included."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # state ppid pgrp session ...
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(d.name))
    return pids


def wait_gone(sids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while True:
        left = [p for s in sids for p in session_pids(s)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.25)


def kill_sessions(sids: list[int]) -> list[int]:
    """SIGTERM every process of the sessions, then SIGKILL what is left; returns what survived."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        for p in [p for s in sids for p in session_pids(s)]:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        if not wait_gone(sids, wait):
            return []
    return [p for s in sids for p in session_pids(s)]


def run(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """The CLI in its own session; afterwards nothing of that session (an embedded Ray) may live on."""
    p = subprocess.Popen(
        ["nice", "-n", "19", RUPTURE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or ENV,
        start_new_session=True,
    )
    out, err = p.communicate(timeout=timeout)
    left = wait_gone([p.pid], 30)
    kill_sessions([p.pid])
    assert not left, f"processes left by the CLI run: {left}"
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_same_tags(got_path: Path, want_path: Path) -> int:
    """The same sessions in the same order, the same utterance ids and labels, scores within 1e-5."""
    got, want = list(read_sessions(got_path)), list(read_sessions(want_path))
    assert [s.session_id for s in got] == [s.session_id for s in want]
    n = 0
    for g, w in zip(got, want):
        assert [u.id for u in g.utterances] == [u.id for u in w.utterances]
        assert [u.text for u in g.utterances] == [u.text for u in w.utterances]
        for gu, wu in zip(g.utterances, w.utterances):
            assert gu.labels == wu.labels, gu.id
            assert set(gu.scores) == set(wu.scores)
            assert all(abs(gu.scores[l] - wu.scores[l]) <= 1e-5 for l in wu.scores), gu.id
            n += 1
    return n


def sessions_of(event) -> int:
    return int(event.message.split()[0].replace(",", ""))


def interrupt_after(n: int):
    """A progress callback that plays Ctrl-C once ``n`` sessions are safely in the journal."""

    def progress(event) -> None:
        if sessions_of(event) >= n:
            raise KeyboardInterrupt

    return progress


# ------------------------------------------------------------------------------------------ fixtures
@dataclass
class Cluster:
    address: str
    temp_dir: Path
    sids: list[int]
    env: dict


@pytest.fixture(scope="module")
def cluster():
    """A real two-node Ray cluster on this machine: a head (1 CPU) and a worker node (1 CPU), each
    a ``ray start --block`` process in its own session, with a temporary directory of their own
    and token authentication. Stopped at the end: every process of both sessions is terminated
    (killed if need be), and the teardown fails if any is left."""
    token = secrets.token_hex(32)
    env = {**ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's Unix socket paths have a limit
    port = free_port()
    common = [
        "--node-ip-address",
        "127.0.0.1",
        "--num-cpus",
        "1",
        "--temp-dir",
        str(temp),
        "--disable-usage-stats",
        "--block",
        "--dashboard-agent-listen-port",
    ]
    procs: list[subprocess.Popen] = []
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    try:
        procs.append(
            subprocess.Popen(
                [
                    "nice",
                    "-n",
                    "19",
                    RAY,
                    "start",
                    "--head",
                    "--port",
                    str(port),
                    "--include-dashboard=false",
                    "--dashboard-port",
                    str(free_port()),
                    "--ray-client-server-port",
                    str(free_port()),
                    *common,
                    str(free_port()),
                ],
                stdout=(temp / "head.log").open("w"),
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        )
        _wait_for(temp / "head.log", "Ray runtime started", procs[0])
        procs.append(
            subprocess.Popen(
                ["nice", "-n", "19", RAY, "start", "--address", f"127.0.0.1:{port}", *common, str(free_port())],
                stdout=(temp / "worker.log").open("w"),
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        )
        _wait_for(temp / "worker.log", "Ray runtime started", procs[1])
        deadline = time.monotonic() + 120
        while True:  # both nodes registered
            st = subprocess.run(
                [RAY, "status", "--address", f"127.0.0.1:{port}"], capture_output=True, text=True, env=env, timeout=60
            )
            if "/2.0 CPU" in st.stdout:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the worker node did not join: {st.stdout[-500:]} {st.stderr[-500:]}")
            time.sleep(1)
        # for tag_files in this process, which must not have imported Ray before: Ray reads the
        # authentication mode once, when it is imported
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
        yield Cluster(f"127.0.0.1:{port}", temp, [p.pid for p in procs], env)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        left = kill_sessions([p.pid for p in procs])
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"Ray cluster processes survived the teardown: {left}"


def _wait_for(log: Path, text: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"ray start failed: {log.read_text(errors='replace')[-1500:]}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def model_dir(tiny_model):
    return tiny_model("lora")


@pytest.fixture()
def corpus(tmp_path, model_dir) -> list[Path]:
    """The five example transcripts, a canonical file of 4 sessions and a file that is no transcript."""
    folder = tmp_path / "in"
    shutil.copytree(EXAMPLES, folder)
    src = data_dir(model_dir)
    lines = (src / "train.jsonl").read_text().splitlines(keepends=True)[:2] + (
        src / "dev.jsonl"
    ).read_text().splitlines(keepends=True)[:2]
    (folder / "zz-canonical.jsonl").write_text("".join(lines))
    (folder / "bad.txt").write_text("This file has no speaker labels.\nNone at all.\n")
    return sorted(folder.iterdir())


# ------------------------------------------------------------------------------------------ tests
def test_engine_options_are_checked_before_any_work(model_dir, tmp_path):
    out = tmp_path / "o.jsonl"
    with pytest.raises(RuptureError, match="unknown engine"):
        tag_files([EXAMPLES / "b1-cbt-22.txt"], model_dir, out, engine="spark")
    with pytest.raises(RuptureError, match="need --engine ray"):
        tag_files([EXAMPLES / "b1-cbt-22.txt"], model_dir, out, address="auto")
    r = subprocess.run(
        [RUPTURE, "tag", str(EXAMPLES), "--out", str(out), "--workers", "2"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert r.returncode == 1 and "--address and --workers need --engine ray" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
    # a cluster address nothing listens on: one line at once, not after Ray's minutes of retries (in a
    # subprocess: this process imports Ray only once the cluster fixture has set its token variables)
    nobody = f"127.0.0.1:{free_port()}"
    r = subprocess.run(
        [
            RUPTURE,
            "tag",
            str(EXAMPLES),
            "--model",
            str(model_dir),
            "--out",
            str(out),
            "--engine",
            "ray",
            "--address",
            nobody,
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert r.returncode == 1 and f"error: cannot reach the Ray cluster at {nobody} (Connection refused)" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_imports_ray_lazily():
    code = (
        "import sys, rupture_nlp, rupture_nlp.tagging, rupture_nlp.cli.model, rupture_nlp.engines; "
        "print('ray' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert r.stdout.strip() == "False", r.stderr


@pytest.mark.slow
def test_cluster_tags_like_local_and_reports_the_bad_file_alone(cluster, model_dir, corpus, tmp_path):
    folder = corpus[0].parent
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    rl = run("tag", str(folder), "--model", str(model_dir), "--out", str(local), "--csv", str(tmp_path / "local.csv"))
    rr = run(
        "tag",
        str(folder),
        "--model",
        str(model_dir),
        "--out",
        str(remote),
        "--csv",
        str(tmp_path / "ray.csv"),
        "--engine",
        "ray",
        "--address",
        cluster.address,
        "--workers",
        "2",
        env=cluster.env,
    )
    for r in (rl, rr):
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    bad = str(folder / "bad.txt")
    assert error_lines(rr.stderr) == error_lines(rl.stderr) and len(error_lines(rr.stderr)) == 1
    assert error_lines(rr.stderr)[0].startswith(f"error: {bad}: no speaker labels")
    assert "1 file(s) failed" in rr.stderr and "wrote" in rr.stdout and "9 session(s) from 6 file(s)" in rr.stdout
    assert assert_same_tags(remote, local) > 500
    assert (tmp_path / "ray.csv").read_text().splitlines()[0] == (tmp_path / "local.csv").read_text().splitlines()[0]
    assert not journal_path(remote).exists()


@pytest.mark.slow
def test_a_run_interrupted_under_one_engine_resumes_under_the_other(cluster, model_dir, corpus, tmp_path):
    files = [p for p in corpus if p.name != "bad.txt"]
    want = tmp_path / "want.jsonl"
    tag_files(files, model_dir, want, batch_utterances=20)
    ray_opts = {"engine": "ray", "address": cluster.address, "workers": 2}
    for first, second, name in (({**ray_opts}, {}, "ray-then-local"), ({}, {**ray_opts}, "local-then-ray")):
        out = tmp_path / f"{name}.jsonl"
        with pytest.raises(TagInterrupted) as e:
            tag_files(files, model_dir, out, batch_utterances=20, progress=interrupt_after(7), **first)
        kept = e.value.report.sessions
        j = journal_path(out)
        assert 7 <= kept < 9 and j.exists() and not out.exists()
        journaled = [
            json.loads(line)["session"]["session_id"] for line in j.read_text().splitlines() if '"session"' in line
        ]
        assert len(journaled) == len(set(journaled)) == kept, name
        rep = tag_files(files, model_dir, out, batch_utterances=20, **second)
        assert rep.ok and rep.resumed_sessions == kept and rep.sessions == 9, name
        ids = [s.session_id for s in read_sessions(out)]
        assert len(ids) == len(set(ids)) == 9, name  # no duplicate, no loss
        assert assert_same_tags(out, want) > 500
        assert not j.exists()


@pytest.mark.slow
def test_embedded_ray_needs_no_cluster_and_leaves_nothing_running(model_dir, corpus, tmp_path):
    folder = corpus[0].parent
    local, emb = tmp_path / "local.jsonl", tmp_path / "embedded.jsonl"
    rl = run("tag", str(folder), "--model", str(model_dir), "--out", str(local))
    re_ = run(
        "tag",
        str(folder),
        "--model",
        str(model_dir),
        "--out",
        str(emb),
        "--engine",
        "ray",
        "--workers",
        "2",
        "--batch-size",
        "2",
    )  # run() checks that no process of the embedded Ray is left
    assert re_.returncode == rl.returncode == 1 and "Traceback" not in re_.stderr, re_.stderr
    assert error_lines(re_.stderr) == error_lines(rl.stderr)
    assert [line for line in re_.stderr.splitlines() if "WARNING" in line or "Warning" in line] == []
    assert assert_same_tags(emb, local) > 500


@pytest.mark.slow
def test_ctrl_c_stops_the_embedded_ray_says_so_and_the_local_rerun_resumes(model_dir, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    text = (EXAMPLES / "b1-cbt-22.txt").read_text(encoding="utf-8")
    for i in range(40):  # 40 sessions of different content (the same content would be skipped as a copy)
        (folder / f"s{i:03d}.txt").write_text(text + f"\nT: See you next week, number {i}.\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ["tag", str(folder), "--model", str(model_dir), "--out", str(out)]
    p = subprocess.Popen(
        ["nice", "-n", "19", RUPTURE, *args, "--engine", "ray", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
    )
    j = journal_path(out)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (not j.exists() or j.read_text().count('"session"') < 2):
        time.sleep(0.1)
    os.kill(p.pid, signal.SIGINT)  # the CLI alone (its own session): as Ctrl-C in a terminal
    _, err = p.communicate(timeout=120)
    left = wait_gone([p.pid], 30)
    kill_sessions([p.pid])
    assert not left, f"the embedded Ray outlived the interrupted run: {left}"
    if p.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert p.returncode == 130 and "Traceback" not in err, err
    kept = j.read_text().count('"session"')
    assert f"interrupted; {kept} session(s) kept in {j}, rerun the same command to resume" in err
    assert not out.exists()
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert f"({kept} resumed from the interrupted run)" in r.stdout
    assert [s.session_id for s in read_sessions(out)] == [f"s{i:03d}" for i in range(40)]
