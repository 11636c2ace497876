#!/usr/bin/env python3
"""Dev-split experiments that choose the default model's design; writes a JSON summary.

Each variant is one ``train_model`` run (same data, same seed) that differs from the reference
(LoRA, mean pooling, 3 context utterances, pause marker + feature) in one setting:

* ``head``: [CLS] pooler vs mean pooling;
* ``weights``: full fine-tuning vs LoRA adapters (the compact form must stay within 2 points);
* ``context``: 1 vs 3 preceding utterances (and 0);
* ``pause``: no pause marker/feature;
* ``sampling``: all unlabelled utterances every epoch vs a sample.

Usage::

    python scripts/model_experiments.py --train corpora/train.jsonl --dev corpora/dev.jsonl \
        --out runs/experiments --summary runs/experiments/summary.json [--only ref,cls,full]
    python scripts/model_experiments.py --svd-from runs/experiments/full --ranks 32,64 --dev corpora/dev.jsonl

Full-weight models are written under ``--out`` (git-ignored ``runs/``), never under ``models/``.
The summary lists per variant: dev fine/coarse macro-F1, best epoch, per-epoch history, wall-clock
seconds, size of what a commit would hold.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

from rupture_nlp.model.inputs import InputConfig
from rupture_nlp.model.train import TrainConfig
from rupture_nlp.workflow import train_model

REF = dict(weights="lora", pooling="mean", epochs=3)


def variants() -> dict[str, tuple[str, str, dict]]:
    """name -> (group, description, TrainConfig overrides)."""
    return {
        "ref": ("reference", "LoRA, mean pooling, context 3, pause marker + feature", {}),
        "cls": ("head", "[CLS] pooler head", {"pooling": "cls"}),
        "full": ("weights", "full fine-tuning (mean pooling)", {"weights": "full"}),
        "ctx1": ("context", "1 context utterance", {"input": InputConfig(context=1)}),
        "ctx0": ("context", "no context", {"input": InputConfig(context=0)}),
        "ctx5": ("context", "5 context utterances", {"input": InputConfig(context=5)}),
        "nopause": (
            "pause",
            "no pause marker or feature",
            {"input": InputConfig(pause_marker=False, pause_feature=False)},
        ),
        "allneg": ("sampling", "all unlabelled utterances every epoch", {"unlabelled_ratio": None}),
        "ep4": ("epochs", "4 epochs (patience 1)", {"epochs": 4}),
    }


def dir_size(path: Path, exclude: tuple[str, ...] = ("baselines",)) -> int:
    return sum(
        p.stat().st_size
        for p in path.rglob("*")
        if p.is_file() and not any(part in exclude for part in p.relative_to(path).parts)
    )


def svd_experiments(args: argparse.Namespace) -> int:
    """LoRA adapters extracted from a full fine-tuning at several ranks, scored on dev."""
    from rupture_nlp.decision import label_matrix, tune_thresholds
    from rupture_nlp.model.compact import lora_from_full
    from rupture_nlp.scoring import evaluate_predictions, load_gold_sessions

    summary_path = Path(args.summary)
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {"runs": {}}
    full_run = summary["runs"].get("full", {})
    for rank in [int(r) for r in args.ranks.split(",")]:
        name = f"svd-r{rank}"
        out = Path(args.out) / name
        t0 = time.perf_counter()
        clf, stats = lora_from_full(args.svd_from, out, rank)
        dev = load_gold_sessions(args.dev, clf.schema)
        P = clf.predict_proba(dev)
        clf.thresholds = tune_thresholds(label_matrix(dev, clf.schema), P)
        clf.save_thresholds(out)
        r = evaluate_predictions(dev, P, clf.schema, clf.thresholds, n_boot=0)
        secs = time.perf_counter() - t0
        summary["runs"][name] = {
            "group": "weights",
            "variant": f"LoRA rank {rank} extracted from the full fine-tuning (SVD)",
            "dev_macro_f1": round(r["fine"]["macro"]["f1"], 4),
            "dev_coarse_macro_f1": round(r["coarse"]["macro"]["f1"], 4),
            "best_epoch": full_run.get("best_epoch"),
            "train_seconds": full_run.get("train_seconds"),
            "extract_seconds": round(secs, 1),
            "size_bytes": dir_size(out),
            "svd": stats,
            "data": {"dev": args.dev},
            "source": args.svd_from,
        }
        print(
            f"{name}: dev macro-F1 fine {r['fine']['macro']['f1']:.4f} coarse {r['coarse']['macro']['f1']:.4f}, "
            f"{dir_size(out) / 1e6:.1f} MB, {stats}",
            flush=True,
        )
        tmp = summary_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        tmp.replace(summary_path)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", default="corpora/train.jsonl")
    ap.add_argument("--dev", default="corpora/dev.jsonl")
    ap.add_argument("--out", default="runs/experiments")
    ap.add_argument("--summary", default="runs/experiments/summary.json")
    ap.add_argument("--only", default="ref,cls,full,ctx1,nopause", help="comma-separated variant names")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--svd-from",
        default=None,
        help="a full fine-tuned model directory: extract LoRA adapters "
        "from it by truncated SVD at --ranks and score them on --dev (no training)",
    )
    ap.add_argument("--ranks", default="16,32,64")
    args = ap.parse_args()
    lines = logging.StreamHandler(sys.stdout)  # the library's lines (per-epoch summaries), not spaCy's
    lines.setFormatter(logging.Formatter("  %(message)s"))
    logging.getLogger("rupture_nlp").addHandler(lines)
    logging.getLogger("rupture_nlp").setLevel(logging.INFO)
    if args.svd_from:
        return svd_experiments(args)
    table = variants()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in table]
    if unknown:
        print(f"unknown variant(s): {unknown}; known: {list(table)}", file=sys.stderr)
        return 2
    summary_path = Path(args.summary)
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {"runs": {}}
    for name in names:
        group, desc, over = table[name]
        cfg = replace(
            TrainConfig(name=f"exp-{name}", baselines=False, n_boot=0, threads=args.threads, log_every=25, **REF),
            **over,
        )
        out = Path(args.out) / name
        print(f"== {name}: {desc}", flush=True)
        t0 = time.perf_counter()
        res = train_model(args.train, args.dev, out, config=cfg, seed=args.seed)  # epochs: logged, indented
        secs = time.perf_counter() - t0
        summary["runs"][name] = {
            "group": group,
            "variant": desc,
            "dev_macro_f1": round(res.dev_macro_f1, 4),
            "dev_coarse_macro_f1": round(res.dev_coarse_macro_f1, 4),
            "best_epoch": res.best_epoch,
            "history": res.history,
            "train_seconds": round(res.timings["model_seconds"], 1),
            "wall_seconds": round(secs, 1),
            "size_bytes": dir_size(out),
            "config": cfg.to_dict(),
            "data": {"train": args.train, "dev": args.dev},
            "seed": args.seed,
        }
        print(
            f"   -> dev macro-F1 fine {res.dev_macro_f1:.4f} coarse {res.dev_coarse_macro_f1:.4f} "
            f"in {secs / 60:.1f} min",
            flush=True,
        )
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = summary_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        tmp.replace(summary_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
