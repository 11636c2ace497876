#!/usr/bin/env python3
"""Benchmark ``rupture tag`` against a naive per-utterance ``transformers.pipeline`` loop.

Both run the same fine-tuned encoder (LoRA merged) on the same utterances with the same inputs
(a cross model's text pairs; a session model's single utterances, whose dialogue head the naive
loop leaves out), in the same run, each in a fresh subprocess (so peak memory is its own):

* ``naive``: ``transformers.pipeline("text-classification")`` called once per utterance (the
  encoder behind transformers' standard sequence-classification head; the head's cost is
  negligible next to the encoder's);
* ``tag``: ``rupture_nlp.tagging.tag_files`` (streaming, batches sorted by length, dynamic
  padding, ``torch.inference_mode``) — float32, and with dynamic int8 quantisation;
* ``tag-unsorted``: the same batches without length sorting, padded to ``max_length`` (what
  sorting and dynamic padding buy);
* ``tag-onnx``: ``tag_files`` with the network exported to ONNX (opset 17, dynamic batch and
  sequence axes) and run by ONNX Runtime (needs ``pip install onnxruntime onnx``; skipped when
  they are missing). The export happens before the timed part;
* ``tag-openvino``: ``rupture tag --backend openvino`` (``rupture_nlp.model.backends``: the
  network converted by ``openvino.convert_model``, dynamic batch and sequence dims, compiled for the
  CPU in float32 with as many inference threads as torch has); the conversion happens before the
  timed part;
* ``tag-openvino-int8``: ``rupture tag --backend openvino-int8``: that converted model quantised
  statically to int8 by NNCF (``nncf.quantize``, transformer model type, default preset), calibrated
  on the package's 300 calibration utterances (``rupture_nlp/data/calibration.jsonl``, from the
  train split). Conversion and quantisation happen before the timed part (their seconds are
  printed as ``load_seconds`` in the JSON).

Printed: utterances/s, ratio to the naive loop, peak RSS (MiB); with gold labels in the data,
also the fine and coarse macro-F1, and each of int8, ONNX Runtime and OpenVINO against ``tag``:
fine macro-F1 difference and speed ratio (an alternative is only worth keeping when it is faster
and loses at most 1 point).

    python scripts/bench_tag.py --model models/rupture-3rs-minilm --data corpora/dev.jsonl \
        [--limit 600] [--threads 2] [--json runs/bench_tag.json]

``--memory 1,100,1000`` instead measures the peak memory of ``tag`` (one fresh process each) on
corpora of that many sessions (the data's sessions cycled under new ids, each cut to
``--memory-utterances`` utterances so that 1,000 sessions take minutes, not an hour): peak RSS
must not grow with the number of sessions. ``--memory-kind tag-openvino-int8`` measures that
backend instead of the default torch path.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rupture_nlp.model.backends import ExportedNet, export_module


def _subset(data: Path, limit: int | None, out: Path) -> int:
    """Copy whole sessions from ``data`` until ``limit`` utterances; returns the utterance count."""
    from rupture_nlp.records import read_sessions, write_sessions

    picked, n = [], 0
    for s in read_sessions(data):
        if limit is not None and n >= limit:
            break
        picked.append(s)
        n += len(s.utterances)
    write_sessions(out, picked)
    return n


def _cycled(data: Path, n_sessions: int, n_utts: int, out: Path) -> int:
    """``n_sessions`` sessions cut from ``data``'s (cycled, new ids, ``n_utts`` utterances each)."""
    import dataclasses
    from rupture_nlp.records import read_sessions, write_sessions

    src = [s for s in read_sessions(data) if s.utterances]
    picked = []
    for i in range(n_sessions):
        s = src[i % len(src)]
        sid = f"{s.session_id}-x{i:05d}"
        utts = [dataclasses.replace(u, id=f"{sid}-u{j + 1:04d}") for j, u in enumerate(s.utterances[:n_utts])]
        picked.append(dataclasses.replace(s, session_id=sid, utterances=utts))
    write_sessions(out, picked)
    return sum(len(s.utterances) for s in picked)


def memory_table(args: argparse.Namespace) -> int:
    print(
        f"peak memory of {args.memory_kind} by corpus size ({args.memory_utterances} utterances per session, "
        f"model {args.model})",
        flush=True,
    )
    print("sessions  utterances   seconds   peak RSS MiB")
    with tempfile.TemporaryDirectory(prefix="bench-tag-mem-") as tmp:
        for n in (int(x) for x in args.memory.split(",")):
            data = Path(tmp) / f"mem{n}.jsonl"
            n_utt = _cycled(Path(args.data), n, args.memory_utterances, data)
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                args.memory_kind,
                "--no-eval",
                "--model",
                args.model,
                "--data",
                str(data),
                "--tmp",
                tmp,
            ] + (["--threads", str(args.threads)] if args.threads else [])
            r = subprocess.run(
                cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}
            )
            if r.returncode:
                print(f"tag failed:\n{r.stderr[-2000:]}", file=sys.stderr)
                return 1
            res = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"{n:8d}  {n_utt:10d}  {res['seconds']:8.1f}   {res['peak_rss_mib']:12.1f}", flush=True)
    return 0


def _have(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class OrtNet(ExportedNet):
    """``clf.net`` run by ONNX Runtime (what :func:`rupture_nlp.model.backends.export_module` exports)."""

    def __init__(self, clf, path: Path, threads: int):
        import onnxruntime as ort
        import torch

        module, names, sample, _ = export_module(clf)
        self.net = clf.net
        axes = {n: {0: "batch", 1: "seq"} for n in names if n != "pause"}
        axes.update({"pause": {0: "batch"}, "logits": {0: "batch"}})
        with torch.inference_mode():
            torch.onnx.export(
                module,
                sample,
                str(path),
                input_names=names,
                output_names=["logits"],
                dynamic_axes={k: v for k, v in axes.items() if k in names + ["logits"]},
                opset_version=17,
                dynamo=False,
            )
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def _run(self, feed):
        return self.session.run(["logits"], feed)[0]


def worker(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from rupture_nlp.model import RuptureClassifier
    from rupture_nlp.records import read_sessions

    kind = args.worker
    if kind in ("tag-openvino", "tag-openvino-int8"):  # the product's backends (rupture tag --backend ...)
        clf = RuptureClassifier.from_pretrained(args.model, backend=kind.removeprefix("tag-"))
    else:
        clf = RuptureClassifier.from_pretrained(args.model, quantize="int8" if kind == "tag-int8" else None)
    sessions = list(read_sessions(args.data))
    n = sum(len(s.utterances) for s in sessions)
    res: dict = {"kind": kind, "utterances": n, "threads": torch.get_num_threads()}
    if kind == "tag-onnx":
        clf._infer_net = OrtNet(clf, Path(args.tmp) / "net.onnx", torch.get_num_threads())
    elif kind in ("tag-openvino", "tag-openvino-int8"):
        t0 = time.perf_counter()
        clf._inference_net()  # conversion (and quantisation), before the timed part
        res["load_seconds"] = round(time.perf_counter() - t0, 1)
    if kind in ("tag", "tag-int8", "tag-onnx", "tag-openvino", "tag-openvino-int8"):
        from rupture_nlp.tagging import tag_files

        out = Path(args.tmp) / f"{kind}.jsonl"
        import rupture_nlp.ingest  # noqa: F401  imports outside the timed part

        clf.predict_proba(sessions[:1])  # warm-up
        t0 = time.perf_counter()
        tag_files([args.data], clf, out, resume=False)
        res["seconds"] = time.perf_counter() - t0
        from rupture_nlp.decision import label_matrix

        if not args.no_eval and label_matrix(sessions, clf.schema).any():
            from rupture_nlp.scoring import evaluate_predictions

            P = np.array(
                [[u.scores[l] for l in clf.schema.label_ids] for s in read_sessions(out) for u in s.utterances]
            )
            r = evaluate_predictions(sessions, P, clf.schema, clf.thresholds, n_boot=0)
            res["macro_f1"] = {"fine": r["fine"]["macro"]["f1"], "coarse": r["coarse"]["macro"]["f1"]}
    elif kind == "tag-unsorted" and clf.config.arch == "session":
        from rupture_nlp.model.modeling import collate
        from rupture_nlp.model.session import run_windows, session_features, utterance_texts

        texts = [t for s in sessions for t in utterance_texts(s)]
        bs, L = clf.config.batch_size, clf.config.input.max_length
        t0 = time.perf_counter()
        enc = clf.tokenizer(texts, truncation=True, max_length=L, padding="max_length")
        vecs = []
        with torch.inference_mode():
            for s in range(0, n, bs):
                feats = [
                    {"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i]}
                    for i in range(s, min(n, s + bs))
                ]
                batch = collate(feats, clf.tokenizer)
                batch["attention_mask"] = (batch["input_ids"] != clf.tokenizer.pad_token_id).long()
                vecs.append(clf.net.embed(**batch).numpy())
            V, k, per = np.concatenate(vecs), 0, []
            for sess in sessions:
                per.append(V[k : k + len(sess.utterances)])
                k += len(sess.utterances)
            run_windows(clf.net.head, per, [session_features(x) for x in sessions])
        res["seconds"] = time.perf_counter() - t0
    elif kind == "tag-unsorted":
        from rupture_nlp.model.inputs import encode, examples
        from rupture_nlp.model.modeling import collate

        exs = examples(sessions, clf.config.input)
        t0 = time.perf_counter()
        enc = encode(clf.tokenizer, exs, clf.config.input)
        keys = [k for k in ("input_ids", "token_type_ids", "pause") if k in enc]
        with torch.inference_mode():
            for s in range(0, n, clf.config.batch_size):
                feats = [{k: enc[k][i] for k in keys} for i in range(s, min(n, s + clf.config.batch_size))]
                for f in feats:  # pad every input to max_length, as a fixed-shape tokenizer call would
                    pad = clf.config.input.max_length - len(f["input_ids"])
                    f["input_ids"] = list(f["input_ids"]) + [clf.tokenizer.pad_token_id] * pad
                    if "token_type_ids" in f:
                        f["token_type_ids"] = list(f["token_type_ids"]) + [0] * pad
                batch = collate(feats, clf.tokenizer)
                batch["attention_mask"] = (batch["input_ids"] != clf.tokenizer.pad_token_id).long()
                clf.net(**batch)
        res["seconds"] = time.perf_counter() - t0
    elif kind == "naive":
        from transformers import AutoConfig, AutoModelForSequenceClassification, pipeline
        from rupture_nlp.model.hf import quiet_transformers
        from rupture_nlp.model.inputs import examples

        with quiet_transformers():
            cfg = AutoConfig.from_pretrained(
                str(clf.base.path if clf.base else Path(args.model) / "encoder"),
                num_labels=len(clf.schema.label_ids),
                trust_remote_code=False,
            )
            hf = AutoModelForSequenceClassification.from_config(cfg, trust_remote_code=False)
            missing = hf.base_model.load_state_dict(clf.net.encoder.state_dict(), strict=False)
            assert not [k for k in missing.missing_keys if not k.startswith("pooler")], missing
            hf.eval()
            pipe = pipeline(
                "text-classification",
                model=hf,
                tokenizer=clf.tokenizer,
                top_k=None,
                function_to_apply="sigmoid",
                device=-1,
            )
        exs = examples(sessions, clf.config.input)  # a session model's input: the utterance alone
        pipe({"text": exs[0].text_a, "text_pair": exs[0].text_b} if exs[0].text_b else exs[0].text_a)  # warm-up
        t0 = time.perf_counter()
        for e in exs:
            pipe(
                {"text": e.text_a, "text_pair": e.text_b} if e.text_b else e.text_a,
                truncation=True,
                max_length=clf.config.input.max_length,
            )
        res["seconds"] = time.perf_counter() - t0
    res["utt_per_s"] = n / res["seconds"]
    res["peak_rss_mib"] = round(_peak_mib(), 1)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="models/rupture-3rs-minilm")
    ap.add_argument("--data", default="corpora/dev.jsonl")
    ap.add_argument("--limit", type=int, default=600, help="utterances (whole sessions) to use; 0 = all")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--only", default="naive,tag,tag-int8,tag-onnx,tag-openvino,tag-openvino-int8,tag-unsorted")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument(
        "--memory",
        default=None,
        metavar="N,N,...",
        help="measure tag's peak memory on corpora of these numbers of sessions instead",
    )
    ap.add_argument("--memory-utterances", type=int, default=12, help="utterances per session with --memory")
    ap.add_argument(
        "--memory-kind",
        default="tag",
        choices=("tag", "tag-openvino", "tag-openvino-int8"),
        help="which tagging path --memory measures",
    )
    ap.add_argument("--no-eval", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    if args.memory:
        return memory_table(args)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-tag-") as tmp:
        data = Path(tmp) / "data.jsonl"
        n = _subset(Path(args.data), args.limit or None, data)
        print(f"{n} utterances from {args.data}; model {args.model}", flush=True)
        for kind in args.only.split(","):
            needs = {
                "tag-onnx": ("onnxruntime", "onnx"),
                "tag-openvino": ("openvino",),
                "tag-openvino-int8": ("openvino", "nncf"),
            }.get(kind, ())
            if not _have(*needs):
                print(f"  {kind:17s} skipped: {'/'.join(needs)} not installed", flush=True)
                continue
            cmd = [sys.executable, __file__, "--worker", kind, "--model", args.model, "--data", str(data), "--tmp", tmp]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            r = subprocess.run(
                cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}
            )
            if r.returncode:
                print(f"{kind} failed:\n{r.stderr[-2000:]}", file=sys.stderr)
                return 1
            results.append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(
                f"  {kind:17s} {results[-1]['utt_per_s']:8.1f} utt/s  peak {results[-1]['peak_rss_mib']:7.1f} MiB",
                flush=True,
            )
    naive = next((r for r in results if r["kind"] == "naive"), None)
    print("\nkind               utt/s    x naive   peak MiB   fine macro-F1   coarse macro-F1")
    for r in results:
        ratio = r["utt_per_s"] / naive["utt_per_s"] if naive else float("nan")
        f1 = r.get("macro_f1") or {}
        print(
            f"{r['kind']:17s} {r['utt_per_s']:7.1f}  {ratio:8.2f}  {r['peak_rss_mib']:9.1f}   "
            f"{f1.get('fine', float('nan')):13.4f}   {f1.get('coarse', float('nan')):15.4f}"
        )
    by = {r["kind"]: r for r in results}
    for kind in ("tag", "tag-openvino", "tag-openvino-int8"):  # the product's paths (rupture tag --backend)
        if naive and kind in by:
            speed, ratio = by[kind]["utt_per_s"], by[kind]["utt_per_s"] / naive["utt_per_s"]
            met = "met" if speed >= 200 and ratio >= 4 else "NOT met"
            print(f"aim >= 200 utt/s and >= 4x naive, {kind}: {speed:.1f} utt/s, {ratio:.2f}x -> {met}")
    for alt, what in (
        ("tag-int8", "int8 vs float32"),
        ("tag-onnx", "ONNX Runtime vs torch"),
        ("tag-openvino", "OpenVINO float32 vs torch"),
        ("tag-openvino-int8", "OpenVINO int8 (NNCF) vs torch"),
    ):
        if "tag" in by and alt in by and by["tag"].get("macro_f1"):
            loss = by["tag"]["macro_f1"]["fine"] - by[alt]["macro_f1"]["fine"]
            speed = by[alt]["utt_per_s"] / by["tag"]["utt_per_s"]
            verdict = (
                "loses more than 1 point"
                if loss > 0.01
                else "faster within 1 point: worth keeping"
                if speed > 1.05
                else "no faster: not worth it"
            )
            print(f"\n{what}: fine macro-F1 {-loss * 100:+.2f} points; speed x{speed:.2f} -> {verdict}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps({"data": args.data, "utterances": n, "results": results}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
