"""What a pull found and wrote (:class:`PullReport`), and its summary as plain text lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PullReport:
    """What a pull found and wrote."""

    project_id: int
    project_title: str
    raw_path: str
    out_path: str
    policy: str
    annotator: str | None = None
    tasks: int = 0
    annotations: int = 0
    skipped_annotations: int = 0
    unannotated_tasks: list[str] = field(default_factory=list)
    foreign_tasks: list[int] = field(default_factory=list)
    sessions_written: int = 0
    partial_sessions: list[str] = field(default_factory=list)
    partial_included: bool = False
    missing_parts: list[str] = field(default_factory=list)
    utterances_written: int = 0
    labels_written: int = 0
    context_labels_ignored: int = 0
    multi_annotated_tasks: int = 0
    agreement: dict[str, Any] | None = None
    agreement_path: str | None = None


def _first(items: list[Any], n: int = 5) -> str:
    return ", ".join(map(str, items[:n])) + (" ..." if len(items) > n else "")


def summarize(report: PullReport) -> list[str]:
    """Human-readable lines about a pull, one fact each (the CLI prints them as they are)."""
    lines = [
        f"project '{report.project_title}': {report.tasks} task(s), {report.annotations} annotation(s)"
        + (f", {report.skipped_annotations} skipped" if report.skipped_annotations else "")
    ]
    lines.append(f"raw export saved: {report.raw_path}")
    lines.append(
        f"wrote {report.sessions_written} session(s), {report.utterances_written} utterance(s), "
        f"{report.labels_written} label(s) to {report.out_path} (policy: {report.policy})"
    )
    if report.unannotated_tasks:
        lines.append(
            f"{len(report.unannotated_tasks)} task(s) without annotations: " + _first(report.unannotated_tasks)
        )
    if report.partial_sessions:
        how = "written with labels null where uncoded" if report.partial_included else "left out"
        lines.append(
            f"{len(report.partial_sessions)} session(s) not fully annotated ({how}): " + _first(report.partial_sessions)
        )
    if report.missing_parts:
        lines.append(
            f"{len(report.missing_parts)} session(s) with parts missing from the project (deleted?) "
            "left out: " + _first(report.missing_parts)
        )
    if report.foreign_tasks:
        lines.append(
            f"{len(report.foreign_tasks)} task(s) not made by 'rupture ls push' were ignored "
            f"(ids {', '.join(map(str, report.foreign_tasks[:5]))})"
        )
    if report.context_labels_ignored:
        lines.append(
            f"{report.context_labels_ignored} label(s) on context utterances ignored "
            "(those utterances are coded in the part before)"
        )
    if report.agreement_path:
        lines.append(
            f"{report.multi_annotated_tasks} task(s) with several annotators: agreement "
            f"({report.agreement['metric']}) written to {report.agreement_path}"
        )
    return lines
