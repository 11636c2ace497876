"""Never lose a session (issue 10): locks, duplicate ids, failed batches, unsafe outputs, Ctrl-C,
stale temporary files, outputs inside input folders, a full disk, unreadable inputs."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rupture_nlp.errors import RuptureError
from rupture_nlp.locking import lock_path, output_lock
from rupture_nlp.model import RuptureClassifier
from rupture_nlp.records import read_sessions
from rupture_nlp.tagging import journal_path, tag_files
from rupture_nlp.validate import validate_file

from model_helpers import data_dir

RUPTURE = str(Path(sys.executable).with_name("rupture"))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "RUPTURE_PROGRESS": "0"}


@pytest.fixture(scope="module")
def model_dir(tiny_model):
    return tiny_model("lora")


@pytest.fixture(scope="module")
def clf(model_dir):
    return RuptureClassifier.from_pretrained(model_dir)


@pytest.fixture()
def canon(model_dir, tmp_path):
    """Two canonical files: a.jsonl (tr00, tr01) and b.jsonl (dv00, dv01)."""
    src = data_dir(model_dir)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join((src / "train.jsonl").read_text().splitlines(keepends=True)[:2]))
    shutil.copy(src / "dev.jsonl", b)
    return [a, b]


def transcript(path: Path, n_turns: int = 3, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    words = ["week", "diary", "sleep", "work", "sister", "plan", "walk", "phone"]
    lines = []
    for i in range(n_turns):
        w = words[(i + seed) % len(words)]
        lines.append(f"T: How did the {w} go this time, number {i}?\nC: It was fine, the {w} was okay {seed}.\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def run(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([RUPTURE, *args], capture_output=True, text=True, timeout=timeout, env=ENV)


# ---------------------------------------------------------------- 1. one run per output
def test_a_second_run_on_the_same_output_fails_at_once_naming_the_holder(model_dir, canon, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n")
    with output_lock(out):  # this process plays the first run
        t0 = time.monotonic()
        r = run("tag", *map(str, canon), "--model", str(model_dir), "--out", str(out))
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"process {os.getpid()} is already writing this output" in r.stderr
        assert time.monotonic() - t0 < 60  # fails at once, does not wait
        assert out.read_text() == "precious\n"
    rep = tag_files(canon, RuptureClassifier.from_pretrained(model_dir), out)  # free again
    assert rep.ok and len(list(read_sessions(out))) == 4
    assert not lock_path(out).exists()  # nothing left beside the output


def test_segment_report_and_ls_pull_take_the_same_lock(canon, tmp_path):
    seg, rep_dir, pulled = tmp_path / "seg.jsonl", tmp_path / "report", tmp_path / "pulled.jsonl"
    with output_lock(seg), output_lock(rep_dir), output_lock(pulled):
        r = run("segment", str(canon[0]), "--out", str(seg))
        assert r.returncode == 1 and "already writing this output" in r.stderr and not seg.exists()
        r = run("report", str(canon[0]), "--out", str(rep_dir))
        assert r.returncode == 1 and "already writing this output" in r.stderr
        assert not (rep_dir / "index.html").exists()
        env = {**ENV, "LABEL_STUDIO_URL": "http://127.0.0.1:9", "LABEL_STUDIO_API_KEY": "x"}
        r = subprocess.run(
            [RUPTURE, "ls", "pull", "--project", "p", "--out", str(pulled)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert r.returncode == 1 and "already writing this output" in r.stderr, r.stderr


# ---------------------------------------------------------------- 2. duplicate session ids
def test_duplicate_session_ids_fail_the_later_file_and_the_output_stays_valid(clf, canon, tmp_path):
    a = transcript(tmp_path / "clinic1" / "s01.txt", seed=1)
    b = transcript(tmp_path / "clinic2" / "s01.txt", seed=2)  # same name, other folder
    c = transcript(tmp_path / "séance.txt", seed=3)
    d = transcript(tmp_path / "sèance.txt", seed=4)  # collapses to the same id
    dup = tmp_path / "dup.jsonl"
    line = canon[1].read_text().splitlines()[0]
    dup.write_text(line + "\n" + line.replace('"dv00"', '"dv00"') + "\n")  # one id twice in one file
    out = tmp_path / "out.jsonl"
    rep = tag_files([a, b, c, d, dup], clf, out)
    failed = dict(rep.failed)
    assert set(failed) == {str(b), str(d), str(dup)}
    assert "already used by" in failed[str(b)] and str(a) in failed[str(b)]
    ids = [s.session_id for s in read_sessions(out)]
    assert ids == ["s01", "s-ance"] and len(set(ids)) == len(ids)
    assert list(validate_file(out, clf.schema)) == []


# ---------------------------------------------------------------- 3. nothing succeeded
def test_when_every_input_fails_the_existing_output_is_untouched(model_dir, canon, tmp_path):
    out, out_csv = tmp_path / "out.jsonl", tmp_path / "out.csv"
    out.write_text("earlier results\n")
    out_csv.write_text("earlier,csv\n")
    r = run("tag", str(tmp_path / "typo.txt"), "--model", str(model_dir), "--out", str(out), "--csv", str(out_csv))
    assert r.returncode == 1 and "nothing written" in r.stderr and "wrote" not in r.stdout
    assert out.read_text() == "earlier results\n" and out_csv.read_text() == "earlier,csv\n"
    assert not journal_path(out).exists()
    # bad options fail before the model is loaded or anything is touched
    r = run("tag", str(canon[0]), "--model", str(tmp_path / "no-model"), "--out", str(out), "--format", "docx")
    assert r.returncode == 2 and "--format" in r.stderr and "no-model" not in r.stderr
    r = run("tag", str(canon[0]), "--model", str(tmp_path / "no-model"), "--out", str(out), "--speakers", "Lee")
    assert r.returncode == 1 and "no-model" not in r.stderr and "Traceback" not in r.stderr
    assert out.read_text() == "earlier results\n"


# ---------------------------------------------------------------- 4. unexpected per-file errors
def test_an_unexpected_error_in_one_file_is_that_files_failure(clf, canon, tmp_path, monkeypatch):
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 200_000 + "]" * 200_000 + "\n")  # RecursionError in json
    boom = transcript(tmp_path / "boom.txt")
    import rupture_nlp.ingest as ingest

    real = ingest.load_sessions

    def flaky(path, **kw):
        if Path(path).name == "boom.txt":
            raise ValueError("something deep inside a library")
        return real(path, **kw)

    monkeypatch.setattr(ingest, "load_sessions", flaky)
    out = tmp_path / "out.jsonl"
    rep = tag_files([canon[0], deep, boom, canon[1]], clf, out)
    failed = dict(rep.failed)
    assert set(failed) == {str(deep), str(boom)}
    assert failed[str(boom)].startswith(f"{boom}: could not be tagged (ValueError)")
    assert [s.session_id for s in read_sessions(out)] == ["tr00", "tr01", "dv00", "dv01"]


# ---------------------------------------------------------------- 5. unsafe outputs
def test_device_outputs_are_refused_and_symlinks_written_through(clf, canon, tmp_path):
    with pytest.raises(RuptureError, match="not a regular file"):
        tag_files(canon, clf, "/dev/full")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    with pytest.raises(RuptureError, match="folder"):
        tag_files(canon, clf, tmp_path / "out.jsonl", csv=tmp_path)
    real = tmp_path / "results" / "tagged.jsonl"
    real.parent.mkdir()
    real.write_text("old\n")
    os.chmod(real, 0o640)
    link = tmp_path / "latest.jsonl"
    link.symlink_to(real)
    tag_files(canon, clf, link)
    assert link.is_symlink() and len(list(read_sessions(real))) == 4
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # a replaced file keeps its mode
    new = tmp_path / "new.jsonl"
    tag_files(canon, clf, new, csv=tmp_path / "new.csv")
    assert stat.S_IMODE(new.stat().st_mode) == 0o600  # clinical data: owner only
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o600


# ---------------------------------------------------------------- 13. Ctrl-C, stale temporaries
@pytest.mark.slow
def test_sigint_keeps_the_journal_says_so_and_the_rerun_resumes(model_dir, tmp_path):
    folder = tmp_path / "in"
    for i in range(60):
        transcript(folder / f"s{i:03d}.txt", n_turns=6, seed=i)
    out = tmp_path / "out.jsonl"
    stale = tmp_path / ".out.jsonl.x1y2.tmp"
    stale.write_text("left by a kill")
    args = ["tag", str(folder), "--model", str(model_dir), "--out", str(out)]
    p = subprocess.Popen([RUPTURE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    j = journal_path(out)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (not j.exists() or j.read_text().count('"session"') < 3):
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    if p.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert p.returncode == 130 and "Traceback" not in err
    kept = j.read_text().count('"session"')
    assert f"interrupted; {kept} session(s) kept in {j}, rerun the same command to resume" in err
    assert not out.exists() and not stale.exists()
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert f"({kept} resumed from the interrupted run)" in r.stdout
    ids = [s.session_id for s in read_sessions(out)]
    assert ids == [f"s{i:03d}" for i in range(60)]


# ---------------------------------------------------------------- 14. output inside an input folder
def test_output_inside_the_input_folder_and_non_transcripts_are_skipped(model_dir, tmp_path):
    folder = tmp_path / "sessions"
    transcript(folder / "s1.txt", seed=1)
    transcript(folder / "s2.txt", seed=2)
    (folder / "README.md").write_text("# about these sessions\n")
    (folder / "config.json").write_text('{"threshold": 0.5}\n')
    out, out_csv = folder / "tagged.jsonl", folder / "tagged.csv"
    for _ in range(2):  # the rerun is not refused
        r = run("tag", str(folder), "--model", str(model_dir), "--out", str(out), "--csv", str(out_csv))
        assert r.returncode == 0, r.stderr
        assert "skipped 2 file(s) in input folders that are not transcripts (README.md, config.json)" in r.stderr
        assert [s.session_id for s in read_sessions(out)] == ["s1", "s2"]


# ---------------------------------------------------------------- 15. disk full
def test_a_full_disk_is_named_as_such_and_blames_the_output(clf, canon, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mnt)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("needs root to mount a tiny tmpfs")
    try:
        out = mnt / "out.jsonl"
        (mnt / "filler").write_bytes(b"x" * 20_000)
        with pytest.raises(RuptureError) as e:
            tag_files(canon, clf, out)
        assert "no space left" in str(e.value) and str(mnt) in str(e.value)
        assert str(canon[0]) not in str(e.value)
        assert not out.exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ---------------------------------------------------------------- 16. unreadable explicit inputs
def test_unreadable_explicit_inputs_are_ordinary_failed_files(clf, canon, tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    broken = tmp_path / "gone.txt"
    broken.symlink_to(tmp_path / "nowhere.txt")
    out = tmp_path / "out.jsonl"
    rep = tag_files([fifo, canon[0], broken, canon[1]], clf, out)  # a FIFO would hang a reader
    failed = dict(rep.failed)
    assert set(failed) == {str(fifo), str(broken)}
    assert "not a regular file" in failed[str(fifo)]
    assert len(list(read_sessions(out))) == 4
