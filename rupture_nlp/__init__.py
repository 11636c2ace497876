"""rupture-nlp: tag alliance ruptures and repair strategies in psychotherapy transcripts.

The public Python API mirrors the CLI; every stage reads and writes the canonical
session record (:class:`rupture_nlp.records.Session`).
"""

from __future__ import annotations

import os

# Nothing in rupture-nlp downloads weights or data at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"

from .errors import RuptureError  # noqa: E402
from .records import Session, Utterance, read_sessions, write_sessions  # noqa: E402
from .schema import LabelSchema, load_schema  # noqa: E402

__all__ = [
    "RuptureError",
    "Session",
    "Utterance",
    "read_sessions",
    "write_sessions",
    "LabelSchema",
    "load_schema",
    "__version__",
]
