"""Cheap baselines the transformer must beat: one module per baseline, all in one registry.

* ``tfidf`` (:mod:`.tfidf`): TF-IDF n-grams of the utterance and the previous one, a balanced
  logistic regression per label;
* ``textcat`` (:mod:`.textcat`): spaCy's ``textcat_multilabel`` bag-of-n-grams model.

All follow the :class:`~.base.Baseline` interface (``fit``, ``predict_proba``, ``predict``,
``thresholds``, ``save``, ``load``) and see the inputs of :func:`~.base.utterance_texts`. The
registry (:mod:`.registry`) lists them for training, evaluation, the build script and the CLI;
every module of this package is imported below, so each registers itself. Training and saving
them all beside a model is :func:`rupture_nlp.workflow.train_baselines`.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Baseline, macro_average_precision, utterance_texts
from .registry import baseline_names, baselines, get_baseline, load_baseline, register_baseline, unregister_baseline

# Every module of the package, so that each baseline module registers its class.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
del _module

from .textcat import TextcatBaseline  # noqa: E402
from .tfidf import TfidfBaseline  # noqa: E402

__all__ = [
    "Baseline",
    "TfidfBaseline",
    "TextcatBaseline",
    "baseline_names",
    "baselines",
    "get_baseline",
    "load_baseline",
    "register_baseline",
    "unregister_baseline",
    "utterance_texts",
    "macro_average_precision",
]
