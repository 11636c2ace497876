"""The Label Studio labelling config, generated from a label schema.

A task shows one session (or one part of a long session) as a dialogue: one paragraph per
utterance, with its speaker and times. Annotators select whole utterances and give them
labels; each schema category gets its own ``<ParagraphLabels>`` control (under a header), so
the labels appear grouped (withdrawal / confrontation / repair for 3RS). Every label carries
its definition as a hover hint and a hotkey; an utterance may carry any number of labels; a
free-text box takes a comment on the session.

Names shared with :mod:`.tasks` and :mod:`.parse`: the dialogue object is ``dialogue``, the
comment box ``comment``, the label control of a category ``labels_<category>``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..errors import RuptureError
from ..schema import LabelSchema

OBJECT_NAME = "dialogue"
COMMENT_NAME = "comment"
CONTROL_PREFIX = "labels_"
#: Task data keys the config reads: the utterance list, and the display name per utterance.
UTTERANCES_KEY = "utterances"
DISPLAY_NAME_KEY = "ls_speaker"  # not a canonical utterance key, so nothing is overwritten
TITLE_KEY = "title"

# One keyboard row per category (withdrawal 1-7, confrontation q-row, repair a-row for 3RS).
# Label Studio keeps "u" (unselect region) and "h" (hide/pan) for itself.
_HOTKEY_ROWS = ("1234567890", "qwertyiop", "asdfgjkl", "zxcvbnm")
# Category colours (background of active labels), cycled for schemas with more categories.
_PALETTE = ("#3B82C4", "#D1495B", "#2E9E6A", "#8E6CC4", "#E08E0B", "#1BA3A3")


def control_name(category_id: str) -> str:
    """The name of the label control of a category: ``labels_`` + the id made name-safe."""
    return CONTROL_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", category_id)


def controls(schema: LabelSchema) -> dict[str, str]:
    """Label id -> name of the control that holds it."""
    return {l.id: control_name(l.category) for l in schema.labels}


def assign_hotkeys(schema: LabelSchema) -> dict[str, str | None]:
    """One hotkey per label: the schema's own ``hotkey`` where given, else the next free key
    of the category's keyboard row, then of the other rows; None when all keys are used.

    Raises RuptureError if the schema gives one hotkey to two labels.
    """
    out: dict[str, str | None] = {}
    used: dict[str, str] = {}
    for l in schema.labels:
        if l.hotkey:
            if l.hotkey in used:
                raise RuptureError(
                    f"invalid label schema: hotkey '{l.hotkey}' is given to both '{used[l.hotkey]}' and '{l.id}'",
                    schema.source,
                )
            used[l.hotkey] = l.id
            out[l.id] = l.hotkey
    for ci, cat in enumerate(schema.category_ids):
        rows = _HOTKEY_ROWS[ci:] + _HOTKEY_ROWS[:ci] if ci < len(_HOTKEY_ROWS) else _HOTKEY_ROWS
        pool = [k for row in rows for k in row]
        for lid in schema.labels_in(cat):
            if lid in out:
                continue
            key = next((k for k in pool if k not in used), None)
            out[lid] = key
            if key is not None:
                used[key] = lid
    return out


def label_config(schema: LabelSchema) -> str:
    """The labelling config (XML) for ``schema``; see the module docstring for its layout."""
    hotkeys = assign_hotkeys(schema)
    view = ET.Element("View")
    ET.SubElement(view, "Header", value=f"${TITLE_KEY}", size="4")
    panel = ET.SubElement(
        view, "View", style="position: sticky; top: 0; z-index: 10; background: white; padding-bottom: 4px"
    )
    for ci, cat in enumerate(schema.categories):
        labels = [schema.label(lid) for lid in schema.labels_in(cat.id)]
        if not labels:
            continue
        speakers = sorted({l.speaker for l in labels})
        who = f" ({speakers[0]})" if len(speakers) == 1 and speakers[0] != "any" else ""
        header = cat.id.replace("_", " ").capitalize() + who
        ET.SubElement(panel, "Header", value=header, size="6")
        ctrl = ET.SubElement(
            panel,
            "ParagraphLabels",
            name=control_name(cat.id),
            toName=OBJECT_NAME,
            choice="single" if cat.exclusive else "multiple",
            showInline="true",
        )
        colour = _PALETTE[ci % len(_PALETTE)]
        for l in labels:
            attrs = {"value": l.id, "hint": l.description, "background": colour}
            if hotkeys.get(l.id):
                attrs["hotkey"] = hotkeys[l.id]
            ET.SubElement(ctrl, "Label", attrs)
    ET.SubElement(
        view,
        "Paragraphs",
        name=OBJECT_NAME,
        value=f"${UTTERANCES_KEY}",
        layout="dialogue",
        nameKey=DISPLAY_NAME_KEY,
        textKey="text",
        granularity="paragraph",
    )
    ET.SubElement(view, "Header", value="Comment on this session (optional)", size="6")
    ET.SubElement(
        view,
        "TextArea",
        name=COMMENT_NAME,
        toName=OBJECT_NAME,
        editable="true",
        maxSubmissions="1",
        rows="3",
        placeholder="Anything the next coder or trainer should know",
    )
    ET.indent(view, space="  ")
    return ET.tostring(view, encoding="unicode") + "\n"


def config_label_values(config_xml: str) -> dict[str, set[str]]:
    """The label values of each ``ParagraphLabels`` control in a config: {control name: values}.

    Used to check that an existing project can hold a schema's labels. Raises RuptureError
    if the XML cannot be parsed.
    """
    try:
        root = ET.fromstring(config_xml)
    except ET.ParseError as e:
        raise RuptureError(f"the project's labelling config is not valid XML ({e})") from None
    out: dict[str, set[str]] = {}
    for ctrl in root.iter("ParagraphLabels"):
        out[ctrl.get("name", "")] = {lab.get("value", "") for lab in ctrl.iter("Label")}
    return out


def check_project_config(config_xml: str, schema: LabelSchema, project_title: str) -> None:
    """RuptureError unless every schema label sits in the control :mod:`.tasks` will use for it."""
    have = config_label_values(config_xml)
    missing = [lid for lid, ctrl in controls(schema).items() if lid not in have.get(ctrl, set())]
    if missing:
        raise RuptureError(
            f"project '{project_title}' has a labelling config without {len(missing)} label(s) of schema "
            f"'{schema.name}' (e.g. '{missing[0]}'); it was made for another schema — use another "
            "--project title or the matching --schema"
        )
