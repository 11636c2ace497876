"""A real Label Studio server for the ``tests/test_ls_*.py`` modules, and small hand-made sessions.

The session fixture ``ls_server`` (in ``conftest.py``) starts one Label Studio through
``scripts/labelstudio.sh start`` on a free port with a temporary data directory and its own
token (:func:`new_test_server`), and stops it at the end of the session (:meth:`LSServer.shutdown`).
It skips (with the reason) only when ``.venv-labelstudio`` is absent outside CI; with ``CI`` set,
a missing or broken server fails the tests.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from rupture_nlp.records import Session, Utterance

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "labelstudio.sh"
VENV = Path(os.environ.get("LABEL_STUDIO_VENV", ROOT / ".venv-labelstudio"))
RUPTURE = [sys.executable, "-c", "from rupture_nlp.cli import main; main()"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LSServer:
    """A running test server: its URL, token, data dir and the environment the script needs."""

    url: str
    token: str
    port: int
    data_dir: Path
    env: dict[str, str]
    start_seconds: float

    def script(self, command: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(SCRIPT), command], env={**self.env, **env}, capture_output=True, text=True, timeout=300
        )

    def stop(self) -> None:
        r = self.script("stop")
        assert r.returncode == 0, r.stderr

    def shutdown(self) -> list[int]:
        """Stop the server whatever state it is in (for the end of the session, also after failed
        tests or a failed start): ``stop`` through the script, then SIGKILL to the process group of
        any server still named by a ``server.pid`` under the data directory. Returns the killed pids."""
        import signal

        try:
            self.script("stop")
        except (OSError, subprocess.SubprocessError):
            pass
        killed = []
        for pid_file in self.data_dir.rglob("server.pid"):
            try:
                pid = int(pid_file.read_text().strip())
                os.killpg(pid, 0)
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue  # gone, or not a number
            if b"label-studio" not in cmdline:
                continue  # the pid was reused by another program
            try:
                os.killpg(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
        return killed

    def start(self) -> float:
        t0 = time.monotonic()
        r = self.script("start")
        assert r.returncode == 0, f"Label Studio did not start: {r.stderr[-2000:]}"
        return time.monotonic() - t0

    def client_env(self, **over: str) -> dict[str, str]:
        """The environment for ``rupture ls`` commands talking to this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
        env.update(LABEL_STUDIO_URL=self.url, LABEL_STUDIO_API_KEY=self.token)
        env.update(over)
        return env

    def client(self, **kw):
        from rupture_nlp.labelstudio import connect

        return connect(self.url, self.token, **kw)

    def rupture(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run ``rupture ARGS`` as a user would (a new process)."""
        return subprocess.run(
            [*RUPTURE, *args], env=env or self.client_env(), capture_output=True, text=True, timeout=300, cwd=ROOT
        )


def new_test_server(data_dir: Path) -> LSServer:
    """A server description (not started) on a free port with ``data_dir`` and fresh credentials.

    Raises ``pytest.skip`` when Label Studio is not installed, ``pytest.fail`` if ``CI`` is set then.
    """
    if not VENV.exists():
        msg = (
            f"Label Studio is not installed ({VENV} is absent); run 'bash scripts/labelstudio.sh install' "
            "to run the Label Studio tests"
        )
        if os.environ.get("CI"):
            pytest.fail("CI is set but " + msg)
        pytest.skip(msg)
    port = free_port()
    token = "test-" + secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(
        LABEL_STUDIO_PORT=str(port),
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LABEL_STUDIO_USERNAME="coder@rupture.test",
        LABEL_STUDIO_PASSWORD="test-" + secrets.token_hex(8),
        LABEL_STUDIO_USER_TOKEN=token,
        LABEL_STUDIO_VENV=str(VENV),
    )
    return LSServer(
        url=f"http://127.0.0.1:{port}", token=token, port=port, data_dir=data_dir, env=env, start_seconds=0.0
    )


# --------------------------------------------------------------------------- test data
LABEL_POOL = {
    "client": [
        "withdrawal/denial",
        "withdrawal/minimal_response",
        "confrontation/complaint_therapist",
        "confrontation/rejects_intervention",
    ],
    "therapist": ["repair/invite_discussion", "repair/acknowledge_contribution"],
}


def make_session(sid: str, n: int, seed: int = 0, *, with_scores: bool = False) -> Session:
    """A hand-made session of ``n`` utterances (alternating therapist/client, times 3 s apart).

    Labels follow a fixed pattern from ``seed`` so tests know them; some utterances carry two.
    """
    utts = []
    for i in range(n):
        speaker = "therapist" if i % 2 == 0 else "client"
        pool = LABEL_POOL[speaker]
        k = (i * 7 + seed * 3) % 11
        labels = [] if k > 3 else [pool[k % len(pool)]]
        if k == 0:
            labels.append(pool[(k + 1) % len(pool)])
        u = Utterance(
            id=f"{sid}-u{i + 1:04d}",
            turn=i,
            speaker=speaker,
            speaker_name="Dr. Park" if i % 2 == 0 else None,
            text=f"{'Therapist' if i % 2 == 0 else 'Client'} line {i + 1} of {sid}.",
            start=round(3.0 * i, 1),
            end=round(3.0 * i + 2.4, 1),
            labels=sorted(labels),
        )
        if with_scores:
            u.scores = {l: (0.9 if l in labels else 0.05 + 0.4 * ((i + j) % 3) / 2) for j, l in enumerate(pool)}
        utts.append(u)
    return Session(session_id=sid, utterances=utts, meta={"source": "hand-made test", "therapy": "cbt"})


def labels_by_id(sessions) -> dict[str, list[str]]:
    return {u.id: sorted(u.labels or []) for s in sessions for u in s.utterances}


def accept_predictions(client, project_id: int, *, completed_by: int | None = None) -> int:
    """Submit every task's pre-annotation unchanged as an annotation (as an annotator's submit)."""
    sdk = client.sdk
    n = 0
    for t in sdk.tasks.list(project=project_id, fields="all"):
        pred = t.predictions[0]
        result = pred["result"] if isinstance(pred, dict) else pred.result
        pid = pred["id"] if isinstance(pred, dict) else pred.id
        kw = {"completed_by": completed_by} if completed_by else {}
        sdk.annotations.create(id=t.id, result=result, was_cancelled=False, parent_prediction=pid, **kw)
        n += 1
    return n


def tasks_by_key(client, project_id: int) -> dict[str, object]:
    return {t.data["task_key"]: t for t in client.sdk.tasks.list(project=project_id, fields="all")}


# --------------------------------------------------------------------------- a real browser
def chromium_path() -> str | None:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class Browser:
    """Headless Chromium driven over the DevTools protocol through a pipe (stdlib only).

    ``open(url, cookies)`` loads a page; ``js(expr)`` evaluates JavaScript there and returns
    the value. Messages are JSON, NUL-terminated, on file descriptors 3 (to Chromium) and 4.
    """

    def __init__(self, profile_dir: Path):
        import fcntl

        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        # keep the child's ends clear of 3 and 4 before the shell moves them there
        hi = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_r, from_w)]
        os.close(to_r)
        os.close(from_w)
        cmd = (
            f'exec 3<&{hi[0]} 4>&{hi[1]} {hi[0]}<&- {hi[1]}>&-; exec "$0" --headless=new --no-sandbox '
            f"--disable-gpu --remote-debugging-pipe --user-data-dir={profile_dir} --window-size=1400,1300 "
            "about:blank"
        )
        self.proc = subprocess.Popen(
            ["bash", "-c", cmd, chromium_path()], pass_fds=hi, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for fd in hi:
            os.close(fd)
        self._w, self._r = to_w, from_r
        self._buf = b""
        self._id = 0
        self.session: str | None = None

    def _send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30):
        import json
        import select

        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError(f"no answer from Chromium to {method}")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk

    def open(self, url: str, cookies: dict[str, str], cookie_url: str) -> None:
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self._send("Network.enable", session=self.session)
        for k, v in cookies.items():
            self._send("Network.setCookie", {"name": k, "value": v, "url": cookie_url}, session=self.session)
        self._send("Page.navigate", {"url": url}, session=self.session)

    def js(self, expression: str):
        r = self._send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=self.session)
        return r.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 90):
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.js(expression)
            if v:
                return v
            time.sleep(0.3)
        raise TimeoutError(f"the page never satisfied: {expression}")

    def screenshot(self, path: Path) -> None:
        import base64

        data = self._send("Page.captureScreenshot", {"format": "png"}, session=self.session)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self._send("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - it may already be gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        os.close(self._w)
        os.close(self._r)


def login_cookies(url: str, email: str, password: str) -> dict[str, str]:
    """Log in to Label Studio's web UI as a person would; returns the session cookies."""
    import http.cookiejar
    import urllib.parse
    import urllib.request

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(url + "/user/login", timeout=30).read()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode({"email": email, "password": password, "csrfmiddlewaretoken": csrf}).encode()
    opener.open(
        urllib.request.Request(url + "/user/login", data=form, headers={"Referer": url + "/user/login"}), timeout=30
    ).read()
    cookies = {c.name: c.value for c in jar}
    assert "sessionid" in cookies, "login to the Label Studio UI failed"
    return cookies
