import json

import pytest
import yaml
from typer.testing import CliRunner

from rupture_nlp.cli import app
from rupture_nlp.errors import RuptureError
from rupture_nlp.schema import load_schema

IDS_3RS = """withdrawal/denial withdrawal/minimal_response withdrawal/abstract_communication
withdrawal/avoidant_storytelling withdrawal/deferential_appeasing withdrawal/content_affect_split
withdrawal/self_criticism_hopelessness confrontation/complaint_therapist confrontation/rejects_intervention
confrontation/complaint_activities confrontation/complaint_parameters confrontation/complaint_progress
confrontation/defends_self confrontation/control_pressure repair/clarify_misunderstanding
repair/change_tasks_goals repair/illustrate_task_rationale repair/invite_discussion
repair/acknowledge_contribution repair/disclose_experience repair/link_to_patterns repair/validate_defense
repair/redirect_refocus""".split()


def test_default_schema_is_3rs_with_exact_ids():
    s = load_schema()
    assert s.label_ids == IDS_3RS
    assert s.category_ids == ["withdrawal", "confrontation", "repair"]
    assert not any(c.exclusive for c in s.categories)
    for l in s.labels:
        assert l.category == l.id.split("/")[0]
        assert l.speaker == ("therapist" if l.category == "repair" else "client")
        assert len(l.description) > 30


def _write(tmp_path, data, name="s.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if name.endswith(".yaml") else json.dumps(data))
    return p


MI = {
    "name": "mi",
    "categories": [{"id": "client_talk", "exclusive": True}, {"id": "therapist", "exclusive": False}],
    "labels": [
        {"id": "change", "category": "client_talk", "speaker": "client", "description": "change talk"},
        {"id": "sustain", "category": "client_talk", "speaker": "client", "description": "sustain talk"},
        {"id": "reflect", "category": "therapist", "speaker": "therapist", "description": "reflection"},
    ],
}


@pytest.mark.parametrize("name", ["mi.yaml", "mi.json"])
def test_custom_schema_yaml_and_json(tmp_path, name):
    s = load_schema(_write(tmp_path, MI, name))
    assert s.label_ids == ["change", "sustain", "reflect"]
    assert s.category("client_talk").exclusive and not s.category("therapist").exclusive
    assert s.coarse(["reflect", "change"]) == ["client_talk", "therapist"]


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d.pop("name"), "'name'"),
        (lambda d: d.update(labels=[]), "'labels'"),
        (lambda d: d["labels"][0].pop("description"), "lacks description"),
        (lambda d: d["labels"][1].update(id="change"), "occurs twice"),
        (lambda d: d["labels"][0].update(speaker="nurse"), "speaker must be"),
        (lambda d: d["labels"][0].update(category="other"), "not listed under 'categories'"),
        (lambda d: d["categories"][0].update(exclusive="yes"), "'exclusive' must be"),
    ],
)
def test_bad_schemas_give_clear_errors(tmp_path, mutate, needle):
    d = json.loads(json.dumps(MI))
    mutate(d)
    p = _write(tmp_path, d)
    with pytest.raises(RuptureError) as e:
        load_schema(p)
    assert needle in str(e.value) and str(p) in str(e.value)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(name="  "), "'name' is empty"),
        (lambda d: d.update(labels="x"), "'labels' must be a list, not 'x'"),
        (lambda d: d["labels"].append(["x"]), "label 4 must be a mapping, not a list"),
        (lambda d: d["labels"][0].update(description=" "), "label 1 ('change'): 'description' is empty"),
        (
            lambda d: [d["labels"][0].pop(k) for k in ("speaker", "description")],
            "label 1 ('change') lacks speaker, description",
        ),
        (
            lambda d: d["labels"][0].update(speaker="nurse"),
            "label 1 ('change'): speaker must be one of therapist, client, any, not 'nurse'",
        ),
        (lambda d: d["categories"].append({"exclusive": True}), "category 3 lacks id"),
        (lambda d: d["categories"].append({"id": "therapist"}), "category id 'therapist' occurs twice"),
    ],
)
def test_schema_errors_are_one_line_naming_file_and_field(tmp_path, mutate, message):
    d = json.loads(json.dumps(MI))
    mutate(d)
    p = _write(tmp_path, d)
    with pytest.raises(RuptureError) as e:
        load_schema(p)
    assert str(e.value) == f"{p}: invalid label schema: {message}"


def test_schema_leniencies_kept(tmp_path):
    """What files in the wild hold: numbers where YAML reads them (hotkeys, versions), empty
    descriptions and no categories."""
    d = json.loads(json.dumps(MI))
    d.update(version=2015, description=None)
    d["labels"][0]["hotkey"] = 1
    d["categories"][1]["description"] = None
    s = load_schema(_write(tmp_path, d))
    assert s.version == "2015" and s.description == "" and s.label("change").hotkey == "1"
    assert s.category("therapist").description == ""
    d.pop("categories")
    assert load_schema(_write(tmp_path, d)).category_ids == ["client_talk", "therapist"]


def test_saved_schema_fits_the_json_schema():
    import jsonschema

    from rupture_nlp.schema import label_schema_json_schema

    jsonschema.Draft202012Validator(label_schema_json_schema()).validate(load_schema().to_dict())


def test_unparsable_schema_names_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nlabels:\n  - id: [unclosed\n")
    with pytest.raises(RuptureError) as e:
        load_schema(p)
    assert f"{p}:" in str(e.value)


def test_schema_save_roundtrip(tmp_path):
    s = load_schema(_write(tmp_path, MI))
    s.save(tmp_path / "copy.yaml")
    assert load_schema(tmp_path / "copy.yaml") == s


def test_labels_command_lists_all_and_takes_schema(tmp_path):
    r = CliRunner().invoke(app, ["labels"], terminal_width=200)
    assert r.exit_code == 0
    for lid in IDS_3RS:
        assert lid in r.output
    r = CliRunner().invoke(app, ["labels", "--schema", str(_write(tmp_path, MI))], terminal_width=200)
    assert r.exit_code == 0 and "sustain" in r.output and "exclusive" in r.output
    assert "withdrawal/denial" not in r.output
