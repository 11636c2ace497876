"""Statistics of annotated corpora: counts per label, speaker and split, and per part of the corpus.

A *part* is a group of sessions of one kind: ``meta.collection`` (stretch, whole session, health
counselling...) in one form — ``meta.units`` (``segmenter``: aligned units, ``asr``: an ASR
rendering; authored lines when absent) — and, for double-coded files, ``meta.coder``. For every part
:attr:`CorpusStats.parts` keeps sessions, units, coded source lines (``source_ids``), labelled units
and session lengths in minutes."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..records import read_sessions
from ..schema import LabelSchema


@dataclass
class PartStats:
    """One part of a corpus: sessions, units, coded source lines, labelled units, minutes per session."""

    sessions: int = 0
    units: int = 0
    source_lines: int = 0
    labelled: int = 0
    minutes: list = field(default_factory=list)


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
    parts: dict = field(default_factory=dict)  # part name -> PartStats

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
                self._add_part(s)

    def _add_part(self, s) -> None:
        form = s.meta.get("rendering", {}).get("kind") if isinstance(s.meta.get("rendering"), dict) else None
        form = form or s.meta.get("units") or "authored"
        name = f"{s.meta.get('collection', 'sessions')} ({form}" + (
            f", coder {s.meta['coder']})" if "coder" in s.meta else ")"
        )
        part = self.parts.setdefault(name, PartStats())
        part.sessions += 1
        part.units += len(s.utterances)
        part.labelled += sum(1 for u in s.utterances if u.labels)
        sources = {i for u in s.utterances for i in (u.extra.get("source_ids") or [])}
        part.source_lines += len(sources) if sources else len(s.utterances)
        ends = [u.end for u in s.utterances if u.end is not None]
        if ends:
            part.minutes.append(max(ends) / 60)

    @property
    def splits(self) -> list[str]:
        order = ["train", "dev", "test"]
        return sorted(self.sessions, key=lambda s: (order.index(s) if s in order else 9, s))

    def total(self, label: str) -> int:
        return sum(c[label] for c in self.label_counts.values())
