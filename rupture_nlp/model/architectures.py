"""Model architectures, registered by name (``config.json`` key ``arch``).

An architecture knows how to build its network around a loaded encoder, which head weights it
expects, and how to turn sessions into label scores. ``RuptureClassifier`` (loading, saving,
decisions, identity) is the same for all of them. Two ship:

* ``"cross"`` — :class:`~rupture_nlp.model.modeling.RuptureNet`: each utterance is read together
  with a few preceding utterances (a text pair) and classified on its own;
* ``"session"`` — :class:`SessionNet`: each utterance is read once, then a dialogue encoder
  reads windows of the session (:mod:`rupture_nlp.model.session`).

``cfg`` below is the model's ``ModelConfig`` (classifier.py). Adding one: a class with
``build``, ``check_head`` and ``predict_proba`` (see :class:`Cross`),
registered with ``@architectures.register("name")``; training support goes in ``train.py``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import catalogue
import numpy as np
import torch
from torch import nn

from ..errors import RuptureError
from ..records import Session
from ..schema import LabelSchema
from .inputs import N_PAUSE_FEATURES, InputConfig, encode, examples
from .modeling import OutputLayout, RuptureNet, collate, pool_encoder
from .session import DialogueHead, SessionConfig, build_head, run_windows, session_features, utterance_texts

architectures = catalogue.create("rupture_nlp", "architectures", entry_points=False)

#: Inference batches hold at most this many (padded) tokens: up to ``batch_size`` short inputs,
#: fewer long ones, so peak memory depends on this bound, not on the longest batch a corpus has.
INFERENCE_BATCH_TOKENS = 4096


def get_architecture(name: str) -> Any:
    """The registered architecture ``name``; RuptureError naming the known ones otherwise."""
    try:
        return architectures.get(name)()
    except catalogue.RegistryError:
        raise RuptureError(f"unknown model architecture {name!r} (known: {', '.join(architecture_names())})") from None


def architecture_names() -> list[str]:
    return sorted(architectures.get_all())


def token_batches(order: np.ndarray, lengths: np.ndarray, batch_size: int, max_tokens: int) -> list[np.ndarray]:
    """Consecutive slices of ``order`` (indexes sorted by length, shape (n,)) with at most
    ``batch_size`` members and at most ``max_tokens`` tokens once padded to their longest."""
    out, s = [], 0
    while s < len(order):
        e = min(len(order), s + batch_size)
        while e - s > 1 and lengths[order[e - 1]] * (e - s) > max_tokens:
            e -= 1
        out.append(order[s:e])
        s = e
    return out


@architectures.register("cross")
class Cross:
    """Cross-encoder: utterance + preceding context as a text pair, one linear head."""

    def build(self, encoder: nn.Module, schema: LabelSchema, cfg: Any) -> RuptureNet:
        n_pause = N_PAUSE_FEATURES if cfg.input.pause_feature else 0
        return RuptureNet(encoder, OutputLayout.from_schema(schema), cfg.pooling, n_pause, cfg.dropout)

    def check_head(
        self, head: dict[str, torch.Tensor], schema: LabelSchema, cfg: Any, hidden: int | None
    ) -> str | None:
        layout = OutputLayout.from_schema(schema)
        if set(head) != {"weight", "bias"} or head["weight"].ndim != 2 or head["weight"].shape[0] != layout.n_outputs:
            return f"does not fit the schema ({len(schema.label_ids)} labels, {layout.n_outputs} outputs expected)"
        n_pause = N_PAUSE_FEATURES if cfg.input.pause_feature else 0
        if hidden is not None and head["weight"].shape[1] != hidden + n_pause:
            return f"expects {head['weight'].shape[1]} inputs, the encoder gives {hidden + n_pause}"
        return None

    def predict_proba(
        self,
        net: nn.Module,
        tokenizer: Any,
        sessions: list[Session],
        cfg: Any,
        batch_size: int,
        on_batch: Callable[[int], None] | None,
    ) -> np.ndarray:
        exs = examples(sessions, cfg.input)
        P = np.zeros((len(exs), net.layout.n_labels), dtype=np.float32)
        if not exs:
            return P
        enc = encode(tokenizer, exs, cfg.input)
        keys = [k for k in ("input_ids", "token_type_ids") if k in enc] + (["pause"] if cfg.input.pause_feature else [])
        lengths = np.array([len(x) for x in enc["input_ids"]])
        order = np.argsort(lengths, kind="stable")
        with torch.inference_mode():
            for idx in token_batches(order, lengths, batch_size, max(batch_size, INFERENCE_BATCH_TOKENS)):
                batch = collate([{k: enc[k][i] for k in keys} for i in idx], tokenizer)
                P[idx] = net.layout.probabilities(net(**batch)).float().numpy()
                if on_batch:
                    on_batch(len(idx))
        return P


class SessionNet(nn.Module):
    """Utterance encoder + pooling, and the dialogue head (:class:`DialogueHead`) over sessions.

    ``embed(input_ids, attention_mask)`` gives pooled utterance vectors (batch, hidden);
    the head reads windows of them (see :func:`rupture_nlp.model.session.run_windows`).
    """

    def __init__(self, encoder: nn.Module, head: DialogueHead, pooling: str = "mean"):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.pooling = pooling

    def embed(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        return pool_encoder(self.encoder, self.pooling, input_ids, attention_mask, token_type_ids)


def embed_texts(
    net: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    batch_size: int = 128,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Pooled vectors (n_texts, hidden) float32 of ``net.embed``, batched by length, no gradients."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)
    feats = [{k: ids[k][i] for k in ids.keys() if k != "attention_mask"} for i in range(len(texts))]
    lengths = np.array([len(f["input_ids"]) for f in feats])
    order = np.argsort(lengths, kind="stable")
    out: np.ndarray | None = None
    with torch.inference_mode():
        for idx in token_batches(order, lengths, batch_size, max(batch_size, INFERENCE_BATCH_TOKENS)):
            batch = collate([feats[i] for i in idx], tokenizer)
            v = net.embed(**batch).float().numpy()
            if out is None:
                out = np.zeros((len(texts), v.shape[1]), dtype=np.float32)
            out[idx] = v
            if on_batch:
                on_batch(len(idx))
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


@architectures.register("session")
class Session_:
    """Session model: each utterance encoded once, a BiGRU dialogue head over windows."""

    def build(self, encoder: nn.Module, schema: LabelSchema, cfg: Any) -> SessionNet:
        hidden = int(encoder.config.hidden_size)
        return SessionNet(encoder, build_head(schema, hidden, SessionConfig.from_dict(cfg.session)), cfg.pooling)

    def check_head(
        self, head: dict[str, torch.Tensor], schema: LabelSchema, cfg: Any, hidden: int | None
    ) -> str | None:
        fresh = build_head(schema, int(hidden or 384), SessionConfig.from_dict(cfg.session)).state_dict()
        if set(fresh) != set(head):
            return "does not hold the session head's tensors (config.json 'session' settings differ?)"
        bad = next((k for k in fresh if tuple(fresh[k].shape) != tuple(head[k].shape)), None)
        if bad is not None:
            return (
                f"tensor {bad} has shape {tuple(head[bad].shape)}, expected {tuple(fresh[bad].shape)} "
                f"({len(schema.label_ids)} labels)"
            )
        return None

    def predict_proba(
        self,
        net: nn.Module,
        tokenizer: Any,
        sessions: list[Session],
        cfg: Any,
        batch_size: int,
        on_batch: Callable[[int], None] | None,
    ) -> np.ndarray:
        texts = [t for s in sessions for t in utterance_texts(s)]
        n_labels = net.head.fine.out_features
        if not texts:
            return np.zeros((0, n_labels), dtype=np.float32)
        V = embed_texts(net, tokenizer, texts, cfg.input.max_length, batch_size, on_batch)
        bounds = np.cumsum([0] + [len(s.utterances) for s in sessions])
        vecs = [V[bounds[i] : bounds[i + 1]] for i in range(len(sessions))]
        P = run_windows(net.head, vecs, [session_features(s) for s in sessions])
        return np.concatenate(P).astype(np.float32)


def session_input_config(max_length: int = 64) -> InputConfig:
    """The input settings a session model records: the utterance alone, its speaker, no pause words
    (pauses reach the dialogue head as numbers)."""
    return InputConfig(context=0, max_length=max_length, pause_marker=False, pause_feature=False, speaker=True)
