"""CLI commands: evaluate (filled in by its stage)."""
from __future__ import annotations

from .app import app  # noqa: F401
