"""Annotated corpora: statistics, segmenter alignment, ASR-style renderings, coder agreement.

One module per job: :mod:`.stats` (counts per label, speaker and split), :mod:`.align` (authored
utterances -> the units ``rupture tag`` sees, with labels projected by a written rule),
:mod:`.asr` (labelled sessions as speech recognition + diarization output: segments cut by time,
SPEAKER_00/01, recognition errors; ``rupture corpus render-asr``).
"""

from __future__ import annotations

from .stats import CorpusStats

__all__ = ["CorpusStats"]
