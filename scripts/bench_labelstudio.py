"""Measure the Label Studio loop: server start, push, re-push, pull — against the bare SDK.

    .venv/bin/python scripts/bench_labelstudio.py [--sessions 200] [--utterances 50] [--annotate 40]

Starts its own server through scripts/labelstudio.sh (free port, temporary data directory) and
stops it at the end. Baselines are measured in the same run: a bare ``import_tasks`` of the same
task payloads (no project lookup, no idempotency check) for push, a bare export download for pull.
The data are synthetic (made up here); no transcript is read.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rupture_nlp.labelstudio import connect, label_config, pull_project, push_sessions  # noqa: E402
from rupture_nlp.labelstudio.tasks import sessions_to_tasks  # noqa: E402
from rupture_nlp.records import Session, Utterance  # noqa: E402
from rupture_nlp.schema import load_schema  # noqa: E402


def synthetic_sessions(n: int, m: int) -> list[Session]:
    schema = load_schema()
    labels = schema.label_ids
    out = []
    for s in range(n):
        utts = []
        for i in range(m):
            speaker = "therapist" if i % 2 == 0 else "client"
            lab = [labels[(s * 7 + i) % len(labels)]] if (s + i) % 6 == 0 else []
            utts.append(
                Utterance(
                    id=f"b{s:04d}-u{i + 1:04d}",
                    turn=i,
                    speaker=speaker,
                    text=f"Synthetic utterance number {i + 1} of session {s}, about twelve words long.",
                    start=3.0 * i,
                    end=3.0 * i + 2.5,
                    labels=lab,
                )
            )
        out.append(Session(session_id=f"b{s:04d}", utterances=utts, meta={"bench": True}))
    return out


def timed(fn):
    t0 = time.perf_counter()
    res = fn()
    return time.perf_counter() - t0, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--utterances", type=int, default=50)
    ap.add_argument("--annotate", type=int, default=40, help="tasks to submit an annotation for before the pull")
    args = ap.parse_args()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="rupture-ls-bench-"))
    token = "bench-" + secrets.token_hex(12)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(
        LABEL_STUDIO_PORT=str(port),
        LABEL_STUDIO_BASE_DATA_DIR=str(tmp / "data"),
        LABEL_STUDIO_USERNAME="bench@rupture.local",
        LABEL_STUDIO_PASSWORD=secrets.token_hex(8),
        LABEL_STUDIO_USER_TOKEN=token,
    )
    script = ["bash", str(ROOT / "scripts" / "labelstudio.sh")]

    def server(cmd: str) -> float:
        t, r = timed(lambda: subprocess.run([*script, cmd], env=env, capture_output=True, text=True))
        if r.returncode:
            sys.exit(f"labelstudio.sh {cmd} failed: {r.stderr.strip()[-500:]}")
        return t

    schema = load_schema()
    sessions = synthetic_sessions(args.sessions, args.utterances)
    try:
        t_start = server("start")
        client = connect(f"http://127.0.0.1:{port}", token)
        tasks = sessions_to_tasks(sessions, schema)
        n_tasks = len(tasks)

        # baseline: the bare SDK import of the same payloads, same batch size
        bare = client.sdk.projects.create(title="bare import", label_config=label_config(schema))
        t_bare = timed(
            lambda: [
                client.sdk.projects.import_tasks(bare.id, request=tasks[i : i + 50]) for i in range(0, n_tasks, 50)
            ]
        )[0]
        t_push, rep = timed(lambda: push_sessions(client, sessions, "bench", schema))
        t_repush, rep2 = timed(lambda: push_sessions(client, sessions, "bench", schema))
        assert rep.imported == n_tasks and rep2.imported == 0

        ids = [t.id for t in client.sdk.tasks.list(project=rep.project_id, fields="all")][: args.annotate]
        preds = {t.id: t.predictions[0] for t in client.sdk.tasks.list(project=rep.project_id, fields="all")}

        def annotate():
            for tid in ids:
                p = preds[tid]
                client.sdk.annotations.create(id=tid, result=p["result"] if isinstance(p, dict) else p.result)

        t_ann = timed(annotate)[0]

        t_bare_export = timed(
            lambda: b"".join(
                client.sdk.projects.exports.download_sync(rep.project_id, export_type="JSON", download_all_tasks=True)
            )
        )[0]
        t_pull, prep = timed(lambda: pull_project(client, "bench", tmp / "pulled.jsonl", schema, include_partial=True))
        server("stop")
        t_restart = server("start")
    finally:
        subprocess.run([*script, "stop"], env=env, capture_output=True)

    n_utt = args.sessions * args.utterances
    print(f"tasks: {n_tasks} ({args.sessions} sessions x {args.utterances} utterances = {n_utt} utterances)")
    print(f"server start, new data dir: {t_start:.1f} s; restart: {t_restart:.1f} s")
    print(
        f"push:    {t_push:.2f} s ({n_tasks / t_push:.0f} tasks/s); bare SDK import {t_bare:.2f} s; "
        f"ratio {t_push / t_bare:.2f}"
    )
    print(f"re-push: {t_repush:.2f} s (nothing imported); ratio to bare import {t_repush / t_bare:.2f}")
    print(f"annotate {len(ids)} tasks through the API: {t_ann:.2f} s ({t_ann / max(1, len(ids)):.3f} s each)")
    print(
        f"pull:    {t_pull:.2f} s ({prep.annotations} annotations, {prep.sessions_written} sessions); bare export "
        f"{t_bare_export:.2f} s; ratio {t_pull / t_bare_export:.2f}"
    )


if __name__ == "__main__":
    main()
