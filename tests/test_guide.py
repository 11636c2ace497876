"""The annotators' coding guide (annotation/GUIDELINES.md) must match the default label schema.

Checked: one section per label id of ``load_schema()`` with the five required parts, examples
that are fully coded and obey the speaker rules of the schema, a quick-reference row for every
label, no label ids that the schema does not know, and the Label Studio and reliability sections.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from rupture_nlp.schema import LabelSchema, load_schema

GUIDE = Path(__file__).resolve().parents[1] / "annotation" / "GUIDELINES.md"

PARTS = {
    "what it is": re.compile(r"^\*\*What it is\.?\*\*", re.M),
    "what it is not": re.compile(r"^\*\*What it is not\.?\*\*", re.M),
    "speaker": re.compile(r"^\*\*Speaker\.?\*\*(?P<rest>.*)$", re.M),
    "examples": re.compile(r"^\*\*Examples\.?\*\*", re.M),
    "differential": re.compile(r"^\*\*Differential\.?\*\*", re.M),
}
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$", re.M)
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
EXAMPLE_LINE = re.compile(r"^(?P<spk>[TC]):\s*(?:\{\+\d+(?:\.\d+)?\}\s*)?(?P<text>.*?)\s*(?:\|\|\s*(?P<labels>.*))?$")
LABEL_LIKE = re.compile(r"\b(?:withdrawal|confrontation|repair)/[a-z_]+\b")


@pytest.fixture(scope="module")
def text() -> str:
    assert GUIDE.is_file(), f"missing coding guide {GUIDE}"
    return GUIDE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def schema() -> LabelSchema:
    return load_schema()


def sections(text: str) -> dict[str, tuple[int, str]]:
    """Map heading title -> (level, body up to the next heading of the same or a higher level)."""
    heads = list(HEADING.finditer(text))
    out: dict[str, tuple[int, str]] = {}
    for i, h in enumerate(heads):
        level = len(h.group(1))
        end = len(text)
        for nxt in heads[i + 1:]:
            if len(nxt.group(1)) <= level:
                end = nxt.start()
                break
        out.setdefault(h.group(2).strip("` "), (level, text[h.end():end]))
    return out


def label_sections(text: str, schema: LabelSchema) -> dict[str, str]:
    secs = sections(text)
    missing = [lid for lid in schema.label_ids if lid not in secs]
    assert not missing, f"no '### <id>' section for: {missing}"
    return {lid: secs[lid][1] for lid in schema.label_ids}


def example_blocks(body: str) -> list[list[tuple[str, str, list[str]]]]:
    """The fenced example blocks after **Examples** as lists of (speaker T/C, text, labels)."""
    m = PARTS["examples"].search(body)
    assert m, "no **Examples** part"
    stop = PARTS["differential"].search(body, m.end())
    chunk = body[m.end(): stop.start() if stop else len(body)]
    blocks = []
    for fence in FENCE.finditer(chunk):
        lines = []
        for raw in fence.group(1).splitlines():
            if not raw.strip():
                continue
            lm = EXAMPLE_LINE.match(raw.strip())
            assert lm, f"example line not in the T:/C: format: {raw!r}"
            labels = [x.strip() for x in (lm.group("labels") or "").split(",") if x.strip()]
            lines.append((lm.group("spk"), lm.group("text"), labels))
        blocks.append(lines)
    return blocks


def test_every_label_has_a_section_with_the_five_parts_in_order(text, schema):
    for lid, body in label_sections(text, schema).items():
        positions = []
        for name, rx in PARTS.items():
            found = rx.findall(body) if name != "speaker" else [m.group(0) for m in rx.finditer(body)]
            assert len(found) == 1, f"{lid}: part '{name}' found {len(found)} times (need exactly 1)"
            positions.append(rx.search(body).start())
        assert positions == sorted(positions), f"{lid}: parts are not in the order {list(PARTS)}"


def test_speaker_part_matches_the_schema(text, schema):
    for lid, body in label_sections(text, schema).items():
        rest = PARTS["speaker"].search(body).group("rest").strip().lower()
        want = schema.label(lid).speaker
        other = {"client": "therapist", "therapist": "client"}.get(want)
        assert want in rest, f"{lid}: Speaker part says {rest!r}, schema says {want!r}"
        if other:
            assert other not in rest, f"{lid}: Speaker part also names {other!r}"


def test_two_coded_examples_per_label_obeying_the_speaker_rules(text, schema):
    role = {"T": "therapist", "C": "client"}
    known = set(schema.label_ids)
    for lid, body in label_sections(text, schema).items():
        blocks = example_blocks(body)
        assert len(blocks) >= 2, f"{lid}: {len(blocks)} example block(s), need two"
        for block in blocks:
            assert len(block) >= 2, f"{lid}: an example needs a line of context besides the coded line"
            assert any(lid in labels for _, _, labels in block), f"{lid}: an example does not show the label"
            for spk, utt, labels in block:
                assert utt, f"{lid}: empty example utterance"
                for lab in labels:
                    assert lab in known, f"{lid}: example uses unknown label {lab!r}"
                    want = schema.label(lab).speaker
                    assert want in ("any", role[spk]), (
                        f"{lid}: example puts {lab} ({want}) on a {role[spk]} line: {utt!r}")


def test_differential_names_neighbours_and_hard_negatives(text, schema):
    for lid, body in label_sections(text, schema).items():
        diff = body[PARTS["differential"].search(body).end():]
        items = [l for l in diff.splitlines() if l.lstrip().startswith("- ")]
        assert len(items) >= 2, f"{lid}: differential needs at least two contrasts"
        assert "vs" in diff, f"{lid}: differential names no neighbour ('vs ...')"


def test_required_differentials_are_present(text, schema):
    """The contrasts the brief and issue 3 name explicitly, each in the right label's section."""
    secs = label_sections(text, schema)
    required = {
        "withdrawal/minimal_response": "closed question",
        "confrontation/rejects_intervention": "collaborative disagreement",
        "withdrawal/avoidant_storytelling": "relevant narrative",
        "withdrawal/deferential_appeasing": "honest agreement",
        "withdrawal/content_affect_split": "genuine humour",
        "withdrawal/self_criticism_hopelessness": "engaged reflection",
        "confrontation/complaint_parameters": "practical scheduling question",
        "repair/illustrate_task_rationale": "no label",
        "repair/validate_defense": "ordinary empathy",
        "repair/redirect_refocus": "nothing went wrong",
        "repair/clarify_misunderstanding": "routine clarification",
        "repair/acknowledge_contribution": "defensive apology",
        "repair/disclose_experience": "self-disclosure about",
        "repair/link_to_patterns": "no rupture",
    }
    for lid, phrase in required.items():
        diff = secs[lid][PARTS["differential"].search(secs[lid]).end():]
        assert phrase in diff.lower(), f"{lid}: differential lacks '{phrase}'"


def test_guide_mentions_only_schema_labels(text, schema):
    unknown = sorted(set(LABEL_LIKE.findall(text)) - set(schema.label_ids))
    assert not unknown, f"guide mentions label ids the schema does not have: {unknown}"
    id_heads = [h.group(2).strip("` ") for h in HEADING.finditer(text) if "/" in h.group(2)]
    assert sorted(id_heads) == sorted(schema.label_ids), "label sections and schema ids differ"


def test_quick_reference_has_a_row_per_label_with_its_speaker(text, schema):
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and len(cells) >= 3 and cells[0] in schema.label_ids:
            rows[cells[0]] = cells
    missing = [lid for lid in schema.label_ids if lid not in rows]
    assert not missing, f"quick reference lacks rows for {missing}"
    for lid, cells in rows.items():
        assert cells[1] == schema.label(lid).speaker, f"quick reference: wrong speaker for {lid}"
        assert len(cells[2]) > 20, f"quick reference: no one-line test for {lid}"


def test_label_studio_section(text):
    secs = sections(text)
    ls = [(t, body) for t, (level, body) in secs.items() if level == 2 and "Label Studio" in t]
    assert ls, "no '## ... Label Studio' section"
    body = ls[0][1].lower()
    for word in ("hotkey", "hover", "pre-annotation", "overlap", "chunk", "comment", "submit",
                 "accept", "remove", "add", "change", "training data", "transcript"):
        assert word in body, f"Label Studio section does not cover '{word}'"


def test_background_and_reliability_sections(text):
    low = text.lower()
    for phrase in ("withdrawal", "confrontation", "immediate", "exploratory", "5-minute",
                   "cohen's kappa", "krippendorff's alpha", ".85–.98", ".92", "eubanks et al. 2019"):
        assert phrase in low, f"guide lacks '{phrase}'"
    titles = [t.lower() for t, (level, _) in sections(text).items() if level == 2]
    for need in ("background", "coding procedure", "decision sequence", "reliability"):
        assert any(need in t for t in titles), f"no top-level section about '{need}'"
