"""Pull annotations from a Label Studio project back into canonical sessions with gold labels.

Steps, in this order (each step's module in brackets):

1. export every task of the project (JSON, with tasks that have no annotation yet) and check
   the export against the project's own counters (tasks, annotations, skips): an export that
   misses something the server holds is retried once, then refused [:mod:`.export`];
2. save that export to disk untouched (atomically) — whatever happens next, it is there;
3. read each annotation's regions back to utterance ids (paragraph index -> utterance of the
   task) and collect the comment [:mod:`.parse`]; resolve several annotators by policy
   (``latest``: the most recently updated annotation; ``majority``: a label stays when more
   than half of the annotators gave it) [:mod:`.policies`] or keep one ``annotator`` only;
   compute per-label agreement where a task has several annotators (Cohen's kappa for two
   annotators, Krippendorff's alpha for more) [:mod:`.agreement`];
4. stitch the parts of each session back together (each utterance from the part that owns
   it) [:func:`.tasks.session_from_parts`] and write the sessions whose parts are all annotated
   (``include_partial`` writes the others too, with ``labels`` null where no one coded them).

Tasks without annotations, skipped tasks, labels on context utterances and sessions left
out are all counted in the :class:`~.report.PullReport`, never dropped silently.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes, atomic_write_text
from ..errors import RuptureError
from ..records import Session, write_sessions
from ..schema import LabelSchema
from .agreement import agreement
from .client import LSClient
from .config import UTTERANCES_KEY
from .export import export_project
from .parse import Annotation, read_annotation
from .policies import POLICIES, check_policy, resolve
from .report import PullReport, summarize
from .tasks import TASK_KEY, session_from_parts


def default_raw_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name.removesuffix(".jsonl") + ".ls-export.json")


def default_agreement_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name.removesuffix(".jsonl") + ".agreement.json")


def pull_project(
    client: LSClient,
    project_title: str,
    out: str | Path,
    schema: LabelSchema,
    *,
    policy: str = "latest",
    annotator: str | None = None,
    raw_path: str | Path | None = None,
    agreement_path: str | Path | None = None,
    include_partial: bool = False,
) -> PullReport:
    """Export, save raw, convert and write; see the module docstring. Returns a :class:`PullReport`.

    Nothing is written when the server cannot be reached, the project is missing or the export
    is incomplete; each output file appears whole or not at all.
    """
    check_policy(policy)
    out = Path(out)
    raw_path = Path(raw_path) if raw_path else default_raw_path(out)
    project = client.require_project(project_title)
    emails = client.user_emails()
    if annotator is not None and annotator not in emails.values():
        raise RuptureError(f"no Label Studio user with email '{annotator}' (--annotator)")
    raw, export = export_project(client, project.id, project_title)
    atomic_write_bytes(raw_path, raw)

    report = PullReport(
        project_id=project.id,
        project_title=project_title,
        raw_path=str(raw_path),
        out_path=str(out),
        policy="annotator" if annotator else policy,
        annotator=annotator,
        partial_included=include_partial,
    )
    by_session: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    anns_by_task: dict[int, list[Annotation]] = {}
    for task in export:
        report.tasks += 1
        data = task.get("data") or {}
        if not isinstance(data.get(UTTERANCES_KEY), list) or not data.get(TASK_KEY) or "session_id" not in data:
            report.foreign_tasks.append(int(task["id"]))
            continue
        anns = []
        for a in task.get("annotations") or []:
            if a.get("was_cancelled"):
                report.skipped_annotations += 1
                continue
            report.annotations += 1
            anns.append(read_annotation(task, a, schema, emails))
        if annotator is not None:
            anns = [a for a in anns if a.annotator == annotator]
        anns_by_task[int(task["id"])] = anns
        report.context_labels_ignored += sum(a.context_labels for a in anns)
        by_session[data["session_id"]][int(data["part"])].append(task)

    # Duplicate task keys (a task imported twice by hand): keep all their annotations together.
    resolved: dict[int, dict[str, set[str]] | None] = {}
    group_anns: dict[int, list[Annotation]] = {}  # first task of a key -> annotations of all its copies
    multi: list[list[Annotation]] = []
    sessions: list[Session] = []
    for sid, parts in by_session.items():
        chosen: list[dict[str, Any]] = []
        for idx in sorted(parts):
            group = parts[idx]
            anns = [a for t in group for a in anns_by_task[int(t["id"])]]
            task = group[0]
            group_anns[int(task["id"])] = anns
            if not anns:
                report.unannotated_tasks.append(task["data"][TASK_KEY])
                resolved[int(task["id"])] = None
            else:
                if len({a.annotator for a in anns}) > 1:
                    multi.append(anns)
                resolved[int(task["id"])] = resolve(anns, policy)
            chosen.append(task)
        n_parts = int(chosen[0]["data"].get("n_parts", len(chosen)))
        if [int(t["data"]["part"]) for t in chosen] != list(range(n_parts)):
            report.missing_parts.append(sid)
            continue  # a part was deleted from the project: the session cannot be rebuilt
        complete = all(resolved[int(t["id"])] is not None for t in chosen)
        if not complete:
            report.partial_sessions.append(sid)
            if not include_partial:
                continue
        s = session_from_parts(chosen, resolved, schema)
        comments = [
            {"part": int(t["data"]["part"]), "annotator": a.annotator, "text": a.comment}
            for t in chosen
            for a in group_anns[int(t["id"])]
            if a.comment
        ]
        s.meta["labelstudio"] = {
            "project": project_title,
            "project_id": project.id,
            "tasks": [int(t["id"]) for t in chosen],
            "policy": report.policy,
            "annotators": sorted({a.annotator for t in chosen for a in group_anns[int(t["id"])]}),
            **({"comments": comments} if comments else {}),
        }
        sessions.append(s)

    report.multi_annotated_tasks = len(multi)
    if multi and annotator is None:
        report.agreement = agreement(multi, schema)
        report.agreement["policy"] = policy
    report.sessions_written = write_sessions(out, sessions)
    report.utterances_written = sum(len(s.utterances) for s in sessions)
    report.labels_written = sum(len(u.labels or []) for s in sessions for u in s.utterances)
    if report.agreement is not None:
        apath = Path(agreement_path) if agreement_path else default_agreement_path(out)
        atomic_write_text(apath, json.dumps(report.agreement, indent=2) + "\n")
        report.agreement_path = str(apath)
    return report


# Names importable from here as before the split (``rupture ls pull`` imports POLICIES and summarize).
__all__ = [
    "pull_project",
    "PullReport",
    "export_project",
    "read_annotation",
    "resolve",
    "agreement",
    "summarize",
    "POLICIES",
    "default_raw_path",
    "default_agreement_path",
    "Annotation",
]
