"""The session architecture (``arch="session"``): read every utterance once, then the dialogue.

1. **Utterance encoder**: the (fine-tuned) transformer encodes each utterance once, alone, as
   ``"client: text"``; mean pooling gives a vector of ``hidden_size`` (384 for MiniLM).
2. **Dialogue encoder** (:class:`DialogueHead`): per utterance the vector plus
   :data:`N_FEATURES` dialogue features (speaker role one-hot, speaker change, pause before it,
   its length) is projected and read by a bidirectional GRU over a *window* of consecutive
   utterances of one session, so each utterance is seen in the light of what came before and
   after it.
3. **Heads**: a coarse head (one logit per category: withdrawal / confrontation / repair) and a
   fine head (one logit per label). A *marker memory* gives every utterance the highest coarse
   probability of each client category among the ``marker_window`` utterances before it (a
   repair answers a rupture; a deferential "okay" follows an objection), and a second coarse
   head reads it.

Scores (``two_stage=True``): ``P(label) = P(category) * p(label) / max p(label' in category)``,
so the category's most likely label carries the category's probability and a threshold on the
category decides the category (one threshold per category, stored for each of its labels).
With ``two_stage=False`` the fine head's sigmoid is the score and the coarse head only adds a
training signal.

Windows (:func:`windows`): sessions longer than ``window`` utterances are cut into windows of
``window`` with stride ``window // 2``; each utterance takes its prediction from the window in
which it is most central, so it sees at least ``window // 4`` utterances on each side unless it
is that close to the session's start or end. Predictions do not depend on which other sessions
are in a batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..records import Session
from ..schema import LabelSchema
from .inputs import pause_before

ROLES = ("therapist", "client")
#: speaker one-hot (therapist, client, other) + speaker change + log1p(pause s) + pause known + log1p(words)
N_FEATURES = 7


@dataclass
class SessionConfig:
    """Settings of the dialogue encoder and its windows (``config.json`` key ``session``)."""

    window: int = 64  # utterances per window (inference stride: window // 2)
    hidden: int = 256  # GRU hidden size per direction (128 and 64 were weaker by 5-fold CV)
    layers: int = 1  # GRU layers
    dropout: float = 0.2
    two_stage: bool = True  # category probability x relative label probability (see module doc)
    marker_window: int = 8  # utterances looked back for client markers (0: no marker memory)
    threshold_mode: str = "count"  # decisions tuned for unbiased counts ("count") or for F1 ("f1")

    def __post_init__(self) -> None:
        if int(self.window) < 4:
            raise ValueError("session.window must be at least 4 utterances")
        if int(self.hidden) < 1 or int(self.layers) < 1:
            raise ValueError("session.hidden and session.layers must be positive")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError("session.dropout must be in [0, 1)")
        if self.threshold_mode not in ("count", "f1"):
            raise ValueError("session.threshold_mode must be 'count' or 'f1'")
        if int(self.marker_window) < 0:
            raise ValueError("session.marker_window must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "SessionConfig":
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in (d or {}).items() if k in known})


def utterance_texts(session: Session) -> list[str]:
    """What the utterance encoder reads: ``"speaker: text"`` per utterance, in order."""
    return [f"{u.speaker}: {u.text}" for u in session.utterances]


def session_features(session: Session) -> np.ndarray:
    """Dialogue features (n_utterances, N_FEATURES), float32: therapist / client / other,
    speaker change from the previous utterance, log1p(pause seconds), pause known, log1p(words)/3."""
    utts = session.utterances
    X = np.zeros((len(utts), N_FEATURES), dtype=np.float32)
    for i, u in enumerate(utts):
        X[i, ROLES.index(u.speaker) if u.speaker in ROLES else 2] = 1.0
        X[i, 3] = 1.0 if i and utts[i - 1].speaker != u.speaker else 0.0
        p = pause_before(utts[i - 1] if i else None, u)
        if p is not None:
            X[i, 4], X[i, 5] = math.log1p(p), 1.0
        X[i, 6] = math.log1p(len(u.text.split())) / 3.0
    return X


def windows(n: int, window: int) -> list[tuple[int, int, int, int]]:
    """Inference windows over a session of ``n`` utterances.

    Returns ``(start, end, keep_from, keep_to)`` tuples: the window covers utterances
    ``start:end`` and supplies the predictions of ``keep_from:keep_to``; the kept ranges tile
    ``0:n`` exactly once. Stride ``window // 2``; each utterance is kept from the window whose
    centre is nearest to it.
    """
    if n <= window:
        return [(0, n, 0, n)] if n else []
    stride = max(1, window // 2)
    starts = list(range(0, n - window + 1, stride))
    if starts[-1] != n - window:
        starts.append(n - window)
    centres = np.array([s + window / 2 for s in starts])
    owner = np.abs(np.arange(n)[:, None] + 0.5 - centres[None, :]).argmin(1)
    out = []
    for k, s in enumerate(starts):
        kept = np.flatnonzero(owner == k)
        if len(kept):
            out.append((s, s + window, int(kept[0]), int(kept[-1]) + 1))
    return out


def client_categories(schema: LabelSchema) -> list[int]:
    """Indexes (in ``schema.category_ids``) of the categories whose labels only clients carry."""
    out = []
    for k, c in enumerate(schema.category_ids):
        speakers = {schema.label(l).speaker for l in schema.labels_in(c)}
        if speakers == {"client"}:
            out.append(k)
    return out


def category_index(schema: LabelSchema) -> np.ndarray:
    """For each label (schema order), the index of its category: int array (n_labels,)."""
    cats = schema.category_ids
    return np.array([cats.index(schema.category_of(l)) for l in schema.label_ids], dtype=np.int64)


class DialogueHead(nn.Module):
    """Utterance vectors + dialogue features of a window -> coarse and fine logits.

    ``forward(V, X, lengths)``: ``V`` (batch, T, d_in) utterance vectors, ``X`` (batch, T,
    N_FEATURES), ``lengths`` (batch,) real utterances per window (padding at the end). Returns
    ``(coarse, fine, coarse_first)``: (batch, T, n_categories) logits after the marker memory,
    (batch, T, n_labels) logits, and the first coarse head's logits (a training signal).
    """

    def __init__(
        self,
        d_in: int,
        n_labels: int,
        n_categories: int,
        label_category: Sequence[int],
        client_cats: Sequence[int],
        cfg: SessionConfig,
    ):
        super().__init__()
        h = int(cfg.hidden)
        self.cfg = cfg
        self.proj = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(d_in + N_FEATURES, 2 * h), nn.GELU())
        self.gru = nn.GRU(
            2 * h,
            h,
            num_layers=int(cfg.layers),
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        n_mem = len(client_cats) if cfg.marker_window else 0
        self.coarse_first = nn.Linear(4 * h, n_categories)
        self.coarse = nn.Linear(4 * h + n_mem, n_categories)
        self.fine = nn.Linear(4 * h + n_mem, n_labels)
        self.register_buffer(
            "label_category", torch.as_tensor(list(label_category), dtype=torch.long), persistent=False
        )
        self.register_buffer("client_cats", torch.as_tensor(list(client_cats), dtype=torch.long), persistent=False)

    def memory(self, coarse_first: torch.Tensor) -> torch.Tensor:
        """(batch, T, n_client_categories): max client-category probability over the
        ``marker_window`` utterances before each one (0 at the window's start)."""
        k = int(self.cfg.marker_window)
        p = torch.sigmoid(coarse_first[..., self.client_cats])  # (B, T, m)
        padded = F.pad(p.transpose(1, 2), (k, 0))  # (B, m, k + T)
        return F.max_pool1d(padded, kernel_size=k, stride=1)[..., :-1].transpose(1, 2)

    def forward(
        self, V: torch.Tensor, X: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.proj(torch.cat([V, X.to(V.dtype)], dim=-1))
        T = z.shape[1]
        packed = nn.utils.rnn.pack_padded_sequence(z, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
        hcat = self.drop(torch.cat([z, out], dim=-1))
        c1 = self.coarse_first(hcat)
        if self.cfg.marker_window and len(self.client_cats):
            hcat = torch.cat([hcat, self.memory(c1)], dim=-1)
        return self.coarse(hcat), self.fine(hcat), c1

    def probabilities(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        """Label scores (..., n_labels) from the logits (see the module docstring)."""
        pf = torch.sigmoid(fine)
        if not self.cfg.two_stage:
            return pf
        pc = torch.sigmoid(coarse)[..., self.label_category]  # (..., n_labels)
        n_cat = self.coarse.out_features
        top = pf.new_zeros(pf.shape[:-1] + (n_cat,)).scatter_reduce(
            -1, self.label_category.expand_as(pf), pf, "amax", include_self=False
        )
        return pc * pf / top.gather(-1, self.label_category.expand_as(pf)).clamp(min=1e-12)

    def loss(
        self,
        coarse: torch.Tensor,
        fine: torch.Tensor,
        coarse_first: torch.Tensor,
        Y: torch.Tensor,
        mask: torch.Tensor,
        pos_weight: torch.Tensor,
        coarse_pos_weight: torch.Tensor,
    ) -> torch.Tensor:
        """BCE of the fine head (every label) and of both coarse heads, over real utterances.

        ``Y`` (batch, T, n_labels) 0/1; ``mask`` (batch, T) bool; weights (n_labels,), (n_categories,).
        """
        C = torch.zeros(Y.shape[:-1] + (coarse.shape[-1],), dtype=Y.dtype, device=Y.device)
        C = C.scatter_reduce(-1, self.label_category.expand_as(Y), Y, "amax", include_self=True)
        m = mask.unsqueeze(-1).to(Y.dtype)
        n = m.sum().clamp(min=1.0)

        def bce(logits: torch.Tensor, target: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            raw = F.binary_cross_entropy_with_logits(logits, target, pos_weight=w, reduction="none")
            return (raw * m).sum() / n / target.shape[-1]

        fine_loss = bce(fine, Y, pos_weight)
        if self.cfg.two_stage:
            # the label given its category: only where the category is present
            mc = (C[..., self.label_category] > 0).to(Y.dtype) * m
            raw = F.binary_cross_entropy_with_logits(fine, Y, reduction="none")
            fine_loss = (raw * mc).sum() / mc.sum().clamp(min=1.0)
        return fine_loss + bce(coarse, C, coarse_pos_weight) + 0.5 * bce(coarse_first, C, coarse_pos_weight)


def window_batches(lengths: Sequence[int], window: int, max_windows: int) -> list[list[tuple[int, int, int, int, int]]]:
    """Inference windows of many sessions grouped in batches of at most ``max_windows``.

    Each item is ``(session index, start, end, keep_from, keep_to)`` (see :func:`windows`).
    """
    items = [(i, *w) for i, n in enumerate(lengths) for w in windows(int(n), window)]
    return [items[k : k + max_windows] for k in range(0, len(items), max_windows)]


def run_windows(
    head: DialogueHead,
    vectors: Sequence[np.ndarray],
    features: Sequence[np.ndarray],
    max_windows: int = 32,
    on_batch: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """Label scores of every session: per session an array (n_utterances, n_labels), float32.

    ``vectors[i]`` (n_i, d) and ``features[i]`` (n_i, N_FEATURES) of session ``i``."""
    window = int(head.cfg.window)
    n_labels = head.fine.out_features
    out = [np.zeros((len(v), n_labels), dtype=np.float32) for v in vectors]
    head.eval()
    with torch.inference_mode():
        for batch in window_batches([len(v) for v in vectors], window, max_windows):
            T = max(e - s for _, s, e, _, _ in batch)
            V = torch.zeros((len(batch), T, vectors[batch[0][0]].shape[1]))
            X = torch.zeros((len(batch), T, N_FEATURES))
            L = torch.tensor([e - s for _, s, e, _, _ in batch])
            for b, (i, s, e, _, _) in enumerate(batch):
                V[b, : e - s] = torch.from_numpy(np.asarray(vectors[i][s:e], dtype=np.float32))
                X[b, : e - s] = torch.from_numpy(features[i][s:e])
            coarse, fine, _ = head(V, X, L)
            P = head.probabilities(coarse, fine).float().numpy()
            for b, (i, s, _, k0, k1) in enumerate(batch):
                out[i][k0:k1] = P[b, k0 - s : k1 - s]
            if on_batch:
                on_batch(sum(k1 - k0 for _, _, _, k0, k1 in batch))
    return out


def build_head(schema: LabelSchema, d_in: int, cfg: SessionConfig) -> DialogueHead:
    """A fresh dialogue head for ``schema`` over utterance vectors of size ``d_in``."""
    return DialogueHead(
        d_in,
        len(schema.label_ids),
        len(schema.category_ids),
        category_index(schema).tolist(),
        client_categories(schema),
        cfg,
    )
