"""The labelling config generated from a label schema (no server needed)."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import pytest

from ls_helpers import RUPTURE, ROOT
from rupture_nlp.errors import RuptureError
from rupture_nlp.labelstudio.config import (
    COMMENT_NAME,
    OBJECT_NAME,
    assign_hotkeys,
    check_project_config,
    control_name,
    label_config,
)
from rupture_nlp.schema import LabelSchema, load_schema

RESERVED = {"u", "h"}  # Label Studio's own single-key shortcuts (unselect, hide)


def test_default_schema_config_has_every_label_grouped_with_hint_and_hotkey():
    schema = load_schema()
    root = ET.fromstring(label_config(schema))
    paras = list(root.iter("Paragraphs"))
    assert len(paras) == 1
    p = paras[0]
    assert (p.get("name"), p.get("layout"), p.get("value")) == (OBJECT_NAME, "dialogue", "$utterances")
    assert p.get("textKey") == "text" and p.get("nameKey") == "ls_speaker" and p.get("granularity") == "paragraph"

    controls = {c.get("name"): c for c in root.iter("ParagraphLabels")}
    assert set(controls) == {control_name(c) for c in schema.category_ids}  # one control per category
    seen_keys = []
    for cat in schema.categories:
        ctrl = controls[control_name(cat.id)]
        assert ctrl.get("toName") == OBJECT_NAME
        assert ctrl.get("choice") == "multiple"
        values = [l.get("value") for l in ctrl.iter("Label")]
        assert values == schema.labels_in(cat.id)
        for lab in ctrl.iter("Label"):
            assert lab.get("hint") == schema.label(lab.get("value")).description
            seen_keys.append(lab.get("hotkey"))
    assert len(seen_keys) == len(schema.label_ids) == 23
    assert None not in seen_keys and len(set(seen_keys)) == len(seen_keys)
    assert not RESERVED & set(seen_keys)
    text_areas = list(root.iter("TextArea"))
    assert [t.get("name") for t in text_areas] == [COMMENT_NAME]
    check_project_config(label_config(schema), schema, "p")  # a config accepts its own schema


def test_hotkeys_follow_keyboard_rows_per_category():
    keys = assign_hotkeys(load_schema())
    assert keys["withdrawal/denial"] == "1" and keys["withdrawal/self_criticism_hopelessness"] == "7"
    assert keys["confrontation/complaint_therapist"] == "q"
    assert keys["repair/clarify_misunderstanding"] == "a"


def test_schema_hotkeys_win_and_clashes_are_refused():
    d = {
        "name": "mi",
        "categories": [{"id": "talk", "exclusive": True}],
        "labels": [
            {"id": "talk/change", "category": "talk", "speaker": "client", "description": "change", "hotkey": "c"},
            {"id": "talk/sustain", "category": "talk", "speaker": "client", "description": "sustain"},
        ],
    }
    schema = LabelSchema.from_dict(d)
    keys = assign_hotkeys(schema)
    assert keys == {"talk/change": "c", "talk/sustain": "1"}
    root = ET.fromstring(label_config(schema))
    assert next(root.iter("ParagraphLabels")).get("choice") == "single"  # exclusive category
    d["labels"][1]["hotkey"] = "c"
    with pytest.raises(RuptureError, match="hotkey 'c'"):
        assign_hotkeys(LabelSchema.from_dict(d))


def test_special_characters_in_definitions_stay_valid_xml():
    d = {
        "name": "odd",
        "labels": [{"id": "a/<b>", "category": "a&b", "speaker": "any", "description": 'says "no" & <means> it'}],
    }
    schema = LabelSchema.from_dict(d)
    root = ET.fromstring(label_config(schema))
    lab = next(root.iter("Label"))
    assert lab.get("value") == "a/<b>" and lab.get("hint") == 'says "no" & <means> it'
    assert next(root.iter("ParagraphLabels")).get("name") == "labels_a_b"


def test_project_of_another_schema_is_refused():
    other = LabelSchema.from_dict(
        {"name": "x", "labels": [{"id": "x/y", "category": "x", "speaker": "any", "description": "d"}]}
    )
    with pytest.raises(RuptureError, match="another schema"):
        check_project_config(label_config(other), load_schema(), "Old project")


def test_cli_config_prints_the_config():
    r = subprocess.run([*RUPTURE, "ls", "config"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == label_config(load_schema())
