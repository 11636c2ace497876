#!/usr/bin/env python3
"""Benchmark ``rupture tag --engine ray`` against the local engine, in one run on the same corpus.

The corpus: ``--sessions`` canonical JSONL files of one session each, made from the sessions of
``corpora/dev.jsonl`` (cycled; each copy renamed, cut to its first ``--utterances`` utterances so
that a run takes minutes). Tagged by the local engine (``--threads`` torch threads, default: the
machine's cores), by Ray with 1 worker and by Ray with 2 workers (embedded Ray, 1 torch thread per
actor, so that 2 actors share 2 cores without oversubscription). Each run is a fresh process; the
script prints per run the utterances/s over the whole call (Ray's start-up included) and in steady
state (from the first tagged session in the journal to the end), their ratios, and the driver's
peak resident memory (VmHWM of the process that called ``tag_files``; Ray's own processes not
included). Last, Ray's overhead on the 5 example transcripts of ``corpora/examples`` against the
local engine.

    nice -n 19 .venv/bin/python scripts/bench_scaleout.py [--sessions 200] [--utterances 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "rupture-3rs-minilm"


def make_corpus(folder: Path, n_sessions: int, n_utt: int) -> list[Path]:
    sessions = [
        json.loads(line)
        for line in (ROOT / "corpora" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n_sessions):
        s = dict(sessions[k % len(sessions)])
        s["session_id"] = f"{s['session_id']}-c{k:04d}"
        s["utterances"] = [{**u, "labels": [], "scores": {}} for u in s["utterances"][:n_utt]]
        p = folder / f"{s['session_id']}.jsonl"
        p.write_text(json.dumps(s, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(p)
    return paths


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_run(spec: dict) -> dict:
    """In a fresh process: one tag_files call; its timings and this process's peak memory."""
    from rupture_nlp.tagging import tag_files

    first: list[float] = []

    def progress(event) -> None:
        if not first and event.message and not event.message.startswith("0 "):
            first.append(time.perf_counter())

    paths = [Path(p) for p in spec["inputs"]]
    t0 = time.perf_counter()
    rep = tag_files(paths, spec["model"], spec["out"], progress=progress, resume=False, **spec["options"])
    t1 = time.perf_counter()
    steady = t1 - first[0] if first else float("nan")
    return {
        "seconds": t1 - t0,
        "steady_seconds": steady,
        "utterances": rep.utterances,
        "sessions": rep.sessions,
        "failed": len(rep.failed),
        "peak_rss_mib": peak_rss_mib(),
    }


def run_in_child(inputs: list[Path], out: Path, options: dict, model: Path) -> dict:
    spec = {"inputs": [str(p) for p in inputs], "out": str(out), "options": options, "model": str(model)}
    r = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, "RUPTURE_PROGRESS": "0"},
    )
    if r.returncode != 0:
        raise SystemExit(f"run {options} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--utterances", type=int, default=20, help="Utterances kept per session (default 20).")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="Torch threads of the local engine.")
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_run(json.loads(args.one))))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    try:
        return bench(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench(args: argparse.Namespace, tmp: Path) -> int:
    paths = make_corpus(tmp / "in", args.sessions, args.utterances)
    runs = {
        f"local ({args.threads} threads)": {"threads": args.threads},
        "ray, 1 worker": {"engine": "ray", "workers": 1, "threads": 1},
        "ray, 2 workers": {"engine": "ray", "workers": 2, "threads": 1},
    }
    res = {}
    print(
        f"corpus: {len(paths)} sessions of up to {args.utterances} utterances, model {args.model.name}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    for name, opts in runs.items():
        res[name] = r = run_in_child(paths, tmp / f"{len(res)}.jsonl", opts, args.model)
        print(
            f"  {name:<22} {r['utterances'] / r['seconds']:7.1f} utt/s overall ({r['seconds']:.1f} s), "
            f"{r['utterances'] / r['steady_seconds']:7.1f} utt/s steady; driver peak RSS {r['peak_rss_mib']:.0f} MiB"
            f"; {r['utterances']} utterances",
            flush=True,
        )
    local, one, two = (res[k] for k in runs)

    def ratio(a: dict, b: dict, key: str) -> float:
        return (a["utterances"] / a[key]) / (b["utterances"] / b[key])

    print(
        f"ratios (overall / steady): ray 2 workers vs 1 worker {ratio(two, one, 'seconds'):.2f}x / "
        f"{ratio(two, one, 'steady_seconds'):.2f}x; ray 1 worker vs local {ratio(one, local, 'seconds'):.2f}x / "
        f"{ratio(one, local, 'steady_seconds'):.2f}x; ray 2 workers vs local {ratio(two, local, 'seconds'):.2f}x / "
        f"{ratio(two, local, 'steady_seconds'):.2f}x"
    )
    examples = sorted((ROOT / "corpora" / "examples").iterdir())
    el = run_in_child(examples, tmp / "ex-local.jsonl", {"threads": args.threads}, args.model)
    er = run_in_child(examples, tmp / "ex-ray.jsonl", {"engine": "ray", "threads": 1}, args.model)
    print(
        f"5 example transcripts ({el['utterances']} utterances): local {el['seconds']:.1f} s, ray (embedded, "
        f"{os.cpu_count()} workers) {er['seconds']:.1f} s: overhead {er['seconds'] - el['seconds']:+.1f} s "
        f"({er['seconds'] / el['seconds']:.2f}x); driver peak RSS local {el['peak_rss_mib']:.0f} MiB, "
        f"ray {er['peak_rss_mib']:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
