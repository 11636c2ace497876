"""Training the dialogue head of the session architecture on utterance vectors.

:func:`fit_head` trains a :class:`~rupture_nlp.model.session.DialogueHead` on per-session
arrays (vectors (n_i, d), features (n_i, N_FEATURES), gold (n_i, n_labels)): windows of
``window`` consecutive utterances drawn with a random offset every epoch, AdamW, positive-class
weights sqrt(neg / pos) capped. The vectors are fixed during this step (cached), so an epoch
over a whole corpus takes seconds: this is what makes the 5-fold design search cheap.

:func:`tune_category_thresholds` picks one decision threshold per category (two-stage scores):
``"count"`` (default) the threshold at which the number of utterances predicted in the category
equals the gold number on the tuning data, so per-session counts are unbiased; ``"f1"`` the one
maximising the category's F1; :func:`tune_model_thresholds` applies it to a model (per-label
thresholds for cross models). :func:`session_arrays` computes the per-session arrays ``fit_head``
trains on.

:func:`fit_joint` (step 3, optional) fine-tunes the encoder *through* the dialogue head: windows
as in :func:`fit_head`, where the utterances chosen for gradients (every labelled one and a
sample of the others, :class:`JointTrainConfig`) are re-encoded with gradients and the rest keep
their cached vectors from step 2 (a memory bank: the encoder moves little at its small learning
rate, and encoding only the chosen utterances keeps an epoch at the cost of a step-1 epoch).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..decision import coarse_matrix, label_matrix, tune_thresholds
from ..progress import ProgressCallback, emit
from ..records import Session
from ..schema import LabelSchema
from .architectures import embed_texts
from .session import N_FEATURES, DialogueHead, SessionConfig, category_index, session_features, utterance_texts

log = logging.getLogger(__name__)

THRESHOLD_MODES = ("count", "f1")


@dataclass
class HeadTrainConfig:
    """Settings of :func:`fit_head` (saved in ``training_config.json`` under ``head``)."""

    epochs: int = 12
    batch_windows: int = 16
    lr: float = 2e-3
    weight_decay: float = 0.01
    pos_weight_cap: float = 10.0
    seed: int = 13

    def __post_init__(self) -> None:
        if int(self.epochs) < 1 or int(self.batch_windows) < 1:
            raise ValueError("head epochs and batch_windows must be positive")
        if float(self.lr) <= 0:
            raise ValueError("head lr must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JointTrainConfig:
    """Settings of :func:`fit_joint` (saved in ``training_config.json`` under ``joint``)."""

    epochs: int = 0  # 0: no joint step
    encoder_lr: float = 2e-5
    head_lr: float = 2e-4
    grad_ratio: float | None = 1.5  # unlabelled per labelled utterance re-encoded with gradients (None: all)
    windows_per_step: int = 2
    chunk: int = 32  # utterances per encoder call (grouped by length)
    pos_weight_cap: float = 10.0
    seed: int = 13

    def __post_init__(self) -> None:
        if int(self.epochs) < 0 or int(self.windows_per_step) < 1 or int(self.chunk) < 1:
            raise ValueError("joint epochs must be >= 0, windows_per_step and chunk >= 1")
        if float(self.encoder_lr) <= 0 or float(self.head_lr) <= 0:
            raise ValueError("joint learning rates must be positive")
        if self.grad_ratio is not None and float(self.grad_ratio) < 0:
            raise ValueError("joint grad_ratio must be >= 0 (or None for all)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _train_windows(lengths: Sequence[int], window: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(session, start, end) windows covering every session, cut at a random offset."""
    out = []
    for i, n in enumerate(lengths):
        if n <= window:
            out.append((i, 0, int(n)))
            continue
        off = int(rng.integers(0, window))
        for s in sorted({0, *range(off, int(n) - window // 4, window)}):
            out.append((i, s, min(int(n), s + window)))
    return out


def _window_tensors(
    batch: Sequence[tuple[int, int, int]],
    vectors: Sequence[np.ndarray],
    features: Sequence[np.ndarray],
    gold: Sequence[np.ndarray],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded tensors of ``(session, start, end)`` windows: vectors (B, T, d), features
    (B, T, N_FEATURES), gold (B, T, n_labels) float32 and the mask of real utterances (B, T) bool."""
    T = max(e - s for _, s, e in batch)
    d, n_labels = int(vectors[batch[0][0]].shape[1]), int(gold[batch[0][0]].shape[1])
    V = torch.zeros((len(batch), T, d))
    X = torch.zeros((len(batch), T, N_FEATURES))
    Y = torch.zeros((len(batch), T, n_labels))
    M = torch.zeros((len(batch), T), dtype=torch.bool)
    for b, (i, s, e) in enumerate(batch):
        V[b, : e - s] = torch.from_numpy(np.asarray(vectors[i][s:e], dtype=np.float32))
        X[b, : e - s] = torch.from_numpy(np.asarray(features[i][s:e], dtype=np.float32))
        Y[b, : e - s] = torch.from_numpy(np.asarray(gold[i][s:e], dtype=np.float32))
        M[b, : e - s] = True
    return V, X, Y, M


def _weights(Y: np.ndarray, cap: float) -> torch.Tensor:
    n = max(1, len(Y))
    pos = Y.sum(0).astype(float)
    return torch.tensor(np.clip(np.sqrt((n - pos) / np.maximum(pos, 1.0)), 1.0, cap), dtype=torch.float32)


def _loss_weights(head: DialogueHead, gold: Sequence[np.ndarray], cap: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive-class weights of the fine labels (n_labels,) and of the categories (n_categories,)."""
    Y = np.concatenate([np.asarray(g) for g in gold]) if gold else np.zeros((0, 0))
    return _weights(Y, cap), _weights(coarse_gold(Y, head.label_category.numpy(), head.coarse.out_features), cap)


def _steps_per_epoch(lengths: Sequence[int], window: int, per_step: int) -> int:
    """An estimate from one fixed draw of the offsets: the real count varies from epoch to epoch."""
    return max(1, int(np.ceil(len(_train_windows(lengths, window, np.random.default_rng(0))) / per_step)))


def _epoch_batches(
    lengths: Sequence[int], window: int, per_step: int, rng: np.random.Generator
) -> Iterator[list[tuple[int, int, int]]]:
    """One epoch: windows cut at a random offset (:func:`_train_windows`), shuffled, ``per_step`` at a time."""
    wins = _train_windows(lengths, window, rng)
    order = rng.permutation(len(wins))
    for k in range(0, len(order), per_step):
        yield [wins[j] for j in order[k : k + per_step]]


def coarse_gold(Y: np.ndarray, label_category: np.ndarray, n_categories: int) -> np.ndarray:
    """(n, n_labels) 0/1 -> (n, n_categories) 0/1: any label of the category."""
    C = np.zeros((len(Y), n_categories), dtype=Y.dtype)
    for k in range(n_categories):
        cols = np.flatnonzero(label_category == k)
        if len(cols):
            C[:, k] = Y[:, cols].max(1)
    return C


def fit_head(
    head: DialogueHead,
    vectors: Sequence[np.ndarray],
    features: Sequence[np.ndarray],
    gold: Sequence[np.ndarray],
    cfg: HeadTrainConfig,
) -> list[float]:
    """Train ``head`` in place; returns the mean loss of every epoch.

    ``vectors[i]`` (n_i, d) float32, ``features[i]`` (n_i, N_FEATURES), ``gold[i]`` (n_i, n_labels) 0/1.
    """
    if not (len(vectors) == len(features) == len(gold)):
        raise ValueError("vectors, features and gold must hold the same sessions")
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    pw, cpw = _loss_weights(head, gold, cfg.pos_weight_cap)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    window = int(head.cfg.window)
    lengths = [len(v) for v in vectors]
    # every epoch's batches drawn up front (the same draws, in the same order, as drawing them epoch by
    # epoch), so that the schedule knows how many steps there really are: the number of windows varies
    # with their random offsets. The schedule's length stays the fixed-draw estimate plus one step per
    # epoch wherever that is enough (so models built before this rebuild bit for bit), else the real count.
    plan = [list(_epoch_batches(lengths, window, cfg.batch_windows, rng)) for _ in range(cfg.epochs)]
    n_steps = max(cfg.epochs * (_steps_per_epoch(lengths, window, cfg.batch_windows) + 1), sum(map(len, plan)))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=n_steps, pct_start=0.1, anneal_strategy="linear"
    )
    history = []
    for epoch, batches in enumerate(plan):
        head.train()
        losses = []
        for batch in batches:
            V, X, Y, M = _window_tensors(batch, vectors, features, gold)
            coarse, fine, c1 = head(V, X, M.sum(1))
            loss = head.loss(coarse, fine, c1, Y, M, pw, cpw)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
        history.append(float(np.mean(losses)) if losses else float("nan"))
        log.debug("head epoch %d: loss %.4f", epoch + 1, history[-1])
    head.eval()
    return history


def _grad_mask(gold: Sequence[np.ndarray], ratio: float | None, rng: np.random.Generator) -> list[np.ndarray]:
    """Per session, which utterances get gradients this epoch: every labelled one and
    ``ratio`` x as many unlabelled ones drawn at random over the corpus (all when None)."""
    if ratio is None:
        return [np.ones(len(g), dtype=bool) for g in gold]
    labelled = [np.asarray(g).sum(1) > 0 for g in gold]
    flat = np.concatenate(labelled) if labelled else np.zeros(0, dtype=bool)
    free = np.flatnonzero(~flat)
    pick = rng.choice(free, size=min(len(free), int(round(ratio * flat.sum()))), replace=False)
    chosen = flat.copy()
    chosen[pick] = True
    bounds = np.cumsum([0] + [len(g) for g in gold])
    return [chosen[bounds[i] : bounds[i + 1]] for i in range(len(gold))]


def fit_joint(
    net: Any,
    tokenizer: Any,
    texts: Sequence[Sequence[str]],
    vectors: Sequence[np.ndarray],
    features: Sequence[np.ndarray],
    gold: Sequence[np.ndarray],
    cfg: JointTrainConfig,
    max_length: int,
    progress: ProgressCallback | None = None,
) -> list[float]:
    """Fine-tune ``net.encoder`` and ``net.head`` (a ``SessionNet``) together, in place; returns
    the mean loss of every epoch.

    ``texts[i]`` the utterance texts of session ``i`` as the model reads them
    (:func:`~rupture_nlp.model.session.utterance_texts`), ``vectors[i]`` (n_i, hidden) their
    cached vectors (updated in place for the re-encoded utterances), ``features[i]`` and
    ``gold[i]`` as in :func:`fit_head`.
    """
    from .modeling import collate

    if not (len(texts) == len(vectors) == len(features) == len(gold)):
        raise ValueError("texts, vectors, features and gold must hold the same sessions")
    head = net.head
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    flat = [t for ts in texts for t in ts]
    enc = tokenizer(flat, truncation=True, max_length=max_length)
    keys = [k for k in enc.keys() if k != "attention_mask"]
    bounds = np.cumsum([0] + [len(ts) for ts in texts])
    pw, cpw = _loss_weights(head, gold, cfg.pos_weight_cap)
    enc_params = [p for p in net.encoder.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": enc_params, "lr": cfg.encoder_lr}, {"params": list(head.parameters()), "lr": cfg.head_lr}],
        weight_decay=0.01,
    )
    window = int(head.cfg.window)
    lengths = [len(v) for v in vectors]
    # every epoch's gradient mask and batches drawn up front (same draws, same order), so that the
    # schedule and the progress know the real number of steps
    plan = [
        (_grad_mask(gold, cfg.grad_ratio, rng), list(_epoch_batches(lengths, window, cfg.windows_per_step, rng)))
        for _ in range(cfg.epochs)
    ]
    total = max(1, sum(len(batches) for _, batches in plan))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / max(1, total // 10)) * max(0.0, (total - k) / total)
    )
    d = int(vectors[0].shape[1]) if len(vectors) else 0
    history, step = [], 0
    emit(progress, "train", 0, total, unit="steps", message="joint fine-tuning")
    for grad, batches in plan:
        net.train()
        losses = []
        for batch in batches:
            V, X, Y, M = _window_tensors(batch, vectors, features, gold)
            # (batch row, position, session, utterance) of the utterances re-encoded with gradients
            where = [(b, j - s, i, j) for b, (i, s, e) in enumerate(batch) for j in range(s, e) if grad[i][j]]
            if where:
                rows = [int(bounds[i] + j) for _, _, i, j in where]
                order_len = np.argsort([len(enc["input_ids"][r]) for r in rows], kind="stable")
                fresh = []
                for c in range(0, len(order_len), cfg.chunk):
                    idx = order_len[c : c + cfg.chunk]
                    feats = [{key: enc[key][rows[q]] for key in keys} for q in idx]
                    fresh.append((idx, net.embed(**collate(feats, tokenizer))))
                vec = torch.zeros((len(rows), d))
                for idx, v in fresh:
                    vec = vec.index_copy(0, torch.as_tensor(idx), v)
                bi = torch.as_tensor([w[0] for w in where])
                ti = torch.as_tensor([w[1] for w in where])
                V = V.index_put((bi, ti), vec)
            coarse, fine, c1 = head(V, X, M.sum(1))
            loss = head.loss(coarse, fine, c1, Y, M, pw, cpw)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(enc_params + list(head.parameters()), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if where:
                done = vec.detach().numpy()
                for q, (_, _, i, j) in enumerate(where):
                    vectors[i][j] = done[q]
            step += 1
            emit(progress, "train", step, total, unit="steps", message="joint fine-tuning")
        history.append(float(np.mean(losses)) if losses else float("nan"))
        log.info("joint epoch %d: loss %.4f", len(history), history[-1])
    net.eval()
    return history


def tune_category_thresholds(
    C: np.ndarray, Pc: np.ndarray, mode: str = "count", grid: Sequence[float] | None = None
) -> np.ndarray:
    """One threshold per category (n_categories,) from gold ``C`` and scores ``Pc`` (n, n_categories).

    ``"count"``: the grid threshold whose predicted positives are closest to the gold positives
    (ties: the higher F1); ``"f1"``: the threshold of the highest F1 (ties: closest to 0.5).
    """
    if mode not in THRESHOLD_MODES:
        raise ValueError(f"mode must be one of {THRESHOLD_MODES}")
    C = np.asarray(C) > 0
    Pc = np.asarray(Pc, dtype=float)
    if C.shape != Pc.shape or C.ndim != 2:
        raise ValueError("C and Pc must be (n, n_categories) arrays of one shape")
    grid = np.asarray(grid if grid is not None else np.round(np.arange(0.02, 0.981, 0.005), 3))
    out = np.full(C.shape[1], 0.5)
    for k in range(C.shape[1]):
        pred = Pc[:, k][:, None] >= grid[None, :]
        gold = C[:, k][:, None]
        tp = (pred & gold).sum(0)
        denom = pred.sum(0) + gold.sum(0)
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
        if gold.sum() == 0:
            continue
        if mode == "f1":
            best = np.flatnonzero(f1 >= f1.max() - 1e-12)
            out[k] = grid[best[np.argmin(np.abs(grid[best] - 0.5))]]
        else:
            gap = np.abs(pred.sum(0) - gold.sum())
            best = np.flatnonzero(gap == gap.min())
            out[k] = grid[best[np.argmax(f1[best])]]
    return out


def tune_model_thresholds(clf: Any, Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Decision thresholds (n_labels,) for ``clf`` from gold ``Y`` and its scores ``P`` (n, n_labels).

    Two-stage session models: one threshold per category (``session.threshold_mode``: equal
    predicted and gold counts, or best F1), set on each of its labels; otherwise per-label
    thresholds (:func:`rupture_nlp.decision.tune_thresholds`).
    """
    if clf.config.arch == "session":
        scfg = SessionConfig.from_dict(clf.config.session)
        if scfg.two_stage:
            lc = category_index(clf.schema)
            tc = tune_category_thresholds(
                coarse_gold(np.asarray(Y), lc, len(clf.schema.category_ids)),
                coarse_matrix(np.asarray(P), clf.schema),
                scfg.threshold_mode,
            )
            return tc[lc]
    return tune_thresholds(Y, P)


def session_arrays(
    net: Any,
    tokenizer: Any,
    sessions: Sequence[Session],
    schema: LabelSchema,
    max_length: int,
    progress: ProgressCallback | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per session: utterance vectors (n_i, hidden), dialogue features (n_i, N_FEATURES) and gold
    labels (n_i, n_labels) — what the dialogue head trains on."""
    texts = [t for s in sessions for t in utterance_texts(s)]
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        emit(progress, "train", done[0], len(texts), unit="utterances", message="encoding utterances")

    V = embed_texts(net, tokenizer, texts, max_length, on_batch=tick)
    bounds = np.cumsum([0] + [len(s.utterances) for s in sessions])
    vecs = [V[bounds[i] : bounds[i + 1]] for i in range(len(sessions))]
    return (
        vecs,
        [session_features(s) for s in sessions],
        [label_matrix([s], schema).astype(np.float32) for s in sessions],
    )
