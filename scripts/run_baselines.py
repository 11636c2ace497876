#!/usr/bin/env python3
"""Train the baselines (every registered one) on the corpus and score them on dev and test.

    .venv/bin/python scripts/run_baselines.py [--corpus corpora] [--out runs/baselines-only] [--bootstrap N]

Prints training times and fine/coarse macro-F1 (with session-bootstrap 95% CIs) on dev and test, and
writes ``OUT/baselines/<name>`` plus ``OUT/eval_{dev,test}.json`` (``rupture evaluate`` results
of a directory holding only the baselines). The same numbers come from ``rupture evaluate --model OUT``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpora")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "baselines-only")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()

    from rupture_nlp.atomic import atomic_write_text
    from rupture_nlp.report.evaluation import format_report
    from rupture_nlp.schema import load_schema
    from rupture_nlp.scoring import load_gold_sessions, result_to_json
    from rupture_nlp.workflow import evaluate_model_dir, train_baselines

    schema = load_schema(None)
    train = load_gold_sessions(args.corpus / "train.jsonl", schema)
    dev = load_gold_sessions(args.corpus / "dev.jsonl", schema)
    t0 = time.perf_counter()
    info = train_baselines(train, dev, schema, args.out, seed=args.seed)
    total = time.perf_counter() - t0
    print(f"train: {len(train)} sessions, {sum(len(s.utterances) for s in train)} utterances; dev: {len(dev)} sessions")
    for name, i in info.items():
        print(f"{name}: trained in {i['train_seconds']:.1f} s")
    print(f"all baselines (incl. saving and dev scoring): {total:.1f} s")
    summary = {"training": info, "total_seconds": round(total, 1)}
    for split in ("dev", "test"):
        path = args.corpus / f"{split}.jsonl"
        if not path.is_file():
            continue
        res = evaluate_model_dir(args.out, path, n_boot=args.bootstrap, seed=args.seed)
        atomic_write_text(args.out / f"eval_{split}.json", result_to_json(res))
        print(f"\n## {split}\n")
        print(format_report(res, per_label=False))
        summary[split] = {
            n: {
                "fine_macro_f1": r["fine"]["macro"]["f1"],
                "fine_macro_f1_ci": r["fine"]["macro"]["f1_ci"],
                "coarse_macro_f1": r["coarse"]["macro"]["f1"],
                "coarse_macro_f1_ci": r["coarse"]["macro"]["f1_ci"],
                "fine_micro_f1": r["fine"]["micro"]["f1"],
            }
            for n, r in res["baselines"].items()
        }
    atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
