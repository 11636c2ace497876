"""The rupture classifier: a fine-tuned transformer tagging every utterance.

``RuptureClassifier.from_pretrained(dir)`` loads a model directory; ``model.train.train_classifier``
trains one (``rupture_nlp.workflow.train_model`` adds the baselines, metrics and card). Heavy
imports (torch, transformers) happen here, so import this package only when a model is needed.
"""

from __future__ import annotations

from .classifier import ModelConfig, RuptureClassifier, read_model_metrics

__all__ = ["RuptureClassifier", "ModelConfig", "read_model_metrics"]
