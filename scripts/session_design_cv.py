#!/usr/bin/env python3
"""Design experiments of the session architecture: session cross-validation over train+dev.

The numbers of the model card's design table come from these three steps (folds by session,
seed 7; work files in --workdir, default runs/session-cv):

    python scripts/session_design_cv.py frozen                      # base-encoder vectors of every unit
    python scripts/session_design_cv.py encoders --folds 5 --only 0 --epochs 2
                                        # per fold: fine-tune the encoder on the other folds, cache vectors
    python scripts/session_design_cv.py heads --tag frozen-default [--two_stage 0] [--marker 0] [--asr 0]
        [--mode f1] [--hidden 512] [--layers 2] [--dropout 0.35] [--ensemble 3]
        [--prefix WORKDIR/fold{f}_ --only 0]                        # the dialogue head, one row per call

The head's settings default to the product's (``SessionConfig``), so a call without them
measures the default design.

Each ``heads`` call appends one JSON row (mean +- sd over the folds run) to WORKDIR/results.jsonl.
A research script, not a library: it reads corpora/{train,dev}.jsonl and corpora/asr/*.jsonl.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def corpus(name: str) -> Path:
    return ROOT / "corpora" / f"{name}.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("step", choices=["frozen", "encoders", "heads"])
    ap.add_argument("--workdir", default=str(ROOT / "runs" / "session-cv"))
    a, rest = ap.parse_known_args()
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    sys.argv = [sys.argv[0], *rest]
    {"frozen": frozen, "encoders": encoders, "heads": heads}[a.step](work)
    return 0


def frozen(work: Path) -> None:
    """Vectors of every unit from the base encoder (no fine-tuning)."""
    import numpy as np
    import torch
    from rupture_nlp.model.base import resolve_base
    from rupture_nlp.model.hf import load_encoder, load_tokenizer

    torch.set_num_threads(2)
    b = resolve_base(None)
    tok = load_tokenizer(b.path)
    enc = load_encoder(b.path, "mean").eval()

    def texts(f):
        out = []
        for l in open(f):
            s = json.loads(l)
            for u in s["utterances"]:
                out.append(f"{u['speaker']}: {u['text']}")
        return out

    for name in ["train", "dev", "test", "asr/train", "asr/dev", "asr/test"]:
        T = texts(corpus(name))
        t0 = time.time()
        ids = tok(T, truncation=True, max_length=128)["input_ids"]
        L = np.array([len(x) for x in ids])
        order = np.argsort(L)
        V = np.zeros((len(T), 384), np.float32)
        with torch.inference_mode():
            for s in range(0, len(T), 128):
                idx = order[s : s + 128]
                batch = tok([T[i] for i in idx], padding=True, truncation=True, max_length=128, return_tensors="pt")
                h = enc(**batch).last_hidden_state
                m = batch["attention_mask"].unsqueeze(-1).float()
                V[idx] = ((h * m).sum(1) / m.sum(1)).numpy()
        np.save(work / f"frozen_{name.replace('/', '_')}.npy", V)
        print(name, len(T), f"{len(T) / (time.time() - t0):.0f} utt/s", "mean tokens", L.mean(), flush=True)


def encoders(work: Path) -> None:
    """Per fold: step 1 of the session recipe on the other folds (+ their ASR renderings), then vectors."""
    import logging
    import shutil
    import numpy as np
    import torch
    from rupture_nlp.model import RuptureClassifier
    from rupture_nlp.model.architectures import embed_texts, session_input_config
    from rupture_nlp.model.train import TrainConfig, train_classifier
    from rupture_nlp.records import Session
    from rupture_nlp.schema import load_schema

    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(2)
    schema = load_schema(None)

    def L(n):
        with open(corpus(n)) as f:
            return [Session.from_dict(json.loads(l)) for l in f]

    pool = L("train") + L("dev")
    asr = L("asr/train") + L("asr/dev")
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--only", default="0,1,2,3,4")
    ap.add_argument(
        "--unlabelled-ratio", type=float, default=TrainConfig.unlabelled_ratio, help="unlabelled per labelled utterance"
    )
    e = ap.parse_args()
    folds, epochs, which = e.folds, e.epochs, [int(x) for x in e.only.split(",")]
    rng = np.random.default_rng(7)
    ids = [s.session_id for s in pool]
    perm = rng.permutation(len(pool))
    fold_of = {ids[j]: k % folds for k, j in enumerate(perm)}

    class W(torch.nn.Module):
        def __init__(s, net):
            super().__init__()
            s.net = net

        def embed(s, **kw):
            return s.net.pool(**kw)

    for f in which:
        tr = [s for s in pool if fold_of[s.session_id] != f]
        te = [s for s in pool if fold_of[s.session_id] == f]
        tr_asr = [s for s in asr if fold_of[s.session_id] != f]
        cfg = TrainConfig(
            name=f"fold{f}",
            weights="full",
            input=session_input_config(64),
            epochs=epochs,
            batch_size=32,
            lr=1e-4,
            baselines=False,
            unlabelled_ratio=e.unlabelled_ratio,
            patience=5,
        )
        t = time.time()
        out = str(work / f"fold{f}_enc")
        r = train_classifier(tr + tr_asr, te, out, schema, cfg)
        clf = RuptureClassifier.from_pretrained(out)
        w = W(clf.net).eval()
        for name in ["train", "dev", "asr/train", "asr/dev"]:
            T = [f"{u['speaker']}: {u['text']}" for l in open(corpus(name)) for u in json.loads(l)["utterances"]]
            np.save(work / f"fold{f}_{name.replace('/', '_')}.npy", embed_texts(w, clf.tokenizer, T, 64))
        shutil.rmtree(out + "/encoder", ignore_errors=True)
        print(
            "fold",
            f,
            "history",
            [(h["epoch"], h["dev_macro_f1"], h["dev_coarse_macro_f1"]) for h in r.history],
            "secs",
            round(time.time() - t),
            flush=True,
        )


def heads(work: Path) -> None:
    """One design row: the dialogue head cross-validated on cached vectors."""
    import numpy as np
    import torch
    from rupture_nlp.decision import coarse_matrix, label_matrix, tune_thresholds
    from rupture_nlp.model.session import SessionConfig, build_head, category_index, run_windows, session_features
    from rupture_nlp.model.session_train import HeadTrainConfig, coarse_gold, fit_head, tune_category_thresholds
    from rupture_nlp.records import Session
    from rupture_nlp.schema import load_schema
    from rupture_nlp.scoring import evaluate_predictions

    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    schema = load_schema(None)
    lc = category_index(schema)
    nc = len(schema.category_ids)

    def load(name, vec):
        S = [Session.from_dict(json.loads(l)) for l in open(corpus(name))]
        V = np.load(vec)
        out = []
        k = 0
        for s in S:
            n = len(s.utterances)
            out.append((s, V[k : k + n], session_features(s), label_matrix([s], schema).astype(np.float32)))
            k += n
        assert k == len(V)
        return out

    d = SessionConfig()  # the product's defaults
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", default=str(work / "frozen_"))
    ap.add_argument("--asr", type=int, default=1)
    ap.add_argument("--two_stage", type=int, default=1)
    ap.add_argument("--marker", type=int, default=d.marker_window)
    ap.add_argument("--window", type=int, default=d.window)
    ap.add_argument("--hidden", type=int, default=d.hidden)
    ap.add_argument("--layers", type=int, default=d.layers, help="GRU layers")
    ap.add_argument("--dropout", type=float, default=d.dropout)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--mode", default="count")
    ap.add_argument("--test", type=int, default=0)
    ap.add_argument("--tag", default="")
    ap.add_argument("--only", default="")
    ap.add_argument("--seed", type=int, default=13, help="seed of the head's training")
    ap.add_argument(
        "--ensemble", type=int, default=1, help="average the scores of this many heads (seeds seed, seed+1, ...)"
    )
    a = ap.parse_args()
    P = a.prefix
    P0 = P.format(f=0)
    train = load("train", P0 + "train.npy")
    dev = load("dev", P0 + "dev.npy")
    asr_train = load("asr/train", P0 + "asr_train.npy") if a.asr else []
    asr_dev = load("asr/dev", P0 + "asr_dev.npy") if a.asr else []
    # map asr renderings to their source session for fold assignment
    pool = train + dev
    asr_pool = asr_train + asr_dev

    def fit(tr):
        cfg = SessionConfig(
            window=a.window,
            hidden=a.hidden,
            layers=a.layers,
            dropout=a.dropout,
            two_stage=bool(a.two_stage),
            marker_window=a.marker,
        )
        heads = []
        for k in range(a.ensemble):
            head = build_head(schema, 384, cfg)
            hcfg = HeadTrainConfig(epochs=a.epochs, lr=a.lr, seed=a.seed + k)
            fit_head(head, [x[1] for x in tr], [x[2] for x in tr], [x[3] for x in tr], hcfg)
            heads.append(head)
        return heads

    def run(heads, vecs, feats):
        outs = [run_windows(h, vecs, feats) for h in heads]
        return [np.mean(ps, axis=0) for ps in zip(*outs)]

    def predict(heads, te):
        return np.concatenate(run(heads, [x[1] for x in te], [x[2] for x in te]))

    def thresholds(Y, Pr):
        if a.two_stage:
            tc = tune_category_thresholds(coarse_gold(Y, lc, nc), coarse_matrix(Pr, schema), a.mode)
            return tc[lc]
        return tune_thresholds(Y, Pr)

    def score(te, Pr, th):
        r = evaluate_predictions([x[0] for x in te], Pr, schema, th, n_boot=0)
        Y = np.concatenate([x[3] for x in te])
        D = Pr >= th
        gc = coarse_gold(Y, lc, nc).sum(0) / len(te)
        pc = coarse_gold(D.astype(float), lc, nc).sum(0) / len(te)
        return dict(
            fine=r["fine"]["macro"]["f1"],
            coarse=r["coarse"]["macro"]["f1"],
            icc=[round(r["session_icc"][c]["icc"] or 0, 3) for c in schema.category_ids],
            gold_counts=np.round(gc, 1).tolist(),
            pred_counts=np.round(pc, 1).tolist(),
            coarse_per=[round(r["coarse"]["per_label"][c]["f1"], 3) for c in schema.category_ids],
            repair_precision=round(r["coarse"]["per_label"]["repair"]["precision"], 3),
        )

    t0 = time.time()
    res = []
    if a.folds:
        rng = np.random.default_rng(7)
        ids = [x[0].session_id for x in pool]
        perm = rng.permutation(len(pool))
        fold_of = {ids[j]: k % a.folds for k, j in enumerate(perm)}
        # OOF predictions, thresholds tuned on OOF of the other folds? simpler: tune on the held-out fold's own OOF pooled across folds
        oof = [None] * len(pool)
        FOLDS = [int(x) for x in a.only.split(",")] if a.only else list(range(a.folds))
        for f in FOLDS:
            if "{f}" in P:
                pool[:] = load("train", P.format(f=f) + "train.npy") + load("dev", P.format(f=f) + "dev.npy")
                asr_pool[:] = (
                    (
                        load("asr/train", P.format(f=f) + "asr_train.npy")
                        + load("asr/dev", P.format(f=f) + "asr_dev.npy")
                    )
                    if a.asr
                    else []
                )
            tr = [x for x in pool if fold_of[x[0].session_id] != f] + [
                x for x in asr_pool if fold_of[x[0].session_id] != f
            ]
            te_idx = [i for i, x in enumerate(pool) if fold_of[x[0].session_id] == f]
            head = fit(tr)
            Pr = run(head, [pool[i][1] for i in te_idx], [pool[i][2] for i in te_idx])
            for i, p in zip(te_idx, Pr):
                oof[i] = p
        # per fold score with thresholds tuned on the other folds' OOF
        done = [i for i in range(len(pool)) if oof[i] is not None]
        for f in FOLDS:
            te = [i for i, x in enumerate(pool) if fold_of[x[0].session_id] == f]
            ot = [i for i in done if i not in set(te)]
            if not ot:
                ot = te
            th = thresholds(np.concatenate([pool[i][3] for i in ot]), np.concatenate([oof[i] for i in ot]))
            res.append(score([pool[i] for i in te], np.concatenate([oof[i] for i in te]), th))
        f = np.array([r["fine"] for r in res])
        c = np.array([r["coarse"] for r in res])
        icc = np.array([r["icc"] for r in res])
        pcn = np.array([r["pred_counts"] for r in res])
        gcn = np.array([r["gold_counts"] for r in res])
        rp = np.array([r["repair_precision"] for r in res])
        out = dict(
            tag=a.tag,
            args=vars(a),
            folds_run=FOLDS,
            cv_fine=[round(f.mean(), 3), round(f.std(), 3)],
            cv_coarse=[round(c.mean(), 3), round(c.std(), 3)],
            cv_icc=np.round(icc.mean(0), 3).tolist(),
            cv_pred_over_gold=np.round(pcn.sum(0) / gcn.sum(0), 2).tolist(),
            cv_repair_precision=round(rp.mean(), 3),
            seconds=round(time.time() - t0),
        )
        print(json.dumps(out), flush=True)
        with open(work / "results.jsonl", "a") as fh:
            fh.write(json.dumps(out) + "\n")
    if a.test:
        head = fit(train + asr_train)
        Pd = predict(head, dev)
        th = thresholds(np.concatenate([x[3] for x in dev]), Pd)
        test = load("test", P + "test.npy")
        asr_test = load("asr/test", P + "asr_test.npy")
        print("dev", json.dumps(score(dev, Pd, th)))
        print("test", json.dumps(score(test, predict(head, test), th)))
        print("asr_test", json.dumps(score(asr_test, predict(head, asr_test), th)))


if __name__ == "__main__":
    sys.exit(main())
