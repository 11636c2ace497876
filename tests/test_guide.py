"""The annotators' coding guide (annotation/GUIDELINES.md) must match the default label schema.

Checked: one section per label id of ``load_schema()`` with the five required parts, examples
that are fully coded and obey the speaker rules of the schema, a quick-reference row for every
label, no label ids that the schema does not know, chapters grouping the labels as the Label
Studio config does, what the Label Studio section says against the generated config, the
agreement statistics named against the code that computes them, and the contents and sources.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rupture_nlp.labelstudio.config import control_name, label_config
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
        for nxt in heads[i + 1 :]:
            if len(nxt.group(1)) <= level:
                end = nxt.start()
                break
        out.setdefault(h.group(2).strip("` "), (level, text[h.end() : end]))
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
    chunk = body[m.end() : stop.start() if stop else len(body)]
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
                        f"{lid}: example puts {lab} ({want}) on a {role[spk]} line: {utt!r}"
                    )


def test_differential_names_neighbours_and_hard_negatives(text, schema):
    for lid, body in label_sections(text, schema).items():
        diff = body[PARTS["differential"].search(body).end() :]
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
        diff = secs[lid][PARTS["differential"].search(secs[lid]).end() :]
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


NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5}


@pytest.fixture(scope="module")
def ls_config(schema) -> ET.Element:
    """The Label Studio labelling config rupture-nlp generates for the schema."""
    return ET.fromstring(label_config(schema))


def ls_groups(config: ET.Element) -> list[tuple[str, str, list[ET.Element]]]:
    """(header text, control name, Label elements) per label control, in display order."""
    panel = next(v for v in config.iter("View") if v.find("ParagraphLabels") is not None)
    kids = list(panel)
    return [
        (kids[i - 1].get("value"), c.get("name"), list(c.iter("Label")))
        for i, c in enumerate(kids)
        if c.tag == "ParagraphLabels"
    ]


def test_intro_states_the_schema_it_covers(text, schema):
    m = re.search(r"schema `(?P<name>[^`]+)` \(`(?P<file>[^`]+)`,\s+(?P<n>\d+) labels in (?P<k>\w+) categories\)", text)
    assert m, "the introduction does not name the schema, its file and its size"
    assert m["name"] == schema.name
    assert (GUIDE.parents[1] / m["file"]).resolve() == Path(schema.source).resolve()
    assert (int(m["n"]), NUMBERS[m["k"]]) == (len(schema.label_ids), len(schema.category_ids))


def test_chapters_group_the_labels_as_label_studio_shows_them(text, schema, ls_config):
    """One chapter per category holding exactly that category's label sections, in the schema's
    order, with the speaker in its title that Label Studio's group header shows."""
    heads = list(HEADING.finditer(text))
    chapter, where = None, {}
    for h in heads:
        if len(h.group(1)) == 2:
            chapter = h.group(2)
        elif h.group(2).strip("` ") in schema.label_ids:
            where.setdefault(chapter, []).append(h.group(2).strip("` "))
    groups = ls_groups(ls_config)
    assert [name for _, name, _ in groups] == [control_name(c) for c in schema.category_ids]
    assert len(where) == len(groups), f"label sections spread over chapters {list(where)}"
    for (title, labels), (header, _, elements) in zip(where.items(), groups):
        assert labels == [e.get("value") for e in elements], f"chapter {title!r} and group {header!r} differ"
        speaker = re.search(r"\((\w+)\)$", title)
        assert speaker and header.endswith(f"({speaker.group(1)})"), (title, header)


def test_label_studio_section_describes_the_generated_config(text, schema, ls_config):
    ls = [body for t, (level, body) in sections(text).items() if level == 2 and "Label Studio" in t]
    assert ls, "no '## ... Label Studio' section"
    body = " ".join(ls[0].split())
    groups = ls_groups(ls_config)
    # "Labels are listed above the transcript, grouped as withdrawal, confrontation and repair,
    # each with its hotkey. Hover over a label to see its one-line definition."
    m = re.search(r"Labels\*\* are listed above the transcript, grouped as ([a-z, ]+?) and ([a-z]+),", body)
    assert m, "the section does not say how labels are grouped"
    assert [*(g.strip() for g in m.group(1).split(",")), m.group(2)] == schema.category_ids
    labels = [e for _, _, els in groups for e in els]
    keys = [e.get("hotkey") for e in labels]
    assert all(keys) and len(set(keys)) == len(keys), "every label needs its own hotkey"
    assert {e.get("value"): e.get("hint") for e in labels} == {l.id: l.description for l in schema.labels}
    tags = [e.tag for e in ls_config.iter() if e.tag in ("ParagraphLabels", "Paragraphs", "TextArea")]
    assert tags == ["ParagraphLabels"] * len(groups) + ["Paragraphs", "TextArea"]  # labels, transcript, comment
    # "shown as a dialogue: one utterance per bubble"; "a selection covers the whole utterance"
    dialogue = ls_config.find(".//Paragraphs")
    assert "shown as a dialogue" in body and dialogue.get("layout") == "dialogue"
    assert "selection covers the whole utterance" in body and dialogue.get("granularity") == "paragraph"
    # "To give the same utterance another label": no 3RS category is single-choice
    assert "another label" in body and all(c.get("choice") == "multiple" for c in ls_config.iter("ParagraphLabels"))
    # "One comment per task"
    assert "One comment per task" in body and ls_config.find(".//TextArea").get("maxSubmissions") == "1"


def test_agreement_statistics_are_the_ones_pull_computes(text):
    """8.2 names Cohen's kappa for two annotators and Krippendorff's alpha for more: the code
    picks them so and gives the hand-computed values."""
    from rupture_nlp.labelstudio.agreement import agreement
    from rupture_nlp.labelstudio.parse import Annotation

    secs = sections(text)
    body = next(b for t, (lvl, b) in secs.items() if lvl == 3 and "reports agreement" in t)
    named = re.findall(r"^- \*\*(.+?)\*\*.*? for (two|three or more)\b", body, re.M)
    assert named == [("Cohen's kappa", "two"), ("Krippendorff's alpha", "three or more")]
    lid = "withdrawal/denial"
    schema = load_schema()

    def coded(*coders: list[int]) -> dict:
        anns = [
            Annotation(
                i, 1, f"coder{i}", "2024-01-01T00:00:00Z", {f"u{j}": {lid} if v else set() for j, v in enumerate(c)}
            )
            for i, c in enumerate(coders)
        ]
        return agreement([anns], schema)

    two = coded([1, 1, 0, 0], [1, 0, 0, 0])  # p_o = 3/4, p_e = 1/2: kappa = 1/2
    assert two["metric"] == "cohen_kappa" and two["labels"][lid]["value"] == pytest.approx(0.5)
    three = coded([1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0])
    # coincidences o11 = 4, o00 = 6, o01 = o10 = 1 (n = 12): alpha = 1 - (2/12) / (2*5*7 / (12*11)) = 1 - 264/840
    assert three["metric"] == "krippendorff_alpha"
    assert three["labels"][lid]["value"] == pytest.approx(1 - 264 / 840, abs=1e-4)


def test_contents_list_links_every_chapter(text):
    chapters = [h.group(2) for h in HEADING.finditer(text) if len(h.group(1)) == 2]
    links = re.findall(r"^\d+\. \[(.+?)\]\(#(.+?)\)$", text, re.M)
    assert [t for t, _ in links] == [re.sub(r"^\d+\.\s+", "", c) for c in chapters]
    slug = lambda h: re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")  # noqa: E731 - GitHub's anchors
    assert [a for _, a in links] == [slug(c) for c in chapters]
    low = [c.lower() for c in chapters]
    for need in ("background", "coding procedure", "decision sequence", "label studio", "reliability", "sources"):
        assert any(need in c for c in low), f"no top-level section about '{need}'"


def test_every_cited_work_is_in_the_sources_and_every_source_is_cited(text):
    body, _, sources = text.partition("\n## 9. Sources")
    assert sources, "no '## 9. Sources' section"
    # "Bordin 1979", "Harper's (1989)", "Eubanks, Muran & Safran 2015", "Eubanks et al. 2019": first author, year
    cite = re.compile(r"\b([A-Z][a-z]+)(?:'s)?(?:(?:, | & )[A-Z][a-z]+)*(?: et al\.)?,? \(?((?:19|20)\d\d)\b")
    cited = set(cite.findall(body))
    listed = set(re.findall(r"^- ([A-Z][a-z]+)\b[^()\n]*\(((?:19|20)\d\d)\)", sources, re.M))
    assert len(listed) == len(re.findall(r"^- ", sources, re.M)), "a source entry is not 'Names (year) – ...'"
    assert cited == listed
