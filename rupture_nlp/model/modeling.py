"""The network: a pretrained encoder, a pooling step and a small classification head.

Output layout (``OutputLayout``): every label of a non-exclusive category gets one logit
(sigmoid, multi-label); every exclusive category with k labels gets k + 1 logits (softmax over
'none' and its labels, so at most one of them is likely). ``probabilities`` turns the
(batch, n_outputs) logits into a (batch, n_labels) matrix in ``schema.label_ids`` order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..schema import LabelSchema

POOLINGS = ("mean", "cls")


@dataclass(frozen=True)
class OutputLayout:
    """Where each label's logit lives.

    ``sigmoid_cols``: (label column, logit index) pairs; ``groups``: one per exclusive
    category, (logit index of 'none', [(label column, logit index), ...]).
    """

    n_labels: int
    n_outputs: int
    sigmoid_cols: tuple[tuple[int, int], ...]
    groups: tuple[tuple[int, tuple[tuple[int, int], ...]], ...]

    @classmethod
    def from_schema(cls, schema: LabelSchema) -> "OutputLayout":
        ids = schema.label_ids
        exclusive = {c.id for c in schema.categories if c.exclusive and len(schema.labels_in(c.id)) >= 2}
        k = 0
        sig = []
        for j, l in enumerate(ids):
            if schema.category_of(l) not in exclusive:
                sig.append((j, k))
                k += 1
        groups = []
        for c in schema.category_ids:
            if c not in exclusive:
                continue
            none = k
            k += 1
            members = []
            for j, l in enumerate(ids):
                if schema.category_of(l) == c:
                    members.append((j, k))
                    k += 1
            groups.append((none, tuple(members)))
        return cls(len(ids), k, tuple(sig), tuple(groups))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """(batch, n_outputs) logits -> (batch, n_labels) probabilities."""
        P = logits.new_zeros((logits.shape[0], self.n_labels))
        if self.sigmoid_cols:
            cols = torch.tensor([c for c, _ in self.sigmoid_cols])
            outs = torch.tensor([o for _, o in self.sigmoid_cols])
            P[:, cols] = torch.sigmoid(logits[:, outs])
        for none, members in self.groups:
            idx = torch.tensor([none] + [o for _, o in members])
            sm = torch.softmax(logits[:, idx], dim=-1)
            P[:, torch.tensor([c for c, _ in members])] = sm[:, 1:]
        return P

    def loss(
        self,
        logits: torch.Tensor,
        Y: torch.Tensor,
        pos_weight: torch.Tensor | None = None,
        group_weights: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Mean BCE over sigmoid labels plus mean cross-entropy per exclusive group.

        ``Y``: (batch, n_labels) 0/1 floats; ``pos_weight``: (n_sigmoid,) positive-class weights;
        ``group_weights``: per group, (k + 1,) class weights ('none' first).
        """
        total = logits.new_zeros(())
        if self.sigmoid_cols:
            cols = torch.tensor([c for c, _ in self.sigmoid_cols])
            outs = torch.tensor([o for _, o in self.sigmoid_cols])
            total = total + F.binary_cross_entropy_with_logits(logits[:, outs], Y[:, cols], pos_weight=pos_weight)
        for g, (none, members) in enumerate(self.groups):
            idx = torch.tensor([none] + [o for _, o in members])
            sub = Y[:, torch.tensor([c for c, _ in members])]
            # target: 0 = none, else 1 + the first gold label of the group
            target = torch.where(sub.sum(1) > 0, sub.argmax(1) + 1, torch.zeros_like(sub[:, 0], dtype=torch.long))
            w = group_weights[g] if group_weights is not None else None
            total = total + F.cross_entropy(logits[:, idx], target.long(), weight=w)
        return total

    def class_weights(self, Y: np.ndarray, cap: float = 30.0) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Imbalance weights from training label counts: sqrt(neg / pos), clipped to [1, cap].

        Returns (pos_weight for the sigmoid labels, class weights per exclusive group).
        """
        n = max(1, len(Y))

        def w(pos: float) -> float:
            return float(np.clip(np.sqrt((n - pos) / max(pos, 1.0)), 1.0, cap))

        pw = torch.tensor([w(Y[:, c].sum()) for c, _ in self.sigmoid_cols], dtype=torch.float32)
        gws = []
        for _, members in self.groups:
            cols = [c for c, _ in members]
            gws.append(torch.tensor([1.0] + [w(Y[:, c].sum()) for c in cols], dtype=torch.float32))
        return pw, gws


def pool_encoder(
    encoder: nn.Module,
    pooling: str,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pooled encoder output (batch, hidden): ``"mean"`` (masked mean of the last hidden states)
    or ``"cls"`` (the [CLS] pooler, or the first token's state when the encoder has none)."""
    kw = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        kw["token_type_ids"] = token_type_ids
    out = encoder(**kw)
    if pooling == "cls":
        pooled = getattr(out, "pooler_output", None)
        return pooled if pooled is not None else out.last_hidden_state[:, 0]
    h = out.last_hidden_state
    m = attention_mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


class RuptureNet(nn.Module):
    """Encoder -> pooled vector (+ pause features) -> dropout -> linear head.

    ``pooling``: ``"mean"`` (masked mean of the last hidden states, as all-MiniLM-L6-v2 was
    trained) or ``"cls"`` (the encoder's [CLS] pooler: dense + tanh over the first token).
    Forward returns logits of shape (batch, layout.n_outputs).
    """

    def __init__(
        self, encoder: nn.Module, layout: OutputLayout, pooling: str = "mean", n_pause: int = 0, dropout: float = 0.1
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}")
        self.encoder = encoder
        self.layout = layout
        self.pooling = pooling
        self.n_pause = n_pause
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden + n_pause, layout.n_outputs)

    def pool(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        return pool_encoder(self.encoder, self.pooling, input_ids, attention_mask, token_type_ids)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        pause: torch.Tensor | None = None,
    ) -> torch.Tensor:
        z = self.pool(input_ids, attention_mask, token_type_ids)
        if self.n_pause:
            if pause is None:
                pause = z.new_zeros((z.shape[0], self.n_pause))
            z = torch.cat([z, pause.to(z.dtype)], dim=-1)
        return self.head(self.dropout(z))


def collate(features: list[dict], tokenizer: Any) -> dict[str, torch.Tensor]:
    """Pad a list of encoded examples to the longest one (dynamic padding): transformers'
    ``DataCollatorWithPadding`` for ``input_ids``/``attention_mask``/``token_type_ids``
    (batch, seq), padded the tokenizer's way (on the right for BERT-style encoders), plus the
    ``pause`` features (batch, n_pause) and ``labels`` (batch, n_labels) as float32 when present.
    """
    # here, not at the top: transformers loads with a model (hf.py), not with this module
    from transformers import DataCollatorWithPadding

    batch = dict(DataCollatorWithPadding(tokenizer, padding="longest", return_tensors="pt")(features))
    for key in ("pause", "labels"):
        if key in batch:
            batch[key] = batch[key].to(torch.float32)
    return batch
