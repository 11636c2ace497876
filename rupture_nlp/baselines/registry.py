"""The baselines: one registry that training, evaluation, the build script and the CLI all read.

Each baseline module registers its class when it is imported, and :mod:`rupture_nlp.baselines`
imports every module of its package, so a new baseline is one new module::

    @register_baseline
    class NaiveBayesBaseline(Baseline):
        kind = "nb"
        order = 30
        ...

Other packages add baselines through the ``rupture_nlp_baselines`` entry point group (catalogue):
each entry point names a :class:`~rupture_nlp.baselines.base.Baseline` subclass.
"""

from __future__ import annotations

from pathlib import Path

import catalogue

from ..errors import RuptureError
from .base import Baseline, read_kind

baselines = catalogue.create("rupture_nlp", "baselines", entry_points=True)


def register_baseline(cls: type[Baseline]) -> type[Baseline]:
    """Class decorator: register ``cls`` under its ``kind``."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__} has no kind")
    baselines.register(cls.kind, func=cls)
    return cls


def unregister_baseline(name: str) -> type[Baseline]:
    """Remove the baseline registered as ``name`` and return its class."""
    # catalogue has no public removal; _remove is its own counterpart of Registry.register
    return catalogue._remove((*baselines.namespace, name))


def baseline_names() -> list[str]:
    """Every registered baseline, in its ``order`` (then by name): tfidf, textcat, ..."""
    found = baselines.get_all()
    return sorted(found, key=lambda name: (found[name].order, name))


def get_baseline(name: str) -> type[Baseline]:
    """The class registered as ``name``; RuptureError naming the known ones if there is none."""
    if name not in baselines:
        raise RuptureError(f"unknown baseline {name!r} (known: {', '.join(baseline_names())})")
    return baselines.get(name)


def load_baseline(path: str | Path) -> Baseline:
    """Load whichever baseline ``path`` holds (by its ``config.json`` ``kind``)."""
    path = Path(path)
    kind = read_kind(path)
    if not isinstance(kind, str) or kind not in baselines:
        raise RuptureError(f"unknown baseline kind {kind!r}", path / "config.json")
    return baselines.get(kind).load(path)
