"""Fine-tune the rupture network: ``train_classifier(train, dev, out_dir, schema, config)``.

Over 500 lines because it holds both training recipes, which share every piece: the cross
recipe is the epoch loop below; the session recipe (:func:`_train_session`) runs that same loop
as its step 1 on single utterances, then the dialogue head (and, optionally, the joint step) from
:mod:`rupture_nlp.model.session_train`, and the same save/reload/tune ending.

One short, explicit loop (no Trainer): data in a Hugging Face ``datasets.Dataset``, tokenised
once; per epoch every labelled utterance plus a seeded random sample of the (many) unlabelled
ones; length-grouped batches (transformers' ``LengthGroupedSampler``) padded to their longest member; AdamW with linear warm-up/decay;
class imbalance via sqrt(neg/pos) positive weights; evaluation on dev after every epoch with
per-label thresholds tuned there (``decision.tune_thresholds``); early stopping on dev fine
macro-F1 (the best epoch's weights are kept). The default fine-tunes the whole encoder except
its embeddings (lr 1e-4, 4 epochs: the recipe of the bundled model; ``compact.lora_from_full``
turns the result into small adapters); ``weights="lora"`` trains LoRA adapters instead.

The steps: :func:`build_network`, :func:`_prepare_data`, :func:`_optimizer`, :func:`_fit` (the
epochs, :func:`_run_epoch` each), :func:`_save_reload_tune`: the model directory is written,
reloaded from disk and its thresholds tuned on dev with the reloaded model (so what is scored is
what a user gets back). Progress goes to the ``progress`` callback (:mod:`rupture_nlp.progress`,
stage ``"train"``, unit ``"steps"``), per-epoch summaries to this module's logger. Baselines,
``metrics.json``, ``training_config.json`` and the card are :func:`rupture_nlp.workflow.train_model`.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..decision import label_matrix, tune_thresholds
from ..errors import RuptureError
from ..progress import ProgressCallback, emit
from ..records import Session
from ..schema import LabelSchema
from ..scoring import evaluate_predictions, macro_f1
from .base import BaseModel, resolve_base
from .classifier import ModelConfig, RuptureClassifier
from .hf import load_encoder, load_tokenizer, quiet_transformers
from .architectures import SessionNet, session_input_config
from .inputs import N_PAUSE_FEATURES, Example, InputConfig, encode, examples
from .modeling import OutputLayout, RuptureNet, collate
from .session import SessionConfig, build_head, utterance_texts
from .session_train import HeadTrainConfig, JointTrainConfig, fit_head, fit_joint, session_arrays, tune_model_thresholds

log = logging.getLogger(__name__)

DEFAULT_LORA_TARGETS = ("query", "key", "value", "dense")


ARCHS = ("cross", "session")


@dataclass
class TrainConfig:
    """Settings of one training run (saved as ``training_config.json``); validated on construction.

    ``arch="session"`` trains in two steps: the utterance encoder is fine-tuned as a classifier of
    single utterances (``epochs``; none with ``freeze_encoder``), then the dialogue head is
    trained on the vectors it gives (``head``; see :mod:`rupture_nlp.model.session_train`),
    optionally both together through the head (``joint``: :func:`~rupture_nlp.model.session_train.fit_joint`),
    and its decisions tuned on dev (``session.threshold_mode``).
    """

    name: str = "rupture-model"
    arch: str = "cross"  # "cross" or "session" (see model/architectures.py)
    session: SessionConfig = field(default_factory=SessionConfig)
    head: HeadTrainConfig = field(default_factory=HeadTrainConfig)
    joint: JointTrainConfig = field(default_factory=JointTrainConfig)
    freeze_encoder: bool = False  # session: keep the base encoder as it is (no step 1)
    asr_copies: int = 0  # ASR-style renderings added per training session (workflow)
    weights: str = "full"  # "full" or "lora" (trained adapters)
    pooling: str = "mean"  # "mean" or "cls"
    input: InputConfig = field(default_factory=InputConfig)
    epochs: int = 4
    batch_size: int = 16
    lr: float | None = None  # encoder (LoRA: 1e-3, full: 1e-4 when None)
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.1  # share of steps
    dropout: float = 0.1
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    unlabelled_ratio: float | None = 1.5  # unlabelled per labelled utterance per epoch (None: all)
    pos_weight_cap: float = 30.0
    patience: int = 2  # epochs without dev improvement before stopping
    seed: int = 13
    max_steps: int | None = None  # stop after this many optimiser steps (tests, smoke runs)
    threads: int | None = None  # torch intra-op threads (None: torch default)
    speaker_mask: bool = True
    freeze_embeddings: bool = True  # keep the base's embedding layer (full fine-tuning only)
    baselines: bool = True  # also train and save every registered baseline (workflow)
    n_boot: int = 1000  # bootstrap resamples for the dev metrics with CIs (workflow)
    log_every: int = 0  # log a line every N steps (0: only per epoch)

    def __post_init__(self) -> None:
        if isinstance(self.input, dict):
            self.input = InputConfig.from_dict(self.input)
        if isinstance(self.session, dict):
            self.session = SessionConfig.from_dict(self.session)
        if isinstance(self.head, dict):
            self.head = HeadTrainConfig(**self.head)
        if isinstance(self.joint, dict):
            self.joint = JointTrainConfig(**self.joint)
        self.lora_targets = tuple(self.lora_targets)
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}")
        if self.weights not in ("full", "lora"):
            raise ValueError("weights must be 'full' or 'lora'")
        if self.pooling not in ("mean", "cls"):
            raise ValueError("pooling must be 'mean' or 'cls'")
        if int(self.epochs) < 0 or int(self.batch_size) < 1 or int(self.asr_copies) < 0:
            raise ValueError("epochs and asr_copies must be >= 0, batch_size >= 1")
        if self.unlabelled_ratio is not None and self.unlabelled_ratio < 0:
            raise ValueError("unlabelled_ratio must be >= 0 (or None for all)")
        if self.arch == "cross" and int(self.epochs) < 1:
            raise ValueError("a cross model needs at least one epoch")
        if self.joint.epochs and (self.freeze_encoder or self.arch != "session"):
            raise ValueError("joint fine-tuning needs arch 'session' and an encoder that is not frozen")

    def encoder_lr(self) -> float:
        return self.lr if self.lr is not None else (1e-3 if self.weights == "lora" else 1e-4)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input"] = self.input.to_dict()
        d["lora_targets"] = list(self.lora_targets)
        if self.arch == "cross":
            for k in ("session", "head", "joint", "freeze_encoder"):
                d.pop(k)
        d["encoder_lr"] = self.encoder_lr()
        return d


@dataclass
class TrainedClassifier:
    """What :func:`train_classifier` produced (the model directory is written)."""

    clf: RuptureClassifier  # reloaded from the directory, thresholds tuned on dev
    dev_probabilities: np.ndarray  # of the reloaded model on dev
    dev_thresholds: np.ndarray  # as tuned (thresholds.json keeps them to 4 decimals)
    base: BaseModel
    best_epoch: int
    history: list[dict[str, Any]]
    examples_seen: int
    examples_per_second: float
    timings: dict[str, float]  # data_seconds, train_loop_seconds, save_reload_tune_seconds


@dataclass
class _Data:
    """The training split tokenised once, and the dev labels."""

    cols: dict[str, list]  # the columns a batch needs, materialised
    Y: np.ndarray  # (n_train, n_labels) gold
    Ydev: np.ndarray  # (n_dev, n_labels) gold
    labelled: np.ndarray  # (n_train,) bool
    lengths: np.ndarray  # (n_train,) tokens


# ------------------------------------------------------------------------------------------
def _dataset(sessions: list[Session], schema: LabelSchema, cfg: InputConfig, tokenizer: Any):
    """A ``datasets.Dataset`` with one row per utterance: tokens, pause features, label vector."""
    from datasets import Dataset  # here, not at the top: datasets is slow to import
    from datasets.utils.logging import disable_progress_bar

    exs = examples(sessions, cfg)
    Y = label_matrix(sessions, schema).astype(np.float32)
    ds = Dataset.from_dict(
        {
            "text_a": [e.text_a for e in exs],
            "text_b": [e.text_b for e in exs],
            "pause_s": [e.pause for e in exs],
            "labels": Y.tolist(),
            "labelled": (Y.sum(1) > 0).tolist(),
        }
    )

    def tok(batch: dict) -> dict:
        ex = [Example(a, b, p) for a, b, p in zip(batch["text_a"], batch["text_b"], batch["pause_s"])]
        enc = encode(tokenizer, ex, cfg)
        enc["length"] = [len(x) for x in enc["input_ids"]]
        return enc

    with quiet_transformers():
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
    """Batches of similar length (indexes into ``lengths``, shape (n,)): transformers'
    ``LengthGroupedSampler`` (shuffle, sort within mega-batches of up to 50 batches), seeded from ``rng``."""
    from transformers.trainer_pt_utils import LengthGroupedSampler  # here, not at the top: slow to import

    g = torch.Generator().manual_seed(int(rng.integers(2**31)))
    idx = np.fromiter(LengthGroupedSampler(batch_size, lengths=[int(x) for x in lengths], generator=g), dtype=np.int64)
    return [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]


def _features(cols: dict[str, list], rows: Sequence[int]) -> list[dict]:
    return [{k: v[i] for k, v in cols.items()} for i in rows]


def build_network(schema: LabelSchema, cfg: TrainConfig, base_path: Path) -> tuple[RuptureNet, Any]:
    """A fresh network over the base encoder; returns (net, peft-wrapped encoder or None)."""
    encoder = load_encoder(base_path, cfg.pooling)
    peft_encoder = None
    if cfg.weights == "lora":
        from peft import LoraConfig, get_peft_model  # here, not at the top: only LoRA training needs peft

        targets = list(cfg.lora_targets)
        with quiet_transformers():
            peft_encoder = get_peft_model(
                encoder,
                LoraConfig(
                    r=cfg.lora_r,
                    lora_alpha=cfg.lora_alpha,
                    lora_dropout=cfg.lora_dropout,
                    target_modules=targets,
                    bias="none",
                ),
            )
        encoder = peft_encoder
    elif cfg.weights != "full":
        raise RuptureError("weights must be 'lora' or 'full'")
    elif cfg.freeze_embeddings:
        # The compact form keeps the base's embeddings (compact.py), and their optimiser
        # state is half of all parameters: training them costs time and buys nothing kept.
        for p in encoder.embeddings.parameters():
            p.requires_grad_(False)
    net = RuptureNet(
        encoder,
        OutputLayout.from_schema(schema),
        cfg.pooling,
        N_PAUSE_FEATURES if cfg.input.pause_feature else 0,
        cfg.dropout,
    )
    return net, peft_encoder


def _trainable_state(net: RuptureNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.named_parameters() if v.requires_grad}


def _dev_scores(
    P: np.ndarray, Ydev: np.ndarray, dev: list[Session], schema: LabelSchema
) -> tuple[float, float, np.ndarray]:
    """(fine macro-F1, coarse macro-F1, tuned thresholds) on dev; macro over labels with dev support."""
    th = tune_thresholds(Ydev, P)
    f1 = macro_f1(evaluate_predictions(dev, P, schema, th, n_boot=0))
    return float(f1["fine"] or 0.0), float(f1["coarse"] or 0.0), th


def runtime_info() -> dict[str, Any]:
    """Where a run trained: torch's intra-op threads, the machine, the torch version."""
    return {"threads": torch.get_num_threads(), "machine": platform.machine(), "torch": torch.__version__}


# ------------------------------------------------------------------------------------------
def _prepare_data(
    train: list[Session], dev: list[Session], schema: LabelSchema, cfg: TrainConfig, tokenizer: Any, source: Path | None
) -> _Data:
    ds, Y = _dataset(train, schema, cfg.input, tokenizer)
    if Y.sum() == 0:
        raise RuptureError("the training data carries no gold labels of the schema", source)
    keys = ["input_ids", "labels"] + [k for k in ("token_type_ids",) if k in ds.column_names]
    if cfg.input.pause_feature:
        keys.append("pause")
    return _Data(
        cols={k: ds[k] for k in keys},  # materialised once: a few MB for a corpus of this size
        Y=Y,
        Ydev=label_matrix(dev, schema),
        labelled=np.asarray(ds["labelled"], dtype=bool),
        lengths=np.asarray(ds["length"]),
    )


def _total_steps(data: _Data, cfg: TrainConfig) -> int:
    per_epoch = len(_epoch_indices(data.labelled, cfg.unlabelled_ratio, np.random.default_rng(0)))
    total = math.ceil(per_epoch / cfg.batch_size) * cfg.epochs
    return min(total, int(cfg.max_steps)) if cfg.max_steps is not None else total


def _optimizer(net: RuptureNet, cfg: TrainConfig, total_steps: int) -> tuple[torch.optim.Optimizer, Any, list]:
    """AdamW (encoder and head learning rates) with linear warm-up/decay; also the clipped parameters."""
    from transformers import get_linear_schedule_with_warmup  # here, not at the top: slow to import

    head_params = list(net.head.parameters())
    enc_params = [p for p in net.encoder.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [
            {"params": enc_params, "lr": cfg.encoder_lr(), "weight_decay": cfg.weight_decay},
            {"params": head_params, "lr": cfg.head_lr, "weight_decay": 0.0},
        ]
    )
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup * total_steps), max(1, total_steps))
    return opt, sched, enc_params + head_params


@dataclass
class _Run:
    """The state of the loop across epochs."""

    total_steps: int
    step: int = 0
    n_seen: int = 0
    t_start: float = 0.0  # when the first epoch started
    message: str | None = None  # the last progress message

    def stopped(self, cfg: TrainConfig) -> bool:
        return cfg.max_steps is not None and self.step >= cfg.max_steps


def _run_epoch(
    epoch: int,
    net: RuptureNet,
    data: _Data,
    cfg: TrainConfig,
    opt: Any,
    sched: Any,
    params: list,
    tokenizer: Any,
    weights: tuple,
    rng: np.random.Generator,
    run: _Run,
    progress: ProgressCallback | None,
) -> list[float]:
    """One epoch of optimiser steps; returns the batch losses."""
    layout = net.layout
    rows = _epoch_indices(data.labelled, cfg.unlabelled_ratio, rng)
    net.train()
    losses: list[float] = []
    for b in _length_batches(data.lengths[rows], cfg.batch_size, rng):
        if run.stopped(cfg):
            break
        batch = collate(_features(data.cols, rows[b].tolist()), tokenizer)
        target = batch.pop("labels")
        loss = layout.loss(net(**batch), target, *weights)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        run.step += 1
        run.n_seen += len(b)
        run.message = f"epoch {epoch}/{cfg.epochs} loss {np.mean(losses[-20:]):.3f}"
        emit(progress, "train", run.step, run.total_steps, unit="steps", message=run.message)
        if cfg.log_every and run.step % cfg.log_every == 0:
            log.info(
                "  step %d/%d: loss %.4f, %.1f examples/s",
                run.step,
                run.total_steps,
                np.mean(losses[-cfg.log_every :]),
                run.n_seen / (time.perf_counter() - run.t_start),
            )
    return losses


def _fit(
    clf: RuptureClassifier,
    data: _Data,
    dev: list[Session],
    cfg: TrainConfig,
    rng: np.random.Generator,
    progress: ProgressCallback | None,
) -> tuple[int, list[dict[str, Any]], _Run]:
    """The epochs with early stopping on dev fine macro-F1; leaves the best epoch's weights in
    ``clf.net``. Returns (best epoch, per-epoch history, the loop's counts)."""
    net, schema = clf.net, clf.schema
    run = _Run(_total_steps(data, cfg))
    opt, sched, params = _optimizer(net, cfg, run.total_steps)
    weights = net.layout.class_weights(data.Y, cap=cfg.pos_weight_cap)
    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    bad_epochs = 0
    emit(progress, "train", 0, run.total_steps, unit="steps")
    run.t_start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        t_ep = time.perf_counter()
        losses = _run_epoch(epoch, net, data, cfg, opt, sched, params, clf.tokenizer, weights, rng, run, progress)
        train_secs = time.perf_counter() - t_ep
        net.eval()
        t_ev = time.perf_counter()
        f1, cf1, _ = _dev_scores(clf.predict_proba(dev), data.Ydev, dev, schema)
        ev_secs = time.perf_counter() - t_ev
        history.append(
            {
                "epoch": epoch,
                "steps": run.step,
                "loss": round(float(np.mean(losses)) if losses else float("nan"), 4),
                "dev_macro_f1": round(f1, 4),
                "dev_coarse_macro_f1": round(cf1, 4),
                "train_seconds": round(train_secs, 1),
                "eval_seconds": round(ev_secs, 1),
            }
        )
        log.info(
            "epoch %d: loss %s, dev macro-F1 fine %.3f coarse %.3f (%.0fs train, %.0fs dev)",
            epoch,
            history[-1]["loss"],
            f1,
            cf1,
            train_secs,
            ev_secs,
        )
        if best is None or f1 > best[0] + 1e-9:
            best = (f1, epoch, _trainable_state(net))
            bad_epochs = 0
        else:
            bad_epochs += 1
            if bad_epochs > cfg.patience:
                log.info("early stop: no dev improvement for %d epoch(s)", bad_epochs)
                break
        if run.stopped(cfg):
            break
    emit(progress, "train", run.total_steps, run.total_steps, unit="steps", message=run.message)
    assert best is not None
    with torch.no_grad():
        current = dict(net.named_parameters())
        for k, v in best[2].items():
            current[k].copy_(v)
    net.eval()
    return best[1], history, run


def _save_reload_tune(
    clf: RuptureClassifier, out: Path, peft_encoder: Any, dev: list[Session], Ydev: np.ndarray
) -> tuple[RuptureClassifier, np.ndarray, np.ndarray]:
    """Write the model directory, reload it, tune and save thresholds on dev with the reloaded
    model; returns (reloaded classifier, its dev probabilities, the tuned thresholds)."""
    out.mkdir(parents=True, exist_ok=True)
    clf.save_pretrained(out, peft_encoder=peft_encoder)
    clf = RuptureClassifier.from_pretrained(out)
    P = clf.predict_proba(dev)
    th = tune_model_thresholds(clf, Ydev, P)
    clf.thresholds = th
    clf.save_thresholds(out)
    return clf, P, th


def _model_config(cfg: TrainConfig, base_model: BaseModel) -> ModelConfig:
    return ModelConfig(
        name=cfg.name,
        arch=cfg.arch,
        base=base_model.to_config(),
        weights=cfg.weights,
        pooling=cfg.pooling,
        dropout=cfg.dropout,
        input=cfg.input,
        speaker_mask=cfg.speaker_mask,
        session=cfg.session.to_dict() if cfg.arch == "session" else None,
        lora=(
            {
                "r": cfg.lora_r,
                "alpha": cfg.lora_alpha,
                "dropout": cfg.lora_dropout,
                "target_modules": list(cfg.lora_targets),
            }
            if cfg.weights == "lora"
            else None
        ),
    )


def _train_session(
    train: list[Session],
    dev: list[Session],
    out: Path,
    schema: LabelSchema,
    cfg: TrainConfig,
    base_model: BaseModel,
    tokenizer: Any,
    rng: np.random.Generator,
    progress: ProgressCallback | None,
    source: Path | None,
) -> TrainedClassifier:
    """The two steps of a session model (see :class:`TrainConfig`); writes ``out``."""
    t0 = time.perf_counter()
    step1 = replace(cfg, arch="cross", joint=JointTrainConfig(), input=session_input_config(cfg.input.max_length))
    history: list[dict[str, Any]] = []
    best_epoch, n_seen, peft_encoder = 0, 0, None
    t_loop = 0.0
    if cfg.freeze_encoder or cfg.epochs == 0:
        encoder = load_encoder(base_model.path, cfg.pooling)
        t_data = time.perf_counter() - t0
    else:
        net1, peft_encoder = build_network(schema, step1, base_model.path)
        data = _prepare_data(train, dev, schema, step1, tokenizer, source)
        t_data = time.perf_counter() - t0
        clf1 = RuptureClassifier(
            net1, tokenizer, schema, np.full(len(schema.label_ids), 0.5), _model_config(step1, base_model)
        )
        best_epoch, history, run = _fit(clf1, data, dev, step1, rng, progress)
        t_loop, n_seen = time.perf_counter() - run.t_start, run.n_seen
        encoder = net1.encoder
        for h in history:
            h["step"] = "utterance encoder"
    t_head = time.perf_counter()
    hidden = int(encoder.config.hidden_size)
    net = SessionNet(encoder, build_head(schema, hidden, cfg.session), cfg.pooling).eval()
    vecs, feats, gold = session_arrays(net, tokenizer, train, schema, cfg.input.max_length, progress)
    if not any(g.sum() for g in gold):
        raise RuptureError("the training data carries no gold labels of the schema", source)
    losses = fit_head(net.head, vecs, feats, gold, cfg.head)
    history.append(
        {
            "step": "dialogue head",
            "epochs": cfg.head.epochs,
            "loss": round(losses[-1], 4),
            "train_seconds": round(time.perf_counter() - t_head, 1),
        }
    )
    log.info(
        "dialogue head: %d epochs, final loss %.4f (%.0fs)", cfg.head.epochs, losses[-1], time.perf_counter() - t_head
    )
    if cfg.joint.epochs:
        t_joint = time.perf_counter()
        texts = [utterance_texts(s) for s in train]
        losses = fit_joint(net, tokenizer, texts, vecs, feats, gold, cfg.joint, cfg.input.max_length, progress)
        history.append(
            {
                "step": "joint",
                "epochs": cfg.joint.epochs,
                "loss": round(losses[-1], 4),
                "train_seconds": round(time.perf_counter() - t_joint, 1),
            }
        )
        log.info("joint step: %d epoch(s), final loss %.4f", cfg.joint.epochs, losses[-1])
    t_loop += time.perf_counter() - t_head
    clf = RuptureClassifier(net, tokenizer, schema, np.full(len(schema.label_ids), 0.5), _model_config(cfg, base_model))
    t_save = time.perf_counter()
    clf, P, th = _save_reload_tune(clf, out, peft_encoder, dev, label_matrix(dev, schema))
    f1 = macro_f1(evaluate_predictions(dev, P, schema, th, n_boot=0))
    history[-1].update(
        dev_macro_f1=round(float(f1["fine"] or 0.0), 4), dev_coarse_macro_f1=round(float(f1["coarse"] or 0.0), 4)
    )
    t_save = time.perf_counter() - t_save
    return TrainedClassifier(
        clf,
        P,
        th,
        base_model,
        best_epoch,
        history,
        n_seen,
        round(n_seen / max(t_loop, 1e-9), 2),
        {
            "data_seconds": round(t_data, 1),
            "train_loop_seconds": round(t_loop, 1),
            "save_reload_tune_seconds": round(t_save, 1),
        },
    )


def train_classifier(
    train: Sequence[Session],
    dev: Sequence[Session],
    out_dir: str | Path,
    schema: LabelSchema,
    config: TrainConfig,
    *,
    base: str | Path | None = None,
    progress: ProgressCallback | None = None,
    source: Path | None = None,
) -> TrainedClassifier:
    """Train on ``train`` (gold labels), select the epoch and tune thresholds on ``dev``, write the
    model directory ``out_dir`` (weights, tokenizer, schema, thresholds) and return the run.

    ``base``: a local HF model directory (default: the hash-checked all-MiniLM-L6-v2);
    ``progress``: called with ``ProgressEvent("train", step, total_steps, "steps")``;
    ``source``: the training file, named in errors.
    """
    cfg = config
    train, dev = list(train), list(dev)
    out = Path(out_dir)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    from transformers import set_seed  # here, not at the top: slow to import

    set_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    base_model = resolve_base(base)
    tokenizer = load_tokenizer(base_model.path)
    if cfg.arch == "session":
        return _train_session(train, dev, out, schema, cfg, base_model, tokenizer, rng, progress, source)
    net, peft_encoder = build_network(schema, cfg, base_model.path)
    t0 = time.perf_counter()
    data = _prepare_data(train, dev, schema, cfg, tokenizer, source)
    t_data = time.perf_counter() - t0

    clf = RuptureClassifier(net, tokenizer, schema, np.full(len(schema.label_ids), 0.5), _model_config(cfg, base_model))
    best_epoch, history, run = _fit(clf, data, dev, cfg, rng, progress)
    t_loop = time.perf_counter() - run.t_start

    t_save = time.perf_counter()
    clf, P, th = _save_reload_tune(clf, out, peft_encoder, dev, data.Ydev)
    t_save = time.perf_counter() - t_save
    return TrainedClassifier(
        clf,
        P,
        th,
        base_model,
        best_epoch,
        history,
        run.n_seen,
        round(run.n_seen / max(t_loop, 1e-9), 2),
        {
            "data_seconds": round(t_data, 1),
            "train_loop_seconds": round(t_loop, 1),
            "save_reload_tune_seconds": round(t_save, 1),
        },
    )
