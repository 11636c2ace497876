"""Push sessions to a Label Studio project as tasks with pre-annotations, idempotently.

The project is created with the schema's labelling config if no project has the title, else
reused (its config must hold the schema's labels). Tasks already in the project (same
``task_key``) are not imported again; a task that exists without a prediction of this
``model_version`` gets one. Tasks are imported in batches, each batch one request that Label
Studio stores in one go with its predictions, so a push interrupted at any point (server
stopped, Ctrl-C) leaves whole tasks only, and running it again completes it without duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import RuptureError
from ..progress import ProgressCallback, emit
from ..records import Session
from ..schema import LabelSchema
from .client import LSClient
from .config import check_project_config, label_config
from .tasks import DEFAULT_CHUNK, DEFAULT_OVERLAP, LABELS_MODEL_VERSION, TASK_KEY, order_tasks, sessions_to_tasks

DEFAULT_BATCH = 50


@dataclass
class PushReport:
    """What a push did. ``imported`` tasks are new; ``existing`` were already there."""

    project_id: int
    project_title: str
    created_project: bool
    sessions: int = 0
    tasks: int = 0
    imported: int = 0
    existing: int = 0
    predictions_added: int = 0
    model_version: str | None = None
    imported_keys: list[str] = field(default_factory=list)
    empty_sessions: list[str] = field(default_factory=list)


def project_instructions(schema: LabelSchema) -> str:
    """The coding guide shown to annotators (HTML): one line per label with its definition."""
    from html import escape

    parts = [
        f"<h3>{escape(schema.name)}: label every utterance that shows a marker</h3>",
        "<p>Select a whole utterance and press the label's key (or click it). An utterance may "
        "carry several labels; submit a part with no labels when nothing applies. Utterances "
        "marked <i>context</i> belong to the previous part: do not label them here.</p>",
    ]
    for cat in schema.categories:
        parts.append(f"<h4>{escape(cat.id)}</h4><ul>")
        for lid in schema.labels_in(cat.id):
            l = schema.label(lid)
            parts.append(f"<li><b>{escape(l.id)}</b> ({escape(l.speaker)}): {escape(l.description)}</li>")
        parts.append("</ul>")
    return "".join(parts)


def ensure_project(client: LSClient, title: str, schema: LabelSchema) -> tuple[Any, bool]:
    """The project titled ``title`` (created with ``schema``'s config if missing); (project, created)."""
    project = client.find_project(title)
    if project is not None:
        full = client.call(f"reading project '{title}'", client.sdk.projects.get, project.id)
        check_project_config(full.label_config or "", schema, title)
        return full, False
    project = client.call(
        f"creating project '{title}'",
        client.sdk.projects.create,
        title=title,
        description=f"rupture-nlp: sessions coded with label schema '{schema.name}'",
        label_config=label_config(schema),
        expert_instruction=project_instructions(schema),
        show_instruction=True,
        show_collab_predictions=True,
        enable_empty_annotation=True,
        show_skip_button=True,
        maximum_annotations=1,
    )
    return project, True


def existing_tasks(client: LSClient, project_id: int) -> dict[str, dict[str, Any]]:
    """``task_key`` -> {"id", "chunk", "overlap", "model_versions"} of the project's tasks."""

    def fetch() -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for t in client.sdk.tasks.list(project=project_id, fields="all", page_size=200):
            data = t.data or {}
            key = data.get(TASK_KEY)
            if not key or key in out:
                continue
            versions = set()
            for p in t.predictions or []:
                mv = p.get("model_version") if isinstance(p, dict) else getattr(p, "model_version", None)
                if mv:
                    versions.add(mv)
            out[key] = {
                "id": t.id,
                "chunk": data.get("chunk"),
                "overlap": data.get("overlap"),
                "model_versions": versions,
            }
        return out

    return client.call("listing the project's tasks", fetch)


def push_sessions(
    client: LSClient,
    sessions: Iterable[Session],
    project_title: str,
    schema: LabelSchema,
    *,
    model_version: str | None = LABELS_MODEL_VERSION,
    thresholds: dict[str, float] | None = None,
    order: str = "session",
    chunk: int = DEFAULT_CHUNK,
    overlap: int = DEFAULT_OVERLAP,
    batch_size: int = DEFAULT_BATCH,
    progress: ProgressCallback | None = None,
) -> PushReport:
    """Import ``sessions`` into the project (created if needed) as tasks; see the module docstring.

    The sessions' ``labels``/``scores`` (gold labels, ``rupture tag`` output, or a model's
    ``predict``) become pre-annotations under ``model_version``. ``progress`` is called with
    ``ProgressEvent("push", done, total, unit="tasks")`` over the new tasks: once the project's
    existing tasks are known (``done`` 0, message ``"N already there"``) and after every imported
    batch; giving existing tasks a new pre-annotation is stage ``"predictions"`` (unit
    ``"tasks"``, after every request). An exception it raises stops the push between batches.
    Returns a :class:`PushReport`.
    """
    sessions = list(sessions)
    tasks = order_tasks(
        sessions_to_tasks(
            sessions, schema, chunk=chunk, overlap=overlap, model_version=model_version, thresholds=thresholds
        ),
        order,
    )
    project, created = ensure_project(client, project_title, schema)
    report = PushReport(
        project_id=project.id,
        project_title=project_title,
        created_project=created,
        sessions=len(sessions),
        tasks=len(tasks),
        model_version=model_version,
        empty_sessions=[s.session_id for s in sessions if not s.utterances],
    )
    have = {} if created else existing_tasks(client, project.id)

    # A session already in the project must have been cut the same way, or parts would overlap.
    for t in tasks:
        old = have.get(t["data"][TASK_KEY])
        if old and (old["chunk"], old["overlap"]) != (chunk, overlap):
            raise RuptureError(
                f"session '{t['data']['session_id']}' is already in project '{project_title}' in parts of "
                f"--chunk {old['chunk']} --overlap {old['overlap']}; push it again with those values"
            )

    new = [t for t in tasks if t["data"][TASK_KEY] not in have]
    report.existing = len(tasks) - len(new)

    # Tasks that exist but lack this model's pre-annotation get it (e.g. a newer model).
    if model_version is not None:
        missing_preds = []
        for t in tasks:
            old = have.get(t["data"][TASK_KEY])
            if old and model_version not in old["model_versions"] and t.get("predictions"):
                p = dict(t["predictions"][0])
                p["task"] = old["id"]
                missing_preds.append(p)
        if missing_preds:
            emit(progress, "predictions", 0, len(missing_preds), unit="tasks")
        for i in range(0, len(missing_preds), batch_size):
            batch = missing_preds[i : i + batch_size]
            client.call(
                "adding predictions to existing tasks",
                client.sdk.projects.import_predictions,
                project.id,
                request=batch,
            )
            report.predictions_added += len(batch)
            emit(progress, "predictions", report.predictions_added, len(missing_preds), unit="tasks")

    def tick(done: int) -> None:
        emit(
            progress,
            "push",
            done,
            len(new),
            unit="tasks",
            message=f"{report.existing:,} already there" if report.existing else None,
        )

    done = 0
    tick(done)
    for i in range(0, len(new), batch_size):
        batch = new[i : i + batch_size]
        client.call(
            f"importing tasks {i + 1}-{i + len(batch)} of {len(new)}",
            client.sdk.projects.import_tasks,
            project.id,
            request=batch,
        )
        done += len(batch)
        report.imported += len(batch)
        report.imported_keys += [t["data"][TASK_KEY] for t in batch]
        tick(done)

    if model_version is not None and tasks:
        # Make this version the one Label Studio pre-fills annotations from.
        client.call(
            "selecting the pre-annotation version",
            client.sdk.projects.update,
            project.id,
            model_version=model_version,
            show_collab_predictions=True,
        )
    return report
