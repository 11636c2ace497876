"""scripts/labelstudio.sh and `rupture ls server`, an interrupted push, and a restart.

The interrupted push stops the shared test server mid-way and starts it again (same data
directory): the restart must keep every project, task and annotation.
"""

from __future__ import annotations

import pytest

from ls_helpers import accept_predictions, make_session, tasks_by_key
from rupture_nlp.errors import RuptureError
from rupture_nlp.labelstudio import push_sessions
from rupture_nlp.schema import load_schema

pytestmark = pytest.mark.labelstudio


def test_status_start_again_and_busy_port(ls_server, tmp_path):
    r = ls_server.script("status")
    assert r.returncode == 0 and "running" in r.stdout and ls_server.url in r.stdout
    r = ls_server.rupture("ls", "server", "status", env={**ls_server.env})
    assert r.returncode == 0 and "running" in r.stdout
    r = ls_server.script("start")  # idempotent
    assert r.returncode == 0 and "already running" in r.stderr
    # another data directory on the same port: Label Studio would move to port+1 silently; we refuse
    other = tmp_path / "other-data"
    r = ls_server.script("start", LABEL_STUDIO_BASE_DATA_DIR=str(other))
    assert r.returncode == 1
    assert f"port {ls_server.port}" in r.stderr and "already in use" in r.stderr
    assert not (other / "server.pid").exists()
    r = ls_server.script("status", LABEL_STUDIO_PORT=str(ls_server.port + 1), LABEL_STUDIO_BASE_DATA_DIR=str(other))
    assert r.returncode == 3 and "not running" in r.stdout
    r = ls_server.script("stop", LABEL_STUDIO_BASE_DATA_DIR=str(other))  # nothing to stop: fine
    assert r.returncode == 0


def test_interrupted_push_completes_without_duplicates_after_restart(ls_server):
    schema = load_schema()
    client = ls_server.client(retries=2)
    sessions = [make_session(f"ip{i:02d}", 4 + i % 3, seed=i) for i in range(12)]
    # something annotated before the interruption must survive the restart
    done = push_sessions(client, sessions[:2], "Interrupted", schema)
    assert accept_predictions(client, done.project_id) == 2

    calls = []

    def stop_server_after_two_batches(event) -> None:
        if event.stage != "push" or event.done == 0:  # the start: nothing imported yet
            return
        calls.append(event.done)
        if len(calls) == 2:
            ls_server.stop()

    with pytest.raises(RuptureError, match="cannot reach Label Studio"):
        push_sessions(client, sessions, "Interrupted", schema, batch_size=3, progress=stop_server_after_two_batches)
    assert calls == [3, 6]
    ls_server.start()

    client = ls_server.client()
    before = tasks_by_key(client, done.project_id)
    assert len(before) == 2 + 6  # whole batches only
    assert sum(1 for t in client.sdk.tasks.list(project=done.project_id, fields="all") if t.annotations) == 2
    rep = push_sessions(client, sessions, "Interrupted", schema, batch_size=3)
    assert (rep.existing, rep.imported, rep.created_project) == (8, 4, False)
    keys = [t.data["task_key"] for t in client.sdk.tasks.list(project=done.project_id, fields="all")]
    assert sorted(keys) == sorted(f"ip{i:02d}#0000" for i in range(12))


def test_port_taken_during_start_up_is_detected(ls_server, tmp_path):
    """Label Studio moves to port+1 when its port is taken; the script must notice and fail."""
    import socket
    import subprocess

    from ls_helpers import SCRIPT, free_port

    port = free_port()
    data = tmp_path / "data"
    env = {**ls_server.env, "LABEL_STUDIO_PORT": str(port), "LABEL_STUDIO_BASE_DATA_DIR": str(data)}
    proc = subprocess.Popen(
        ["bash", str(SCRIPT), "start"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        first = proc.stderr.readline()  # printed after the script's own port check
        assert "starting Label Studio" in first, first
        with socket.socket() as s:  # someone takes the port while Label Studio boots
            s.bind(("127.0.0.1", port))
            s.listen()
            _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert f"port {port} was taken while Label Studio started" in err and "stopped it" in err
    assert not (data / "server.pid").exists()
    with socket.socket() as s:  # and nothing is left serving on the next port
        assert s.connect_ex(("127.0.0.1", port + 1)) != 0
