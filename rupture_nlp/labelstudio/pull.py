"""Pull annotations from a Label Studio project back into canonical sessions with gold labels.

Steps, in this order:

1. export every task of the project (JSON, with tasks that have no annotation yet) and check
   the export against the project's own counters (tasks, annotations, skips): an export that
   misses something the server holds is retried once, then refused;
2. save that export to disk untouched (atomically) — whatever happens next, it is there;
3. read each annotation's regions back to utterance ids (paragraph index -> utterance of the
   task), collect the comment, resolve several annotators by policy (``latest``: the most
   recently updated annotation; ``majority``: a label stays when more than half of the
   annotators gave it) or keep one ``annotator`` only; compute per-label agreement where a task
   has several annotators (Cohen's kappa for two annotators, Krippendorff's alpha for more);
4. stitch the parts of each session back together (each utterance from the part that owns
   it) and write the sessions whose parts are all annotated (``include_partial`` writes the
   others too, with ``labels`` null where no one coded them).

Tasks without annotations, skipped tasks, labels on context utterances and sessions left
out are all counted in the :class:`PullReport`, never dropped silently.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes, atomic_write_text
from ..errors import RuptureError
from ..metrics import nominal_agreement
from ..records import Session, Utterance, write_sessions
from ..schema import LabelSchema
from .client import LSClient
from .config import COMMENT_NAME, DISPLAY_NAME_KEY, UTTERANCES_KEY
from .tasks import TASK_KEY

POLICIES = ("latest", "majority")


# --------------------------------------------------------------------------- data
@dataclass
class Annotation:
    """One submitted annotation of one task: labels per utterance id (owned utterances only)."""

    id: int
    task_id: int
    annotator: str
    updated_at: str
    labels: dict[str, set[str]]
    comment: str | None = None
    context_labels: int = 0


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


# --------------------------------------------------------------------------- export
def _counts(export: list[dict[str, Any]]) -> tuple[int, int, int]:
    n_ann = sum(1 for t in export for a in t.get("annotations") or [] if not a.get("was_cancelled"))
    n_skip = sum(1 for t in export for a in t.get("annotations") or [] if a.get("was_cancelled"))
    return len(export), n_ann, n_skip


def export_project(client: LSClient, project_id: int, title: str) -> tuple[bytes, list[dict[str, Any]]]:
    """The project's full JSON export (raw bytes and parsed), checked against its counters."""
    sdk = client.sdk
    for attempt in (1, 2):
        raw = client.call(f"exporting project '{title}'", lambda: b"".join(
            sdk.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True)))
        try:
            export = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RuptureError(f"the export of project '{title}' is not JSON; nothing written") from None
        if not isinstance(export, list):
            raise RuptureError(f"the export of project '{title}' is not a list of tasks; nothing written")
        project = client.call(f"reading project '{title}'", sdk.projects.get, project_id)
        want = (project.task_number, project.total_annotations_number, project.skipped_annotations_number)
        got = _counts(export)
        if all(w is None or w == g for w, g in zip(want, got)):
            return raw, export
        if attempt == 2:
            raise RuptureError(
                f"the export of project '{title}' holds {got[0]} tasks / {got[1]} annotations / {got[2]} skips "
                f"but the server counts {want[0]} / {want[1]} / {want[2]} (annotators still at work?); "
                "nothing written — pull again")
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- annotations
def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def read_annotation(task: dict[str, Any], ann: dict[str, Any], schema: LabelSchema,
                    emails: dict[int, str]) -> Annotation:
    """The labels an annotation gives to the utterances its task owns.

    Regions may span several paragraphs (``start``..``end``): every utterance in the span gets
    the region's labels. Labels on context utterances are counted, not used.
    """
    data = task["data"]
    utts = data[UTTERANCES_KEY]
    ctx = int(data.get("context_before") or 0)
    known = set(schema.label_ids)
    labels: dict[str, set[str]] = {u["id"]: set() for u in utts[ctx:]}
    comment = None
    context_labels = 0
    for r in ann.get("result") or []:
        value = r.get("value") or {}
        if r.get("type") == "textarea" and r.get("from_name") == COMMENT_NAME:
            text = "\n".join(t for t in value.get("text") or [] if isinstance(t, str)).strip()
            comment = text or comment
            continue
        if r.get("type") != "paragraphlabels":
            continue
        names = value.get("paragraphlabels") or value.get("labels") or []
        bad = [n for n in names if n not in known]
        if bad:
            raise RuptureError(f"task {task['id']} (annotation {ann['id']}): label '{bad[0]}' is not in schema "
                               f"'{schema.name}'; pull with the schema the project was made with (--schema)")
        start, end = _int(value.get("start")), _int(value.get("end"))
        if start is None:
            raise RuptureError(f"task {task['id']} (annotation {ann['id']}): a region has no paragraph index")
        end = start if end is None else end
        if not (0 <= start <= end < len(utts)):
            raise RuptureError(f"task {task['id']} (annotation {ann['id']}): region paragraphs {start}-{end} "
                               f"are outside the task's {len(utts)} utterances")
        for i in range(start, end + 1):
            if i < ctx:
                context_labels += len(names)
            else:
                labels[utts[i]["id"]].update(names)
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    annotator = emails.get(_int(who), str(who)) if _int(who) is not None else str(who)
    return Annotation(id=int(ann["id"]), task_id=int(task["id"]), annotator=annotator,
                      updated_at=str(ann.get("updated_at") or ann.get("created_at") or ""),
                      labels=labels, comment=comment, context_labels=context_labels)


def _time(s: str) -> datetime:
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min


def resolve(annotations: list[Annotation], policy: str) -> dict[str, set[str]]:
    """One label set per utterance id from several annotations of the same task."""
    if not annotations:
        return {}
    if policy == "latest":
        return max(annotations, key=lambda a: (_time(a.updated_at), a.id)).labels
    if policy == "majority":
        n = len(annotations)
        out: dict[str, set[str]] = {}
        for uid in annotations[0].labels:
            counts: dict[str, int] = defaultdict(int)
            for a in annotations:
                for l in a.labels.get(uid, ()):
                    counts[l] += 1
            out[uid] = {l for l, c in counts.items() if c * 2 > n}
        return out
    raise RuptureError(f"--policy must be one of {', '.join(POLICIES)}, not '{policy}'")


# --------------------------------------------------------------------------- agreement
def agreement(multi: list[list[Annotation]], schema: LabelSchema) -> dict[str, Any]:
    """Per-label agreement over the utterances of tasks coded by several annotators.

    Each label is a yes/no code per utterance. With exactly two annotators in all: Cohen's
    kappa (scikit-learn) over the utterances both coded; with more: Krippendorff's alpha
    (nominal; annotators who did not code a task count as missing). ``value`` is None where
    the statistic is undefined (e.g. a label nobody used). Both statistics come from
    :func:`rupture_nlp.metrics.nominal_agreement`, as in ``rupture corpus agreement``.
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
    return {"metric": metric, "annotators": annotators, "tasks": len(multi), "utterances": len(units),
            "labels": per_label}


# --------------------------------------------------------------------------- stitching
def _session_from_parts(parts: list[dict[str, Any]], resolved: dict[int, dict[str, set[str]] | None],
                        schema: LabelSchema) -> Session:
    """Rebuild one session from its parts (sorted by part index) and the labels of each part."""
    first = parts[0]["data"]
    sid = first["session_id"]
    utts: list[Utterance] = []
    for t in parts:
        d = t["data"]
        ctx = int(d.get("context_before") or 0)
        if int(d["first_index"]) + ctx != len(utts):
            raise RuptureError(f"session '{sid}': part {d['part']} does not continue where part {d['part'] - 1} ends")
        labels = resolved.get(t["id"])
        for ud in d[UTTERANCES_KEY][ctx:]:
            ud = {k: v for k, v in ud.items() if k != DISPLAY_NAME_KEY}
            u = Utterance.from_dict(ud)
            u.scores = None
            u.labels = None if labels is None else [l for l in schema.label_ids if l in labels.get(u.id, set())]
            utts.append(u)
    if len(utts) != int(first.get("n_utterances", len(utts))):
        raise RuptureError(f"session '{sid}': parts hold {len(utts)} utterances, the session had "
                           f"{first.get('n_utterances')}")
    sess = first.get("session") or {}
    return Session(session_id=sid, utterances=utts, meta=dict(sess.get("meta") or {}),
                   extra=dict(sess.get("extra") or {}))


def default_raw_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name.removesuffix(".jsonl") + ".ls-export.json")


def default_agreement_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name.removesuffix(".jsonl") + ".agreement.json")


def pull_project(client: LSClient, project_title: str, out: str | Path, schema: LabelSchema, *,
                 policy: str = "latest", annotator: str | None = None, raw_path: str | Path | None = None,
                 agreement_path: str | Path | None = None, include_partial: bool = False) -> PullReport:
    """Export, save raw, convert and write; see the module docstring. Returns a :class:`PullReport`.

    Nothing is written when the server cannot be reached, the project is missing or the export
    is incomplete; each output file appears whole or not at all.
    """
    if policy not in POLICIES:
        raise RuptureError(f"--policy must be one of {', '.join(POLICIES)}, not '{policy}'")
    out = Path(out)
    raw_path = Path(raw_path) if raw_path else default_raw_path(out)
    project = client.require_project(project_title)
    emails = client.user_emails()
    if annotator is not None and annotator not in emails.values():
        raise RuptureError(f"no Label Studio user with email '{annotator}' (--annotator)")
    raw, export = export_project(client, project.id, project_title)
    atomic_write_bytes(raw_path, raw)

    report = PullReport(project_id=project.id, project_title=project_title, raw_path=str(raw_path),
                        out_path=str(out), policy="annotator" if annotator else policy, annotator=annotator,
                        partial_included=include_partial)
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
        s = _session_from_parts(chosen, resolved, schema)
        comments = [{"part": int(t["data"]["part"]), "annotator": a.annotator, "text": a.comment}
                    for t in chosen for a in group_anns[int(t["id"])] if a.comment]
        s.meta["labelstudio"] = {"project": project_title, "project_id": project.id,
                                 "tasks": [int(t["id"]) for t in chosen], "policy": report.policy,
                                 "annotators": sorted({a.annotator for t in chosen
                                                       for a in group_anns[int(t["id"])]}),
                                 **({"comments": comments} if comments else {})}
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


def summarize(report: PullReport) -> list[str]:
    """Human-readable lines about a pull (for the CLI)."""
    lines = [f"project '{report.project_title}': {report.tasks} task(s), {report.annotations} annotation(s)"
             + (f", {report.skipped_annotations} skipped" if report.skipped_annotations else "")]
    lines.append(f"raw export saved: {report.raw_path}")
    lines.append(f"wrote {report.sessions_written} session(s), {report.utterances_written} utterance(s), "
                 f"{report.labels_written} label(s) to {report.out_path} (policy: {report.policy})")
    if report.unannotated_tasks:
        keys = ", ".join(report.unannotated_tasks[:5]) + (" ..." if len(report.unannotated_tasks) > 5 else "")
        lines.append(f"{len(report.unannotated_tasks)} task(s) without annotations: {keys}")
    if report.partial_sessions:
        how = "written with labels null where uncoded" if report.partial_included else "left out"
        lines.append(f"{len(report.partial_sessions)} session(s) not fully annotated ({how}): "
                     + ", ".join(report.partial_sessions[:5]) + (" ..." if len(report.partial_sessions) > 5 else ""))
    if report.missing_parts:
        lines.append(f"{len(report.missing_parts)} session(s) with parts missing from the project (deleted?) "
                     "left out: " + ", ".join(report.missing_parts[:5]) + (" ..." if len(report.missing_parts) > 5 else ""))
    if report.foreign_tasks:
        lines.append(f"{len(report.foreign_tasks)} task(s) not made by 'rupture ls push' were ignored "
                     f"(ids {', '.join(map(str, report.foreign_tasks[:5]))})")
    if report.context_labels_ignored:
        lines.append(f"{report.context_labels_ignored} label(s) on context utterances ignored "
                     "(those utterances are coded in the part before)")
    if report.agreement_path:
        lines.append(f"{report.multi_annotated_tasks} task(s) with several annotators: agreement "
                     f"({report.agreement['metric']}) written to {report.agreement_path}")
    return lines


__all__ = ["pull_project", "PullReport", "export_project", "read_annotation", "resolve", "agreement",
           "summarize", "POLICIES", "default_raw_path", "default_agreement_path"]
