#!/usr/bin/env python3
"""Time ``rupture train`` on a *fully coded* corpus of about 6,000 utterances.

In a fully coded corpus every utterance carries a code (as in motivational-interviewing coding),
so sampling unlabelled utterances saves nothing: every utterance is trained on every epoch. This
script makes one from the bundled training split: whole sessions until ``--utterances``, the 3RS
schema plus a category ``other`` whose label ``other/no_marker`` goes on every utterance without a
3RS label. Then it runs ``rupture train`` (its defaults, baselines included; ``--arch`` to choose)
in a subprocess and prints the wall-clock minutes and the dev scores it reported.

    python scripts/bench_train.py [--utterances 6000] [--arch session] [--threads 2] [--extra ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def fully_coded(src: Path, dev_src: Path, n_utts: int, out: Path) -> tuple[Path, Path, Path, int]:
    """(train file, dev file, schema file, training utterances) of a fully coded copy."""
    from rupture_nlp.records import read_sessions, write_sessions
    from rupture_nlp.schema import default_schema_path

    schema = yaml.safe_load(default_schema_path().read_text())
    schema["name"] = "3rs-fully-coded"
    schema["categories"].append({"id": "other", "exclusive": False, "description": "No 3RS marker."})
    schema["labels"].append(
        {
            "id": "other/no_marker",
            "category": "other",
            "speaker": "any",
            "description": "The utterance carries no 3RS marker or repair.",
        }
    )
    (out / "schema.yaml").write_text(yaml.safe_dump(schema, sort_keys=False))

    def coded(path: Path, limit: int | None) -> tuple[list, int]:
        picked, n = [], 0
        for s in read_sessions(path):
            if limit is not None and n >= limit:
                break
            for u in s.utterances:
                u.labels = list(u.labels or []) or ["other/no_marker"]
            picked.append(s)
            n += len(s.utterances)
        return picked, n

    train, n = coded(src, n_utts)
    dev, _ = coded(dev_src, n_utts // 4)
    write_sessions(out / "train.jsonl", train)
    write_sessions(out / "dev.jsonl", dev)
    return out / "train.jsonl", out / "dev.jsonl", out / "schema.yaml", n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", default=str(ROOT / "corpora" / "train.jsonl"))
    ap.add_argument("--dev", default=str(ROOT / "corpora" / "dev.jsonl"))
    ap.add_argument("--utterances", type=int, default=6000)
    ap.add_argument("--arch", default="session")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `rupture train` options")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        tr, dv, sc, n = fully_coded(Path(a.train), Path(a.dev), a.utterances, Path(tmp))
        cmd = [
            str(Path(sys.executable).parent / "rupture"),
            "train",
            "--train",
            str(tr),
            "--dev",
            str(dv),
            "--schema",
            str(sc),
            "--out",
            str(Path(tmp) / "model"),
            "--arch",
            a.arch,
            "--threads",
            str(a.threads),
            *a.extra,
        ]
        print(f"fully coded corpus: {n} training utterances (every one labelled); {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        minutes = (time.perf_counter() - t0) / 60
        print(r.stdout.strip())
        if r.returncode:
            print(r.stderr[-2000:], file=sys.stderr)
            return 1
        print(f"rupture train --arch {a.arch} on {n} fully coded utterances: {minutes:.1f} min (target <= 15)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
