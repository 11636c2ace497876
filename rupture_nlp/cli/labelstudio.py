"""CLI commands ``rupture ls ...``: the Label Studio server, labelling config, push and pull.

    rupture ls server install|start|stop|status|creds
    rupture ls config [--schema FILE] [--out FILE]
    rupture ls push INPUT... --project TITLE [--model DIR] [--order uncertainty|session] [--chunk N]
    rupture ls pull --project TITLE --out FILE.jsonl [--annotator EMAIL | --policy majority|latest]

Server and token come from ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import RuptureError
from ..progress import ProgressCallback, emit
from .app import (
    Policy,
    ProgressDisplay,
    PushOrder,
    SchemaOption,
    err_console,
    expand_inputs,
    load_schema_option,
    ls_app,
    report_error,
)
from .segment import FormatOption, SpeakersOption

server_app = typer.Typer(
    help="Run a local Label Studio server (the packaged labelstudio.sh; its virtualenv and "
    "data in $RUPTURE_LABELSTUDIO_HOME: the checkout's root in a checkout, else "
    "~/.local/share/rupture-nlp).",
    no_args_is_help=True,
)
ls_app.add_typer(server_app, name="server")


def _run_script(command: str) -> None:
    from ..resources import LABELSTUDIO_HOME_ENV, checkout_root, labelstudio_script

    env = dict(os.environ)
    root = checkout_root()
    if not env.get(LABELSTUDIO_HOME_ENV) and root is not None:
        env[LABELSTUDIO_HOME_ENV] = str(root)  # as scripts/labelstudio.sh: .venv-labelstudio/ at the root
    with labelstudio_script() as script:
        rc = subprocess.call(["bash", str(script), command], env=env)
    if rc:
        raise typer.Exit(rc)


SERVER_COMMANDS = {
    "install": "Install Label Studio into its own virtualenv (.venv-labelstudio); does nothing if it is there.",
    "start": "Start Label Studio on 127.0.0.1:$LABEL_STUDIO_PORT (default 8080) and wait until it answers.",
    "stop": "Stop the server started by 'start' (SIGTERM to its PID).",
    "status": "Say whether the server runs and answers (exit 0) or not (exit 3).",
    "creds": "Make sure the server's password and API token exist (random, in DATA_DIR/credentials.env, "
    "mode 0600); say where they are, never what they are.",
}


def _server_command(command: str, doc: str):
    def run() -> None:
        _run_script(command)

    run.__doc__ = doc
    run.__name__ = f"server_{command}"
    return run


for _name, _doc in SERVER_COMMANDS.items():
    server_app.command(_name)(_server_command(_name, _doc))


@ls_app.command("config")
def config(
    schema: Optional[Path] = SchemaOption,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the config to this file instead of stdout."),
) -> None:
    """Print the labelling config (XML) generated from the label schema."""
    from ..atomic import atomic_write_text
    from ..labelstudio.config import label_config

    xml = label_config(load_schema_option(schema))
    if out is None:
        typer.echo(xml, nl=False)
    else:
        atomic_write_text(out, xml)
        err_console.print(f"wrote {out}", markup=False)


def _load_inputs(
    files: list[Path], format: Optional[str], speakers: Optional[str], progress: ProgressCallback | None = None
) -> tuple[list, int]:
    """All sessions of the good files; bad files reported one line each. (sessions, failures)."""
    from ..ingest import load_sessions

    sessions, failed = [], 0
    emit(progress, "read", 0, len(files), unit="files")
    for i, f in enumerate(files, 1):
        try:
            sessions += list(load_sessions(f, format=format, speakers=speakers))
        except RuptureError as e:
            report_error(e)
            failed += 1
        emit(
            progress,
            "read",
            i,
            len(files),
            unit="files",
            message=f"{len(sessions):,} sessions" + (f", {failed:,} failed" if failed else ""),
        )
    return sessions, failed


@ls_app.command("push")
def push(
    inputs: List[Path] = typer.Argument(..., help="Transcripts or canonical JSONL (files or folders)."),
    project: str = typer.Option(..., "--project", help="Project title (created if missing, else reused)."),
    model: Optional[Path] = typer.Option(
        None,
        "--model",
        help="Model directory: its predictions become the pre-annotations (default: labels already in the input).",
    ),
    order: PushOrder = typer.Option(
        PushOrder.session,
        "--order",
        help="'session' (input order) or 'uncertainty' (tasks the model is least sure about first).",
    ),
    chunk: int = typer.Option(60, "--chunk", min=1, help="Utterances coded per task; longer sessions are split."),
    overlap: int = typer.Option(5, "--overlap", min=0, help="Utterances of the part before shown as context."),
    batch_size: int = typer.Option(50, "--batch-size", min=1, help="Tasks per import request."),
    schema: Optional[Path] = SchemaOption,
    format: Optional[str] = FormatOption,
    speakers: Optional[str] = SpeakersOption,
) -> None:
    """Import sessions as Label Studio tasks with pre-annotations; pushing again adds no duplicates.

    Each session is a task (long ones split into parts of --chunk utterances); with --model the
    model's labels and scores pre-annotate it, else the labels in the input (gold labels or the
    output of 'rupture tag'). Bad input files are reported and skipped (exit 1 at the end).
    """
    from ..labelstudio import connect, push_sessions
    from ..labelstudio.tasks import LABELS_MODEL_VERSION

    order = PushOrder(order).value
    files = expand_inputs(inputs)
    if not files:
        raise RuptureError("no input files")
    client = connect()  # fail on server/URL/token before reading or predicting anything
    rep = None
    with ProgressDisplay() as show:
        sessions, failed = _load_inputs(files, format, speakers, show)
        thresholds = None
        if model is not None:
            from ..model import RuptureClassifier

            clf = RuptureClassifier.from_pretrained(model)
            labels = clf.schema
            if schema is not None and load_schema_option(schema).label_ids != labels.label_ids:
                raise RuptureError("--schema differs from the model's schema; leave --schema out with --model")
            if sessions:
                emit(show, "predict", 0, len(sessions), unit="sessions")
                sessions = clf.predict(sessions)
                emit(show, "predict", len(sessions), len(sessions), unit="sessions")
            version: Optional[str] = clf.model_version
            thresholds = {l: float(t) for l, t in zip(labels.label_ids, clf.thresholds)}
        else:
            labels = load_schema_option(schema)
            has_labels = any(u.labels is not None or u.scores for s in sessions for u in s.utterances)
            version = LABELS_MODEL_VERSION if has_labels else None
        if sessions:
            rep = push_sessions(
                client,
                sessions,
                project,
                labels,
                model_version=version,
                thresholds=thresholds,
                order=order,
                chunk=chunk,
                overlap=overlap,
                batch_size=batch_size,
                progress=show,
            )
    if rep is not None:
        what = f"pre-annotations '{version}'" if version else "no pre-annotations"
        typer.echo(
            f"project '{project}' (id {rep.project_id}{', new' if rep.created_project else ''}): "
            f"{rep.sessions} session(s) as {rep.tasks} task(s): {rep.imported} imported, "
            f"{rep.existing} already there"
            + (f", {rep.predictions_added} given new pre-annotations" if rep.predictions_added else "")
            + f"; {what}"
        )
        if rep.empty_sessions:
            err_console.print(
                f"{len(rep.empty_sessions)} session(s) without utterances not pushed: "
                + ", ".join(rep.empty_sessions[:5]),
                markup=False,
            )
    if failed:
        err_console.print(f"{failed} file(s) failed", markup=False)
        raise typer.Exit(1)


@ls_app.command("pull")
def pull(
    project: str = typer.Option(..., "--project", help="Title of the project to export."),
    out: Path = typer.Option(..., "--out", "-o", help="Canonical JSONL with gold labels to write (atomically)."),
    policy: Policy = typer.Option(
        Policy.latest,
        "--policy",
        help="Several annotators on a task: 'latest' annotation, "
        "or 'majority' (a label stays when more than half gave it).",
    ),
    annotator: Optional[str] = typer.Option(None, "--annotator", help="Use only this annotator's annotations (email)."),
    raw: Optional[Path] = typer.Option(
        None, "--raw", help="Where to save the raw export (default: OUT with .ls-export.json)."
    ),
    agreement: Optional[Path] = typer.Option(
        None,
        "--agreement",
        help="Where to write per-label agreement (default: OUT with .agreement.json; only with several annotators).",
    ),
    include_partial: bool = typer.Option(
        False, "--include-partial", help="Also write sessions not fully annotated (labels null where no one coded)."
    ),
    schema: Optional[Path] = SchemaOption,
) -> None:
    """Export annotations, save the raw export, write canonical sessions with gold labels.

    The output feeds 'rupture train' directly. Tasks without annotations are listed; with
    several annotators, per-label agreement is written too.
    """
    from ..labelstudio import connect, pull_project
    from ..labelstudio.pull import summarize

    policy = Policy(policy).value
    if annotator is not None and policy != "latest":
        raise RuptureError("give either --annotator or --policy, not both")
    from ..locking import output_lock

    labels = load_schema_option(schema)
    with output_lock(out):
        client = connect()
        rep = pull_project(
            client,
            project,
            out,
            labels,
            policy=policy,
            annotator=annotator,
            raw_path=raw,
            agreement_path=agreement,
            include_partial=include_partial,
        )
    for line in summarize(rep):
        typer.echo(line)
