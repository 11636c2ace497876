"""Failures against a real server: one clear line, non-zero exit, nothing written, token never shown."""

from __future__ import annotations

import pytest

from ls_helpers import free_port, make_session
from rupture_nlp.errors import RuptureError
from rupture_nlp.records import write_sessions

pytestmark = pytest.mark.labelstudio


@pytest.fixture()
def gold(tmp_path):
    path = tmp_path / "gold.jsonl"
    write_sessions(path, [make_session("e1", 6, seed=1)])
    return path


def _one_error_line(r, token: str, *needles: str) -> str:
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ")
    for n in needles:
        assert n in lines[0], lines[0]
    assert token not in r.stderr and token not in r.stdout
    assert "Traceback" not in r.stderr
    return lines[0]


def _nothing_written(tmp_path, out):
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gold.jsonl"]  # no raw export, no temp files


CASES = {
    "server down": (lambda s: {"LABEL_STUDIO_URL": f"http://127.0.0.1:{free_port()}"}, "cannot reach Label Studio"),
    "wrong url": (
        lambda s: {"LABEL_STUDIO_URL": s.url + "/not-label-studio"},
        "does not look like a Label Studio server",
    ),
    "wrong token": (lambda s: {"LABEL_STUDIO_API_KEY": "0" * 40}, "rejected the API key"),
    "no token": (lambda s: {"LABEL_STUDIO_API_KEY": ""}, "LABEL_STUDIO_API_KEY is not set"),
    "bad url": (lambda s: {"LABEL_STUDIO_URL": "127.0.0.1:8080"}, "must be an http(s) URL"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_push_and_pull_fail_in_one_line(ls_server, tmp_path, gold, case):
    over, needle = CASES[case]
    env = ls_server.client_env(**over(ls_server))
    out = tmp_path / "out.jsonl"
    _one_error_line(ls_server.rupture("ls", "push", str(gold), "--project", "Never", env=env), ls_server.token, needle)
    _one_error_line(
        ls_server.rupture("ls", "pull", "--project", "Never", "--out", str(out), env=env), ls_server.token, needle
    )
    _nothing_written(tmp_path, out)


def test_pull_of_a_missing_project(ls_server, tmp_path, gold):
    out = tmp_path / "out.jsonl"
    r = ls_server.rupture("ls", "pull", "--project", "No such project", "--out", str(out))
    _one_error_line(r, ls_server.token, "no project titled 'No such project'")
    _nothing_written(tmp_path, out)


def test_api_errors_are_rupture_errors(ls_server):
    from rupture_nlp.labelstudio import connect

    with pytest.raises(RuptureError, match="cannot reach") as e:
        connect(f"http://127.0.0.1:{free_port()}", ls_server.token, retries=2)
    assert ls_server.token not in str(e.value)
    client = ls_server.client()
    with pytest.raises(RuptureError, match="HTTP 404"):
        client.call("reading project 999999", client.sdk.projects.get, 999999)
    assert "hidden" in repr(client.settings) and ls_server.token not in repr(client.settings)
