"""The rupture classifier: a fine-tuned transformer tagging every utterance.

``RuptureClassifier.from_pretrained(dir)`` loads a model directory; ``train_model`` (in
``rupture_nlp.model.train``) builds one. Heavy imports (torch, transformers) happen here, so
import this package only when a model is needed.
"""
from __future__ import annotations

from .classifier import ModelConfig, RuptureClassifier, read_model_metrics

__all__ = ["RuptureClassifier", "ModelConfig", "read_model_metrics", "train_model", "TrainConfig"]


def __getattr__(name: str):  # lazy: training pulls in datasets, peft schedulers
    if name in ("train_model", "TrainConfig"):
        from . import train
        return getattr(train, name)
    raise AttributeError(name)
