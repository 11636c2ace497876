"""Per-label agreement of the annotators of tasks that several annotators coded.

The statistics themselves are :func:`rupture_nlp.metrics.nominal_agreement`, the one
implementation shared with ``rupture corpus agreement``; this module only lays the pulled
annotations out as a coder x utterance matrix per label.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metrics import nominal_agreement
from ..schema import LabelSchema
from .parse import Annotation


def agreement(multi: list[list[Annotation]], schema: LabelSchema) -> dict[str, Any]:
    """Per-label agreement over the utterances of tasks coded by several annotators.

    Each label is a yes/no code per utterance. With exactly two annotators in all: Cohen's
    kappa (scikit-learn) over the utterances both coded; with more: Krippendorff's alpha
    (nominal; annotators who did not code a task count as missing). ``value`` is None where
    the statistic is undefined (e.g. a label nobody used).
    """
    annotators = sorted({a.annotator for anns in multi for a in anns})
    units: list[tuple[str, dict[str, set[str]]]] = []  # (utterance id, annotator -> labels)
    for anns in multi:
        for uid in anns[0].labels:
            units.append((uid, {a.annotator: a.labels.get(uid, set()) for a in anns}))
    metric = "cohen_kappa" if len(annotators) == 2 else "krippendorff_alpha"
    per_label: dict[str, Any] = {}
    for lid in schema.label_ids:
        M = np.full((len(annotators), len(units)), np.nan)
        for j, (_, by) in enumerate(units):
            for i, who in enumerate(annotators):
                if who in by:
                    M[i, j] = 1.0 if lid in by[who] else 0.0
        positives = int(np.nansum(M))
        value = nominal_agreement(M, metric)
        per_label[lid] = {"value": None if value is None else round(value, 4), "positive_codes": positives}
    return {
        "metric": metric,
        "annotators": annotators,
        "tasks": len(multi),
        "utterances": len(units),
        "labels": per_label,
    }
