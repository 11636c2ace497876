"""Fine-tune the rupture classifier: ``train_model(train.jsonl, dev.jsonl, out_dir)``.

One short, explicit loop (no Trainer): data in a Hugging Face ``datasets.Dataset``, tokenised
once; per epoch every labelled utterance plus a seeded random sample of the (many) unlabelled
ones; length-grouped batches padded to their longest member; AdamW with linear warm-up/decay;
class imbalance via sqrt(neg/pos) positive weights; evaluation on dev after every epoch with
per-label thresholds tuned there (``decision.tune_thresholds``); early stopping on dev fine
macro-F1 (the best epoch's weights are kept). The default fine-tunes the whole encoder except
its embeddings (lr 1e-4, 4 epochs: the recipe of the bundled model; ``compact.lora_from_full``
turns the result into small adapters); ``weights="lora"`` trains LoRA adapters instead.

After training, the model directory is written, reloaded from disk, and its dev scores are
computed from the reloaded model (so ``metrics.json`` is what a user gets back); then the two
baselines are trained and saved, everything is evaluated on dev in one run, and the model card
is generated.
"""
from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import __version__
from ..decision import label_matrix, tune_thresholds
from ..errors import RuptureError
from ..records import Session
from ..schema import LabelSchema, load_schema
from .base import resolve_base
from .classifier import ModelConfig, RuptureClassifier
from .hf import load_encoder, load_tokenizer, quiet_transformers
from .inputs import N_PAUSE_FEATURES, InputConfig, encode, examples
from .modeling import OutputLayout, RuptureNet, collate

DEFAULT_LORA_TARGETS = ("query", "key", "value", "dense")


@dataclass
class TrainConfig:
    """Settings of one training run (saved as ``training_config.json``)."""

    name: str = "rupture-model"
    weights: str = "full"                 # "full" or "lora" (trained adapters)
    pooling: str = "mean"                 # "mean" or "cls"
    input: InputConfig = field(default_factory=InputConfig)
    epochs: int = 4
    batch_size: int = 16
    lr: float | None = None               # encoder (LoRA: 1e-3, full: 1e-4 when None)
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.1                   # share of steps
    dropout: float = 0.1
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    unlabelled_ratio: float | None = 1.5  # unlabelled per labelled utterance per epoch (None: all)
    pos_weight_cap: float = 30.0
    patience: int = 2                     # epochs without dev improvement before stopping
    seed: int = 13
    max_steps: int | None = None          # stop after this many optimiser steps (tests, smoke runs)
    threads: int | None = None            # torch intra-op threads (None: torch default)
    speaker_mask: bool = True
    freeze_embeddings: bool = True        # keep the base's embedding layer (full fine-tuning only)
    baselines: bool = True                # also train and save the TF-IDF and textcat baselines
    n_boot: int = 1000                    # bootstrap resamples for the dev metrics with CIs
    log_every: int = 0                    # log a progress line every N steps (0: only per epoch)

    def encoder_lr(self) -> float:
        return self.lr if self.lr is not None else (1e-3 if self.weights == "lora" else 1e-4)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input"] = self.input.to_dict()
        d["lora_targets"] = list(self.lora_targets)
        d["encoder_lr"] = self.encoder_lr()
        return d


@dataclass
class TrainResult:
    """What a training run produced: the directory, dev metrics, timings (seconds)."""

    out_dir: Path
    dev_macro_f1: float
    dev_coarse_macro_f1: float
    best_epoch: int
    history: list[dict[str, Any]]
    timings: dict[str, float]
    metrics: dict[str, Any]


# ------------------------------------------------------------------------------------------
def _load_split(path: str | Path | Sequence[Session], schema: LabelSchema, what: str) -> list[Session]:
    if not isinstance(path, (str, Path)):
        return list(path)
    from ..evaluate import load_gold_sessions
    p = Path(path)
    if not p.is_file():
        raise RuptureError(f"{what} file not found", p)
    return load_gold_sessions(p, schema)


def _dataset(sessions: list[Session], schema: LabelSchema, cfg: InputConfig, tokenizer: Any):
    """A ``datasets.Dataset`` with one row per utterance: tokens, pause features, label vector."""
    from datasets import Dataset
    exs = examples(sessions, cfg)
    Y = label_matrix(sessions, schema).astype(np.float32)
    ds = Dataset.from_dict({"text_a": [e.text_a for e in exs], "text_b": [e.text_b for e in exs],
                            "pause_s": [e.pause for e in exs], "labels": Y.tolist(),
                            "labelled": (Y.sum(1) > 0).tolist()})

    def tok(batch: dict) -> dict:
        from .inputs import Example
        ex = [Example(a, b, p) for a, b, p in zip(batch["text_a"], batch["text_b"], batch["pause_s"])]
        enc = encode(tokenizer, ex, cfg)
        enc["length"] = [len(x) for x in enc["input_ids"]]
        return enc

    with quiet_transformers():
        from datasets.utils.logging import disable_progress_bar
        disable_progress_bar()
        ds = ds.map(tok, batched=True, batch_size=1000, remove_columns=["text_a", "text_b"])
    return ds, Y


def _epoch_indices(labelled: np.ndarray, ratio: float | None, rng: np.random.Generator) -> np.ndarray:
    """Every labelled row plus ``ratio`` x as many unlabelled rows drawn without replacement."""
    pos = np.flatnonzero(labelled)
    neg = np.flatnonzero(~labelled)
    if ratio is not None and len(pos):
        k = min(len(neg), int(math.ceil(ratio * len(pos))))
        neg = rng.choice(neg, size=k, replace=False)
    idx = np.concatenate([pos, neg])
    rng.shuffle(idx)
    return idx


def _length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of similar length: shuffle, sort within mega-batches of 50 batches, shuffle batches."""
    idx = rng.permutation(len(lengths))
    mega = batch_size * 50
    batches = []
    for s in range(0, len(idx), mega):
        chunk = idx[s:s + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def _features(cols: dict[str, list], rows: Sequence[int]) -> list[dict]:
    return [{k: v[i] for k, v in cols.items()} for i in rows]


def build_network(schema: LabelSchema, cfg: TrainConfig, base_path: Path) -> tuple[RuptureNet, Any]:
    """A fresh network over the base encoder; returns (net, peft-wrapped encoder or None)."""
    encoder = load_encoder(base_path, cfg.pooling)
    peft_encoder = None
    if cfg.weights == "lora":
        from peft import LoraConfig, get_peft_model
        targets = list(cfg.lora_targets)
        with quiet_transformers():
            peft_encoder = get_peft_model(encoder, LoraConfig(
                r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                target_modules=targets, bias="none"))
        encoder = peft_encoder
    elif cfg.weights != "full":
        raise RuptureError("weights must be 'lora' or 'full'")
    elif cfg.freeze_embeddings:
        # The compact form keeps the base's embeddings (compact.py), and their optimiser
        # state is half of all parameters: training them costs time and buys nothing kept.
        for p in encoder.embeddings.parameters():
            p.requires_grad_(False)
    net = RuptureNet(encoder, OutputLayout.from_schema(schema), cfg.pooling,
                     N_PAUSE_FEATURES if cfg.input.pause_feature else 0, cfg.dropout)
    return net, peft_encoder


def _trainable_state(net: RuptureNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.named_parameters() if v.requires_grad}


def _dev_scores(P: np.ndarray, Ydev: np.ndarray, dev: list[Session], schema: LabelSchema) -> tuple[float, float, np.ndarray]:
    """(fine macro-F1, coarse macro-F1, tuned thresholds) on dev; macro over labels with dev support."""
    from ..evaluate import evaluate_predictions
    th = tune_thresholds(Ydev, P)
    res = evaluate_predictions(dev, P, schema, th, n_boot=0)
    return float(res["fine"]["macro"]["f1"] or 0.0), float(res["coarse"]["macro"]["f1"] or 0.0), th


# ------------------------------------------------------------------------------------------
def train_model(train_path: str | Path | Sequence[Session], dev_path: str | Path | Sequence[Session],
                out_dir: str | Path, *, schema: LabelSchema | str | Path | None = None,
                base: str | Path | None = None, epochs: int | None = None, seed: int = 13,
                config: TrainConfig | None = None, progress: Any = None,
                card_extra: dict[str, Any] | None = None, log: Any = None) -> TrainResult:
    """Train, select on dev, save to ``out_dir`` and return the run's numbers.

    ``train_path``/``dev_path``: canonical JSONL files with gold labels (or lists of sessions);
    ``schema``: a schema or schema file (default 3RS); ``base``: a local HF model directory
    (default: the hash-checked all-MiniLM-L6-v2); ``config``: every other setting (``epochs`` and
    ``seed`` override it); ``progress``: a ``rich.progress.Progress`` to draw a bar on;
    ``card_extra``: comparisons to show in the model card (see ``card.render_card``);
    ``log``: a callable taking one line of text (per-epoch summaries).
    """
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    cfg = config or TrainConfig()
    if epochs is not None:
        cfg.epochs = int(epochs)
    cfg.seed = int(seed)
    if cfg.epochs < 1:
        raise RuptureError("epochs must be at least 1")
    say = log or (lambda _line: None)
    if not isinstance(schema, LabelSchema):
        schema = load_schema(schema)
    out = Path(out_dir)
    train = _load_split(train_path, schema, "training data")
    dev = _load_split(dev_path, schema, "dev data")
    if not train or not dev:
        raise RuptureError("training and dev data must each hold at least one session")
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    from transformers import get_linear_schedule_with_warmup, set_seed
    set_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    base_model = resolve_base(base)
    tokenizer = load_tokenizer(base_model.path)
    net, peft_encoder = build_network(schema, cfg, base_model.path)
    layout = net.layout

    t0 = time.perf_counter()
    ds, Y = _dataset(train, schema, cfg.input, tokenizer)
    if Y.sum() == 0:
        raise RuptureError("the training data carries no gold labels of the schema", train_path if isinstance(train_path, (str, Path)) else None)
    Ydev = label_matrix(dev, schema)
    labelled = np.asarray(ds["labelled"], dtype=bool)
    lengths = np.asarray(ds["length"])
    t_data = time.perf_counter() - t0

    pos_weight, group_weights = layout.class_weights(Y, cap=cfg.pos_weight_cap)
    keys = ["input_ids", "labels"] + [k for k in ("token_type_ids",) if k in ds.column_names]
    if cfg.input.pause_feature:
        keys.append("pause")
    cols = {k: ds[k] for k in keys}  # materialised once: a few MB for a corpus of this size
    per_epoch = len(_epoch_indices(labelled, cfg.unlabelled_ratio, np.random.default_rng(0)))
    steps_per_epoch = math.ceil(per_epoch / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total_steps = min(total_steps, int(cfg.max_steps))
    head_params = list(net.head.parameters())
    enc_params = [p for p in net.encoder.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([
        {"params": enc_params, "lr": cfg.encoder_lr(), "weight_decay": cfg.weight_decay},
        {"params": head_params, "lr": cfg.head_lr, "weight_decay": 0.0}])
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup * total_steps), max(1, total_steps))
    pad = tokenizer.pad_token_id or 0

    clf_cfg = ModelConfig(name=cfg.name, base=base_model.to_config(), weights=cfg.weights, pooling=cfg.pooling,
                          dropout=cfg.dropout, input=cfg.input, speaker_mask=cfg.speaker_mask,
                          lora=({"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout,
                                 "target_modules": list(cfg.lora_targets)} if cfg.weights == "lora" else None))
    clf = RuptureClassifier(net, tokenizer, schema, np.full(len(schema.label_ids), 0.5), clf_cfg)

    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    step = 0
    bad_epochs = 0
    task = progress.add_task("training", total=total_steps) if progress is not None else None
    t_train = time.perf_counter()
    n_seen = 0
    for epoch in range(1, cfg.epochs + 1):
        t_ep = time.perf_counter()
        rows = _epoch_indices(labelled, cfg.unlabelled_ratio, rng)
        net.train()
        losses = []
        for b in _length_batches(lengths[rows], cfg.batch_size, rng):
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
            batch = collate(_features(cols, rows[b].tolist()), pad)
            target = batch.pop("labels")
            logits = net(**batch)
            loss = layout.loss(logits, target, pos_weight, group_weights)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(enc_params + head_params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            step += 1
            n_seen += len(b)
            if task is not None:
                progress.update(task, advance=1, description=f"epoch {epoch}/{cfg.epochs} loss {np.mean(losses[-20:]):.3f}")
            if cfg.log_every and step % cfg.log_every == 0:
                say(f"  step {step}/{total_steps}: loss {np.mean(losses[-cfg.log_every:]):.4f}, "
                    f"{n_seen / (time.perf_counter() - t_train):.1f} examples/s")
        train_secs = time.perf_counter() - t_ep
        net.eval()
        t_ev = time.perf_counter()
        P = clf.predict_proba(dev)
        f1, cf1, _ = _dev_scores(P, Ydev, dev, schema)
        ev_secs = time.perf_counter() - t_ev
        history.append({"epoch": epoch, "steps": step, "loss": round(float(np.mean(losses)) if losses else float("nan"), 4),
                        "dev_macro_f1": round(f1, 4), "dev_coarse_macro_f1": round(cf1, 4),
                        "train_seconds": round(train_secs, 1), "eval_seconds": round(ev_secs, 1)})
        say(f"epoch {epoch}: loss {history[-1]['loss']}, dev macro-F1 fine {f1:.3f} coarse {cf1:.3f} "
            f"({train_secs:.0f}s train, {ev_secs:.0f}s dev)")
        if best is None or f1 > best[0] + 1e-9:
            best = (f1, epoch, _trainable_state(net))
            bad_epochs = 0
        else:
            bad_epochs += 1
            if bad_epochs > cfg.patience:
                say(f"early stop: no dev improvement for {bad_epochs} epoch(s)")
                break
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break
    t_loop = time.perf_counter() - t_train
    if progress is not None and task is not None:
        progress.update(task, completed=total_steps)
    assert best is not None
    with torch.no_grad():
        params = dict(net.named_parameters())
        for k, v in best[2].items():
            params[k].copy_(v)
    net.eval()

    # -- save, reload from disk, tune thresholds on dev with the reloaded model --------------
    t_save = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    clf.save_pretrained(out, peft_encoder=peft_encoder)
    clf = RuptureClassifier.from_pretrained(out)
    Pdev = clf.predict_proba(dev)
    f1, cf1, th = _dev_scores(Pdev, Ydev, dev, schema)
    clf.thresholds = th
    clf.save_thresholds(out)
    t_save = time.perf_counter() - t_save

    timings = {"data_seconds": round(t_data, 1), "train_loop_seconds": round(t_loop, 1),
               "save_reload_tune_seconds": round(t_save, 1),
               "model_seconds": round(time.perf_counter() - t_start, 1),
               "model_cpu_seconds": round(time.process_time() - cpu_start, 1)}
    info_baselines: dict[str, Any] | None = None
    if cfg.baselines:
        t_b = time.perf_counter()
        from ..baselines import train_baselines
        info_baselines = train_baselines(train, dev, schema, out, seed=cfg.seed)
        timings["baselines_seconds"] = round(time.perf_counter() - t_b, 1)
    timings["total_train_seconds"] = round(time.perf_counter() - t_start, 1)
    timings["total_cpu_seconds"] = round(time.process_time() - cpu_start, 1)

    from ..evaluate import evaluate_predictions
    dev_eval = evaluate_predictions(dev, Pdev, schema, th, n_boot=cfg.n_boot, seed=cfg.seed)
    baselines_eval: dict[str, Any] = {}
    if cfg.baselines:
        from ..baselines import load_baseline
        for name in ("tfidf", "textcat"):
            bdir = out / "baselines" / name
            if bdir.is_dir():
                b = load_baseline(bdir)
                r = evaluate_predictions(dev, b.predict_proba(dev), schema, b.thresholds,
                                         n_boot=cfg.n_boot, seed=cfg.seed)
                baselines_eval[name] = {k: r[k] for k in ("fine", "coarse", "session_icc")}
    data_info = {"train": _describe(train_path, train, schema), "dev": _describe(dev_path, dev, schema)}
    metrics = {
        "model_version": clf.model_version,
        "dev": {"fine": dev_eval["fine"], "coarse": dev_eval["coarse"], "session_icc": dev_eval["session_icc"],
                "bootstrap": dev_eval["bootstrap"], "n_sessions": dev_eval["n_sessions"],
                "n_utterances": dev_eval["n_utterances"]},
        "dev_macro_f1": {"fine": dev_eval["fine"]["macro"]["f1"], "coarse": dev_eval["coarse"]["macro"]["f1"]},
        "baselines": {"dev": baselines_eval, "training": info_baselines},
        "training": {"best_epoch": best[1], "history": history, "timings": timings,
                     "examples_seen": n_seen, "examples_per_second": round(n_seen / max(t_loop, 1e-9), 2),
                     "threads": torch.get_num_threads(), "machine": platform.machine(),
                     "torch": torch.__version__},
        "data": data_info,
        "reproduce": _reproduce_sample(dev, Pdev),
    }
    from ..atomic import atomic_write_text
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    tc = cfg.to_dict()
    tc.update(rupture_version=__version__, base=base_model.to_config(), data=data_info)
    atomic_write_text(out / "training_config.json", json.dumps(tc, indent=2) + "\n")
    from .card import render_card
    atomic_write_text(out / "README.md", render_card(clf, metrics, tc, card_extra))
    return TrainResult(out, float(metrics["dev_macro_f1"]["fine"] or 0.0),
                       float(metrics["dev_macro_f1"]["coarse"] or 0.0), best[1], history, timings, metrics)


def _reproduce_sample(dev: list[Session], P: np.ndarray, n: int = 20) -> dict[str, Any]:
    """The probabilities of the first ``n`` utterances of the first dev session (rounded), so a
    test can check quickly that a reloaded model still gives them."""
    k = min(n, len(dev[0].utterances))
    return {"session_id": dev[0].session_id, "n_utterances": k,
            "probabilities": np.round(P[:k], 5).tolist()}


def _describe(src: Any, sessions: list[Session], schema: LabelSchema) -> dict[str, Any]:
    Y = label_matrix(sessions, schema)
    d: dict[str, Any] = {"sessions": len(sessions), "utterances": int(len(Y)),
                         "labelled_utterances": int((Y.sum(1) > 0).sum()),
                         "label_counts": {l: int(c) for l, c in zip(schema.label_ids, Y.sum(0))}}
    if isinstance(src, (str, Path)):
        from .base import file_sha256
        d["file"] = Path(src).name
        d["sha256"] = file_sha256(Path(src))
    return d
