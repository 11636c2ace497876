"""Statistics of annotated corpora: counts per label, speaker and split."""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..records import read_sessions
from ..schema import LabelSchema


@dataclass
class CorpusStats:
    """Counts over canonical sessions. ``label_counts[split][label]`` counts utterances."""

    sessions: collections.Counter = field(default_factory=collections.Counter)
    utterances: collections.Counter = field(default_factory=collections.Counter)
    labelled: collections.Counter = field(default_factory=collections.Counter)
    speakers: collections.Counter = field(default_factory=collections.Counter)
    label_counts: dict = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    label_speaker: dict = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    sessions_without_rupture: int = 0

    def add_files(self, paths: Iterable[str | Path], schema: LabelSchema) -> None:
        rupture_cats = {c for c in schema.category_ids if c != "repair"}
        for p in paths:
            for s in read_sessions(p):
                split = str(s.meta.get("split", "all"))
                self.sessions[split] += 1
                any_rupture = False
                for u in s.utterances:
                    self.utterances[split] += 1
                    self.speakers[u.speaker] += 1
                    if u.labels:
                        self.labelled[split] += 1
                    for l in u.labels or []:
                        self.label_counts[split][l] += 1
                        self.label_speaker[l][u.speaker] += 1
                        if schema.category_of(l) in rupture_cats if l in schema.label_ids else False:
                            any_rupture = True
                if not any_rupture:
                    self.sessions_without_rupture += 1

    @property
    def splits(self) -> list[str]:
        order = ["train", "dev", "test"]
        return sorted(self.sessions, key=lambda s: (order.index(s) if s in order else 9, s))

    def total(self, label: str) -> int:
        return sum(c[label] for c in self.label_counts.values())
