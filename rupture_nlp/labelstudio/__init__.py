"""Label Studio loop: labelling config, push sessions as pre-annotated tasks, pull corrections.

    from rupture_nlp.labelstudio import connect, label_config, push_sessions, pull_project

The server runs apart (``scripts/labelstudio.sh`` or ``rupture ls server ...``); this package
talks to it only through ``label-studio-sdk`` with ``LABEL_STUDIO_URL`` and
``LABEL_STUDIO_API_KEY`` from the environment.
"""

from __future__ import annotations

from .client import LSClient, Settings, connect
from .config import assign_hotkeys, label_config
from .pull import POLICIES, PullReport, pull_project
from .push import PushReport, push_sessions
from .tasks import session_tasks, sessions_to_tasks, split_parts, task_key

__all__ = [
    "LSClient",
    "Settings",
    "connect",
    "label_config",
    "assign_hotkeys",
    "push_sessions",
    "PushReport",
    "pull_project",
    "PullReport",
    "POLICIES",
    "session_tasks",
    "sessions_to_tasks",
    "split_parts",
    "task_key",
]
