#!/usr/bin/env python3
"""Rebuild the bundled default model ``models/rupture-3rs-minilm`` from the bundled corpus.

    python scripts/build_corpus.py            # corpora/{train,dev,test}.jsonl
    python scripts/build_default_model.py     # this script (time: see the card's speed section)

What it does (the design was chosen by session cross-validation, ``scripts/session_design_cv.py``;
see the card's design table):

1. the session recipe (``RECIPE`` below; ``rupture train --arch session``): one ASR-style
   rendering of each training session added; all-MiniLM-L6-v2 fully fine-tuned on single
   utterances (mean pooling, embeddings frozen, seed 13) with early stopping on
   ``corpora/dev.jsonl``; the dialogue head trained on the vectors of every utterance; one
   threshold per category tuned on dev for unbiased counts -> ``runs/rupture-3rs-minilm-full``
   (git-ignored, 90 MB);
2. the compact form that is committed: the encoder's weight updates as rank-64 int8 LoRA
   factors (truncated SVD; ``rupture_nlp.model.compact``) over the hash-checked base, with the
   thresholds re-tuned on dev;
3. the baselines (every one registered in ``rupture_nlp.baselines``: TF-IDF, spaCy textcat)
   trained on the same split (``baselines/``);
4. dev metrics with bootstrap CIs (``metrics.json``); test-split metrics of the model and the
   baselines on the clean and ASR test files, by utterance and on whole sessions
   (``test*_metrics.json``); the model card (``README.md``) with the design experiments
   (``experiments.json``, kept from the previous build unless ``--experiments``).

``--from-full DIR`` skips step 1 and uses an existing full fine-tuned model directory. The new
model is built next to the old one and swapped in only when complete.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "models" / "rupture-3rs-minilm"
DEFAULT_FULL = ROOT / "runs" / "rupture-3rs-minilm-full"
RANK = 64
DTYPE = "int8"
SEED = 13
# the recipe of the default model (chosen by 5-fold session cross-validation, see the card's design table)
RECIPE = dict(
    max_length=64,
    lr=1e-4,
    epochs=2,
    batch_size=32,
    unlabelled_ratio=1.5,
    patience=2,
    freeze_encoder=False,
    asr_copies=1,
    window=64,
    hidden=256,
    two_stage=True,
    marker_window=8,
    threshold_mode="count",
    head_epochs=12,
)


# inference backends measured by scripts/bench_tag.py against torch (the card's speed note)
BACKENDS = (
    ("tag-onnx", "ONNX Runtime (the encoder exported, same tagging path)"),
    ("tag-openvino", "OpenVINO float32"),
    (
        "tag-openvino-int8",
        "OpenVINO static int8 (NNCF, 300 calibration utterances of the training split, clean and ASR-style)",
    ),
)


def comparison_rows(summary: dict) -> list[dict]:
    rows = []
    for name, r in (summary.get("runs") or {}).items():
        note = f"best epoch {r.get('best_epoch')}" if r.get("best_epoch") else ""
        if r.get("size_bytes"):
            note += f"; {r['size_bytes'] / 1e6:.1f} MB on disk (float32)"
        if r.get("note"):
            note += f"; {r['note']}"
        rows.append(
            {
                "group": r.get("group", name),
                "variant": r.get("variant", name),
                "dev_macro_f1": r.get("dev_macro_f1"),
                "dev_coarse_macro_f1": r.get("dev_coarse_macro_f1"),
                "train_seconds": r.get("train_seconds"),
                "note": note.strip("; "),
            }
        )
    order = [
        "reference",
        "head",
        "weights",
        "training",
        "context",
        "pause",
        "sampling",
        "epochs",
        "thresholds",
        "storage",
    ]
    return sorted(rows, key=lambda r: order.index(r["group"]) if r["group"] in order else 99)


def card_notes(metrics: dict, extra: dict) -> dict:
    """The card's notes: how the compact form was made, and how the test split came out."""
    notes = []
    c = metrics.get("compact") or {}
    f = c.get("full_dev_macro_f1") or {}
    if c:
        notes.append(
            f"**Compact form.** The encoder is fully fine-tuned (embeddings frozen) and its weight updates are "
            f"stored as rank-{c.get('rank')} LoRA factors (truncated SVD; {c.get('energy_kept_mean', 0):.0%} of the "
            f"updates' energy on average) as {c.get('dtype', 'float16')}"
            f"{' with a float16 scale per row' if c.get('dtype') == 'int8' else ''}, LayerNorm weights and biases as "
            f"float16, over the hash-checked base; the head is stored as it was trained. With thresholds re-tuned on "
            f"dev this keeps {metrics['dev_macro_f1']['fine']:.3f} fine / {metrics['dev_macro_f1']['coarse']:.3f} "
            f"coarse dev macro-F1 (full model: {f.get('fine', float('nan')):.3f} / {f.get('coarse', float('nan')):.3f})."
        )
    test = extra.get("test")
    if test:
        m_f, m_c = test["fine"]["macro"]["f1"], test["coarse"]["macro"]["f1"]
        beaten = [
            n
            for n, b in test["baselines"].items()
            if m_f > b["fine"]["macro"]["f1"] and m_c > b["coarse"]["macro"]["f1"]
        ]
        lost = [
            f"{n} (fine {b['fine']['macro']['f1']:.3f}, coarse {b['coarse']['macro']['f1']:.3f})"
            for n, b in test["baselines"].items()
            if n not in beaten
        ]
        line = f"**Test split.** Fine macro-F1 {m_f:.3f}, coarse {m_c:.3f}. " + (
            f"It beats {', '.join(beaten)} on both levels. " if beaten else ""
        )
        if lost:
            line += f"It does **not** beat {', '.join(lost)} on both levels."
        notes.append(line)
    asr = extra.get("test_asr")
    if asr:
        icc = asr.get("session_icc") or {}
        notes.append(
            f"**ASR rendering of the test split** (`{asr['data']['path']}`: the same sessions as speech "
            f"recognition and diarization would deliver them, re-segmented; never trained on). Fine macro-F1 "
            f"{asr['fine']['macro']['f1']:.3f}, coarse {asr['coarse']['macro']['f1']:.3f}; "
            + "; ".join(
                f"{n} fine {b['fine']['macro']['f1']:.3f}, coarse {b['coarse']['macro']['f1']:.3f}"
                for n, b in asr["baselines"].items()
            )
            + ". Session ICC(2,1) "
            + ", ".join(
                f"{c} {v['icc']:.2f} (mean count {v['pred_mean']:.1f} predicted vs {v['gold_mean']:.1f} gold)"
                for c, v in icc.items()
                if v.get("icc") is not None
            )
            + "."
        )
    for key, what in (("test_whole", "clean"), ("test_whole_asr", "ASR rendering")):
        w = extra.get(key)
        if w:
            icc = w.get("session_icc") or {}
            mic = w["coarse"]["micro"]
            notes.append(
                f"**Realistic check ({what})**: the test split's {w['data']['sessions']} whole sessions written for corpus v2 "
                f"(therapy hours and health consultations, {w['data']['utterances']:,} units, markers at their own low "
                f"base rates). Fine macro-F1 {w['fine']['macro']['f1']:.3f}, coarse {w['coarse']['macro']['f1']:.3f}; "
                f"coarse micro precision {mic['precision']:.2f}, recall {mic['recall']:.2f}; mean count per session "
                + ", ".join(f"{c} {v['pred_mean']:.1f} predicted vs {v['gold_mean']:.1f} gold" for c, v in icc.items())
                + "; "
                + ", ".join(
                    f"{n} coarse {b['coarse']['macro']['f1']:.3f}" for n, b in (w.get("baselines") or {}).items()
                )
                + "."
            )
    if test and test.get("session_icc"):
        notes.append(
            "**Count bias on the test split** (mean per-session count of utterances with a marker of the "
            "category, predicted vs gold): "
            + ", ".join(f"{c} {v['pred_mean']:.1f} vs {v['gold_mean']:.1f}" for c, v in test["session_icc"].items())
            + ". "
            + extra.get("count_note", "")
        )
    if extra.get("not_measured"):
        notes.append(extra["not_measured"])
    bench = extra.get("bench")
    if bench:
        by = {r["kind"]: r for r in bench["results"]}
        naive = by.get("naive", {}).get("utt_per_s")
        parts = [
            f"{k} {by[k]['utt_per_s']:.1f} utt/s" + (f" ({by[k]['utt_per_s'] / naive:.1f}x)" if naive else "")
            for k in ("naive", "tag", "tag-unsorted", "tag-int8", "tag-onnx", "tag-openvino", "tag-openvino-int8")
            if k in by
        ]
        line = (
            f"**Speed** (`scripts/bench_tag.py`, {bench['utterances']} dev utterances, "
            f"{bench.get('note', '2 threads')}): " + "; ".join(parts) + ". "
        )
        if "tag-int8" in by and by["tag"].get("macro_f1") and by["tag-int8"].get("macro_f1"):
            df, dc = ((by["tag-int8"]["macro_f1"][k] - by["tag"]["macro_f1"][k]) * 100 for k in ("fine", "coarse"))
            line += (
                f"Dynamic int8 quantisation in torch ran at {by['tag-int8']['utt_per_s'] / by['tag']['utt_per_s']:.2f}x "
                f"with {df:+.1f} points of fine and {dc:+.1f} of coarse macro-F1 on that sample"
                + (
                    ", a loss of more than a point, so the model runs in float32. "
                    if min(df, dc) < -1
                    else " (`quantize: int8`; the default stays float32). "
                )
            )
        for kind, what in BACKENDS:
            if kind in by and by["tag"].get("macro_f1") and by[kind].get("macro_f1"):
                d = (by["tag"]["macro_f1"]["fine"] - by[kind]["macro_f1"]["fine"]) * 100
                ratio = by[kind]["utt_per_s"] / by["tag"]["utt_per_s"]
                line += (
                    f"{what} ran at {ratio:.2f}x the speed of torch with {-d:+.1f} points of fine macro-F1 "
                    f"(peak {by[kind]['peak_rss_mib']:.0f} MiB vs {by['tag']['peak_rss_mib']:.0f})"
                    + (": faster within 1 point. " if ratio > 1.05 and d <= 1 else ": not worth a dependency. ")
                )
        if bench.get("backend_note"):
            line += bench["backend_note"]
        notes.append(line)
    prev = extra.get("bench_previous")
    if bench and prev and not extra.get("bench_meets_target"):
        pb = {r["kind"]: r for r in prev["results"]}
        if "naive" in pb and "tag" in pb:
            notes.append(
                f"The aim of 4x over the naive loop is not met on an idle machine. Measured with the earlier model "
                f"({prev.get('note', '')}), the ratio was {pb['tag']['utt_per_s'] / pb['naive']['utt_per_s']:.1f}x "
                f"(naive {pb['naive']['utt_per_s']:.1f} utt/s): a loop of single calls suffers most from a busy "
                "machine. Idle, the network is compute-bound: its linear layers take about three quarters of the "
                "time at 60-75% of the two cores' float32 peak (by a count of their multiply-adds), and a per-utterance loop wastes no padding, so "
                "batching, length sorting and inference mode can only win on cache and matrix-kernel efficiency. What "
                "was tried beyond that, dynamic int8 (per tensor; per channel lost 4.5 points) and ONNX Runtime, "
                "either loses more than a point or gains nothing."
            )
    for key, text in (extra.get("extra_notes") or {}).items():
        notes.append(text)
    return {"notes": notes}


def cv_table(rows: list[dict]) -> str:
    """The design table of the session model: 5-fold session cross-validation rows, markdown."""

    def ms(v: list | None) -> str:
        return "–" if not v else f"{v[0]:.3f} ± {v[1]:.3f}"

    head = (
        "| design | folds | CV fine macro-F1 | CV coarse macro-F1 | session ICC W / C / R | predicted / gold "
        "count W / C / R | repair precision | note |"
    )
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        icc = r.get("cv_icc")
        cnt = r.get("cv_pred_over_gold")
        lines.append(
            f"| {r['variant']} | {r.get('folds', '–')} | {ms(r.get('cv_fine'))} | {ms(r.get('cv_coarse'))} | "
            + (" / ".join(f"{x:.2f}" for x in icc) if icc else "–")
            + " | "
            + (" / ".join(f"{x:.2f}" for x in cnt) if cnt else "–")
            + " | "
            + (f"{r['cv_repair_precision']:.3f}" if r.get("cv_repair_precision") is not None else "–")
            + f" | {r.get('note', '')} |"
        )
    return "\n".join(lines)


def summary_extra(summary: dict) -> dict:
    """What the card's notes take from the design summary (see card_notes)."""
    runs = summary.get("runs") or {}
    extra: dict = {}
    for key in ("count_note", "not_measured", "bench_meets_target"):
        if summary.get(key):
            extra[key] = summary[key]
    if summary.get("cv_design"):
        d = summary["cv_design"]
        extra.setdefault("extra_notes", {})["cv_design"] = (
            f"## How the design was chosen\n\n{d['intro']}\n\n{cv_table(d['rows'])}\n\n{d.get('after', '')}"
        )
    if runs.get("ref"):
        extra["lora_trained_f1"] = f"{runs['ref']['dev_macro_f1']:.3f}"
    if runs.get("full"):
        extra["full_same_schedule_f1"] = f"{runs['full']['dev_macro_f1']:.3f}"
    for key in ("bench", "bench_previous"):
        if summary.get(key):
            extra[key] = summary[key]
    if (summary.get("corpus") or {}).get("note"):
        extra["comparisons_data"] = summary["corpus"]["note"]
    return extra


TEST_FILES = {
    "test": "test_metrics.json",
    "test_asr": "test_asr_metrics.json",
    "test_whole": "test_whole_metrics.json",
    "test_whole_asr": "test_whole_asr_metrics.json",
}
#: the realistic check: the test split's whole sessions written for corpus v2 (40-47 minute therapy hours and
#: 11-16 minute health consultations) at their own base rates, not the rupture-dense stretches
WHOLE_PREFIX = "v2"


def _whole_sessions_file(src: str, tmp: Path, key: str) -> Path | None:
    from rupture_nlp.records import read_sessions, write_sessions

    if not src or not Path(src).is_file():
        return None
    out = tmp / f"{key}.jsonl"
    write_sessions(out, [s for s in read_sessions(src) if s.session_id.startswith(WHOLE_PREFIX)])
    return out


def evaluate_tests(out: Path, final: Path, args: argparse.Namespace) -> dict:
    """Evaluate the model directory ``out`` (to be moved to ``final``) on the clean test split and
    on its ASR rendering; writes ``test_metrics.json`` / ``test_asr_metrics.json`` (paths relative
    to the repository) and returns them as ``{"test": ..., "test_asr": ...}``."""
    from rupture_nlp.scoring import result_to_json
    from rupture_nlp.workflow import evaluate_model_dir
    import tempfile

    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        whole = {
            k: _whole_sessions_file(src, Path(tmp), k)
            for k, src in (("test_whole", args.test), ("test_whole_asr", args.test_asr))
        }
        for key, data_path in (
            ("test", args.test),
            ("test_asr", args.test_asr),
            ("test_whole", whole["test_whole"]),
            ("test_whole_asr", whole["test_whole_asr"]),
        ):
            if not data_path or not Path(data_path).is_file():
                continue
            r = evaluate_model_dir(out, data_path)
            fin = final.resolve()
            r["model"]["dir"] = str(fin.relative_to(ROOT)) if fin.is_relative_to(ROOT) else fin.name
            if key.startswith("test_whole"):
                src = Path(args.test if key == "test_whole" else args.test_asr).resolve()
                r["data"]["path"] = (
                    f"{src.relative_to(ROOT) if src.is_relative_to(ROOT) else src.name}, sessions {WHOLE_PREFIX}*"
                )
            else:
                data = Path(r["data"]["path"]).resolve()
                r["data"]["path"] = str(data.relative_to(ROOT)) if data.is_relative_to(ROOT) else data.name
            text = result_to_json(r)
            (out / TEST_FILES[key]).write_text(text)
            res[key] = json.loads(text)
    return res


def refresh_card(out: Path, summary: dict, extra_notes: dict | None = None) -> None:
    """Re-render README.md of a built model (e.g. after more experiments finished)."""
    from rupture_nlp.workflow import write_card

    metrics = json.loads((out / "metrics.json").read_text())
    extra: dict = {"comparisons": comparison_rows(summary)} if summary else {}
    extra.update(summary_extra(summary))
    for key, name in TEST_FILES.items():
        if (out / name).is_file():
            extra[key] = json.loads((out / name).read_text())
    extra["extra_notes"] = {**(extra.get("extra_notes") or {}), **(extra_notes or {})}
    extra.update(card_notes(metrics, extra))
    if summary:
        (out / "experiments.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_card(out, extra, metrics=metrics)


def recipe_config(threads: int | None = None, **over):
    """The TrainConfig of the default model (the session recipe; ``over`` replaces fields)."""
    from rupture_nlp.model.architectures import session_input_config
    from rupture_nlp.model.session import SessionConfig
    from rupture_nlp.model.session_train import HeadTrainConfig
    from rupture_nlp.model.train import TrainConfig

    r = {**RECIPE, **over}
    return TrainConfig(
        name="rupture-3rs-minilm-full",
        arch="session",
        weights="full",
        pooling="mean",
        batch_size=r["batch_size"],
        lr=r["lr"],
        epochs=r["epochs"],
        unlabelled_ratio=r["unlabelled_ratio"],
        patience=r["patience"],
        input=session_input_config(r["max_length"]),
        freeze_embeddings=True,
        freeze_encoder=r["freeze_encoder"],
        asr_copies=r["asr_copies"],
        session=SessionConfig(
            window=r["window"],
            hidden=r["hidden"],
            two_stage=r["two_stage"],
            marker_window=r["marker_window"],
            threshold_mode=r["threshold_mode"],
        ),
        head=HeadTrainConfig(epochs=r["head_epochs"], seed=SEED),
        baselines=False,
        n_boot=0,
        threads=threads,
        log_every=100,
    )


def train_full(args: argparse.Namespace, out: Path) -> None:
    from rupture_nlp.workflow import train_model

    train_model(args.train, args.dev, out, config=recipe_config(args.threads), epochs=args.epochs, seed=SEED)


def build_compact(full_dir: Path, out: Path, args: argparse.Namespace, extra: dict) -> dict:
    """Steps 2-4 into ``out``; returns the metrics."""
    from rupture_nlp.workflow import compact_model, write_card

    # named after the default model, not the full run
    metrics = compact_model(
        full_dir,
        out,
        args.train,
        args.dev,
        rank=RANK,
        dtype=DTYPE,
        n_boot=1000,
        seed=SEED,
        name=out.name if not out.name.startswith(".") else DEFAULT_OUT.name,
    )
    extra.update(evaluate_tests(out, Path(args.out), args))
    extra.update(card_notes(metrics, extra))
    write_card(out, extra, metrics=metrics)
    return metrics


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", default=str(ROOT / "corpora" / "train.jsonl"))
    ap.add_argument("--dev", default=str(ROOT / "corpora" / "dev.jsonl"))
    ap.add_argument("--test", default=str(ROOT / "corpora" / "test.jsonl"))
    ap.add_argument(
        "--test-asr",
        default=str(ROOT / "corpora" / "asr" / "test.jsonl"),
        help="the ASR rendering of the test split ('' to skip)",
    )
    ap.add_argument(
        "--evaluate-tests",
        action="store_true",
        help="only (re)evaluate the built model on the test files and re-render its card",
    )
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--full-dir", default=str(DEFAULT_FULL), help="where the full fine-tuned model is written")
    ap.add_argument("--from-full", default=None, help="use this existing full fine-tuned model (skip training)")
    ap.add_argument("--experiments", default=None, help="summary JSON of scripts/model_experiments.py")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    ap.add_argument(
        "--refresh-card", action="store_true", help="only re-render the card of the built model (with --experiments)"
    )
    args = ap.parse_args()
    lines = logging.StreamHandler(sys.stdout)  # the library's lines (per-epoch summaries), not spaCy's
    lines.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("rupture_nlp").addHandler(lines)
    logging.getLogger("rupture_nlp").setLevel(logging.INFO)
    if args.evaluate_tests:
        evaluate_tests(Path(args.out), Path(args.out), args)
    if args.refresh_card or args.evaluate_tests:
        exp = Path(args.experiments) if args.experiments else Path(args.out) / "experiments.json"
        refresh_card(Path(args.out), json.loads(exp.read_text()) if exp.is_file() else {})
        return 0

    from rupture_nlp.errors import RuptureError

    out = Path(args.out)
    building = out.with_name("." + out.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    exp_path = Path(args.experiments) if args.experiments else out / "experiments.json"
    summary = json.loads(exp_path.read_text()) if exp_path.is_file() else {}
    extra: dict = {"comparisons": comparison_rows(summary)} if summary else {}
    extra.update(summary_extra(summary))
    t0 = time.perf_counter()
    try:
        full_dir = Path(args.from_full) if args.from_full else Path(args.full_dir)
        if not args.from_full:
            train_full(args, full_dir)
        metrics = build_compact(full_dir, building, args, extra)
        if summary:
            (building / "experiments.json").write_text(json.dumps(summary, indent=2) + "\n")
    except RuptureError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    old = out.with_name("." + out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    building.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    print(
        f"built {out} ({metrics['model_version']}) in {(time.perf_counter() - t0) / 60:.1f} min: dev macro-F1 "
        f"fine {metrics['dev_macro_f1']['fine']:.3f}, coarse {metrics['dev_macro_f1']['coarse']:.3f}"
    )
    test = extra.get("test")
    if test:
        print(
            f"test macro-F1 fine {test['fine']['macro']['f1']:.3f}, coarse {test['coarse']['macro']['f1']:.3f}; "
            + ", ".join(
                f"{n}: fine {b['fine']['macro']['f1']:.3f} coarse {b['coarse']['macro']['f1']:.3f}"
                for n, b in test["baselines"].items()
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
