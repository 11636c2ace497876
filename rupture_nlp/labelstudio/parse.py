"""Read one Label Studio annotation back into labels per utterance id.

A region (``paragraphlabels``) names paragraph indexes of its task (``start``..``end``); the
paragraph index is the utterance's place in the task's ``utterances``. Every utterance in the
span gets the region's labels. The first ``context_before`` utterances of a task are context,
owned by the part before: labels on them are counted, not used. The comment box (``textarea``
named ``comment``) gives the annotation's comment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import RuptureError
from ..schema import LabelSchema
from .config import COMMENT_NAME, UTTERANCES_KEY


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


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def read_annotation(
    task: dict[str, Any], ann: dict[str, Any], schema: LabelSchema, emails: dict[int, str]
) -> Annotation:
    """The labels an annotation gives to the utterances its task owns.

    Regions may span several paragraphs (``start``..``end``): every utterance in the span gets
    the region's labels. Labels on context utterances are counted, not used. ``emails`` maps
    Label Studio user ids to emails (the annotator's name in the result).
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
            raise RuptureError(
                f"task {task['id']} (annotation {ann['id']}): label '{bad[0]}' is not in schema "
                f"'{schema.name}'; pull with the schema the project was made with (--schema)"
            )
        start, end = _int(value.get("start")), _int(value.get("end"))
        if start is None:
            raise RuptureError(f"task {task['id']} (annotation {ann['id']}): a region has no paragraph index")
        end = start if end is None else end
        if not (0 <= start <= end < len(utts)):
            raise RuptureError(
                f"task {task['id']} (annotation {ann['id']}): region paragraphs {start}-{end} "
                f"are outside the task's {len(utts)} utterances"
            )
        for i in range(start, end + 1):
            if i < ctx:
                context_labels += len(names)
            else:
                labels[utts[i]["id"]].update(names)
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    annotator = emails.get(_int(who), str(who)) if _int(who) is not None else str(who)
    return Annotation(
        id=int(ann["id"]),
        task_id=int(task["id"]),
        annotator=annotator,
        updated_at=str(ann.get("updated_at") or ann.get("created_at") or ""),
        labels=labels,
        comment=comment,
        context_labels=context_labels,
    )
