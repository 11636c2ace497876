"""Fetch a project's full JSON export and check it against the project's own counters.

The export holds every task (also those without annotations yet). Its tasks, submitted
annotations and skips must match what the server counts for the project; an export that misses
something the server holds (annotators still at work) is fetched once more, then refused.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import RuptureError
from .client import LSClient


def export_counts(export: list[dict[str, Any]]) -> tuple[int, int, int]:
    """Tasks, submitted annotations and skipped (cancelled) annotations in an export."""
    n_ann = sum(1 for t in export for a in t.get("annotations") or [] if not a.get("was_cancelled"))
    n_skip = sum(1 for t in export for a in t.get("annotations") or [] if a.get("was_cancelled"))
    return len(export), n_ann, n_skip


def export_project(client: LSClient, project_id: int, title: str) -> tuple[bytes, list[dict[str, Any]]]:
    """The project's full JSON export (raw bytes and parsed), checked against its counters."""
    sdk = client.sdk
    for attempt in (1, 2):
        raw = client.call(
            f"exporting project '{title}'",
            lambda: b"".join(
                sdk.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True)
            ),
        )
        try:
            export = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RuptureError(f"the export of project '{title}' is not JSON; nothing written") from None
        if not isinstance(export, list):
            raise RuptureError(f"the export of project '{title}' is not a list of tasks; nothing written")
        project = client.call(f"reading project '{title}'", sdk.projects.get, project_id)
        want = (project.task_number, project.total_annotations_number, project.skipped_annotations_number)
        got = export_counts(export)
        if all(w is None or w == g for w, g in zip(want, got)):
            return raw, export
        if attempt == 2:
            raise RuptureError(
                f"the export of project '{title}' holds {got[0]} tasks / {got[1]} annotations / {got[2]} skips "
                f"but the server counts {want[0]} / {want[1]} / {want[2]} (annotators still at work?); "
                "nothing written — pull again"
            )
    raise AssertionError("unreachable")  # pragma: no cover
