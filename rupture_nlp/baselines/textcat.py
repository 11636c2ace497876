"""spaCy ``textcat_multilabel`` trained in code: the second baseline.

Saved as ``config.json``, ``schema.yaml`` and spaCy's own ``nlp.to_disk`` directory (``nlp/``).
spaCy is imported in the methods that use it, not at the top: importing :mod:`rupture_nlp.baselines`
(the CLI's help lists the registered baselines) stays fast.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..atomic import atomic_dir
from ..errors import RuptureError
from ..records import Session
from ..schema import LabelSchema
from .base import (
    Baseline,
    check_training_data,
    load_schema_checked,
    macro_average_precision,
    read_config,
    utterance_texts,
)
from .registry import register_baseline


@register_baseline
class TextcatBaseline(Baseline):
    """spaCy ``textcat_multilabel`` on ``spacy.blank("en")``, trained in code.

    ``architecture="bow"`` (default) is spaCy's bag-of-n-grams linear model (TextCatBOW, n-grams
    up to ``ngram_size`` hashed into ``length`` rows); ``"ensemble"`` adds spaCy's default CNN
    (slower). Trained ``epochs`` passes of minibatches of ``batch_size`` with Adam
    (``learn_rate``) and dropout; ``neg_ratio`` (None: all) samples that many unlabelled
    utterances per labelled one afresh each epoch. With dev data the epoch with the best dev macro
    average precision is kept. Defaults from the corpus dev split: spaCy's default Adam rate
    (0.001) was still far from converged after 10 epochs, 0.01 peaks after 3–5; ``length=16384``
    scored like 65536 at a quarter of the size (1.5 MB).
    """

    kind = "textcat"
    order = 20

    def __init__(
        self,
        *,
        epochs: int = 6,
        architecture: str = "bow",
        ngram_size: int = 2,
        dropout: float = 0.2,
        context: bool = False,
        batch_size: int = 32,
        length: int = 16384,
        learn_rate: float = 0.01,
        neg_ratio: float | None = None,
        seed: int = 13,
    ):
        if architecture not in ("bow", "ensemble"):
            raise ValueError("architecture must be 'bow' or 'ensemble'")
        self.epochs = epochs
        self.architecture = architecture
        self.ngram_size = ngram_size
        self.dropout = dropout
        self.context = context
        self.batch_size = batch_size
        self.length = length
        self.learn_rate = learn_rate
        self.neg_ratio = neg_ratio
        self.seed = seed
        self.nlp = None
        self.thresholds = np.zeros(0)
        self.best_epoch: int | None = None

    def _texts(self, sessions: Iterable[Session]) -> list[str]:
        cur, prev = utterance_texts(sessions)
        if not self.context:
            return cur
        # previous utterance after a separator; the BOW model sees its words as well
        return [c if not p else f"{c} || {p}" for c, p in zip(cur, prev)]

    def _component_config(self) -> dict[str, Any]:
        if self.architecture == "bow":
            return {
                "model": {
                    "@architectures": "spacy.TextCatBOW.v3",
                    "exclusive_classes": False,
                    "ngram_size": self.ngram_size,
                    "no_output_layer": False,
                    "length": self.length,
                }
            }
        return {}  # spaCy's default textcat_multilabel model (ensemble of BOW and a CNN)

    def fit(
        self, sessions: Iterable[Session], schema: LabelSchema, dev_sessions: Iterable[Session] | None = None
    ) -> "TextcatBaseline":
        """Train on ``sessions``; pick the best epoch and tune thresholds on ``dev_sessions``."""
        import spacy
        from spacy.training import Example
        from spacy.util import minibatch
        from thinc.api import Adam

        sessions = list(sessions)
        dev = list(dev_sessions) if dev_sessions is not None else None
        self.schema = schema
        Y = check_training_data(sessions, schema, "training")
        labels = schema.label_ids
        spacy.util.fix_random_seed(self.seed)
        nlp = spacy.blank("en")
        tc = nlp.add_pipe("textcat_multilabel", config=self._component_config())
        for l in labels:
            tc.add_label(l)
        examples = [
            Example.from_dict(nlp.make_doc(t), {"cats": {l: float(v) for l, v in zip(labels, row)}})
            for t, row in zip(self._texts(sessions), Y)
        ]
        nlp.initialize(lambda: examples)
        optimizer = Adam(learn_rate=self.learn_rate)
        self.nlp = nlp
        rng = random.Random(self.seed)
        best, best_score, self.history = None, -1.0, []
        Yd = check_training_data(dev, schema, "dev") if dev else None
        pos = [e for e, row in zip(examples, Y) if row.any()]
        neg = [e for e, row in zip(examples, Y) if not row.any()]
        for epoch in range(1, self.epochs + 1):
            if self.neg_ratio is None:
                epoch_examples = pos + neg
            else:  # every labelled utterance, and a fresh sample of the unlabelled ones
                epoch_examples = pos + rng.sample(neg, min(len(neg), int(round(self.neg_ratio * len(pos)))))
            rng.shuffle(epoch_examples)
            losses: dict[str, float] = {}
            for batch in minibatch(epoch_examples, size=self.batch_size):
                nlp.update(batch, sgd=optimizer, drop=self.dropout, losses=losses)
            if Yd is not None:
                score = macro_average_precision(Yd, self.predict_proba(dev))
                self.history.append(
                    {
                        "epoch": epoch,
                        "loss": round(losses.get("textcat_multilabel", 0.0), 4),
                        "dev_macro_ap": round(score, 4),
                    }
                )
                if score >= best_score:  # ties: the later (longer-trained) epoch
                    best, best_score, self.best_epoch = nlp.to_bytes(), score, epoch
        if best is not None:
            nlp.from_bytes(best)
        else:
            self.best_epoch = self.epochs
        self._tune(dev)
        return self

    def predict_proba(self, sessions: Iterable[Session]) -> np.ndarray:
        """Probabilities (n_utterances, n_labels) in ``schema.label_ids`` order."""
        if self.nlp is None:
            raise RuntimeError("TextcatBaseline is not fitted")
        labels = self.schema.label_ids
        texts = self._texts(sessions)
        P = np.zeros((len(texts), len(labels)))
        for i, doc in enumerate(self.nlp.pipe(texts, batch_size=256)):
            P[i] = [doc.cats[l] for l in labels]
        return P

    def save(self, path: str | Path) -> Path:
        """Write config.json, schema.yaml and the spaCy pipeline (``nlp/``), atomically."""
        path = Path(path)
        cfg = self._base_config()
        cfg.update(
            {
                "epochs": self.epochs,
                "best_epoch": self.best_epoch,
                "architecture": self.architecture,
                "ngram_size": self.ngram_size,
                "dropout": self.dropout,
                "context": self.context,
                "batch_size": self.batch_size,
                "length": self.length,
                "learn_rate": self.learn_rate,
                "neg_ratio": self.neg_ratio,
                "seed": self.seed,
                "history": getattr(self, "history", []),
            }
        )
        with atomic_dir(path) as tmp:
            self.nlp.to_disk(tmp / "nlp")
            (tmp / "config.json").write_text(json.dumps(cfg, indent=1) + "\n", encoding="utf-8")
            self.schema.save(tmp / "schema.yaml")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TextcatBaseline":
        """Load a saved textcat baseline; RuptureError for a missing or corrupt directory."""
        import spacy

        path = Path(path)
        cfg = read_config(path, cls.kind)
        try:
            self = cls(
                epochs=int(cfg["epochs"]),
                architecture=str(cfg["architecture"]),
                ngram_size=int(cfg["ngram_size"]),
                dropout=float(cfg["dropout"]),
                context=bool(cfg["context"]),
                batch_size=int(cfg["batch_size"]),
                length=int(cfg.get("length", 262144)),
                learn_rate=float(cfg.get("learn_rate", 0.001)),
                neg_ratio=cfg.get("neg_ratio"),
                seed=int(cfg["seed"]),
            )
            self.best_epoch = cfg.get("best_epoch")
            self.history = list(cfg.get("history") or [])
            self.schema = load_schema_checked(path, list(cfg["label_ids"]))
            self.thresholds = np.asarray(cfg["thresholds"], dtype=float)
        except (KeyError, TypeError, ValueError) as e:
            raise RuptureError(
                f"corrupt baseline config.json ({type(e).__name__}: {e})", path / "config.json"
            ) from None
        if not (path / "nlp" / "config.cfg").is_file():
            raise RuptureError("baseline file missing: nlp/config.cfg", path)
        try:
            self.nlp = spacy.load(path / "nlp")
        except Exception as e:  # noqa: BLE001 - spaCy raises many types on a damaged directory
            raise RuptureError(f"corrupt spaCy pipeline in nlp/ ({type(e).__name__})", path) from None
        if "textcat_multilabel" not in self.nlp.pipe_names:
            raise RuptureError("spaCy pipeline in nlp/ has no textcat_multilabel component", path)
        missing = sorted(set(self.schema.label_ids) - set(self.nlp.get_pipe("textcat_multilabel").labels))
        if missing or len(self.thresholds) != len(self.schema.label_ids):
            raise RuptureError("spaCy pipeline labels do not match the baseline's schema", path)
        return self
