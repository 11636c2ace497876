"""Model inputs (text pair, pause) and the output layout (sigmoid / exclusive softmax)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rupture_nlp.decision import decide
from rupture_nlp.model.base import default_base_path
from rupture_nlp.model.hf import load_tokenizer
from rupture_nlp.model.inputs import InputConfig, encode, pause_before, pause_features, session_examples
from rupture_nlp.model.modeling import OutputLayout, collate
from rupture_nlp.records import Session, Utterance
from rupture_nlp.schema import LabelSchema, load_schema

from model_helpers import TOY_EXCLUSIVE


def _session() -> Session:
    u = [
        Utterance("s-u1", 0, "therapist", "How was the week?", 1.0, 2.0),
        Utterance("s-u2", 1, "client", "Fine.", 6.5, 7.0),
        Utterance("s-u3", 1, "client", "Busy.", 7.2, 7.6),
        Utterance("s-u4", 2, "therapist", "Busy how?", None, None),
        Utterance("s-u5", 3, "client", "Work stuff.", 20.0, 21.0),
    ]
    return Session("s", u)


def test_pause_from_times():
    s = _session().utterances
    assert pause_before(None, s[0]) is None
    assert pause_before(s[0], s[1]) == pytest.approx(4.5)
    assert pause_before(s[2], s[3]) is None  # no times on the utterance
    assert pause_before(s[3], s[4]) is None  # no end time on the previous one
    overlap = Utterance("x", 0, "client", "x", 1.5, 2.0)
    assert pause_before(s[0], overlap) == 0.0  # overlaps count as no pause
    assert pause_features(None) == [0.0, 0.0]
    assert pause_features(4.5) == [pytest.approx(math.log1p(4.5)), 1.0]


def test_text_pair_has_speaker_pause_words_and_recent_context_first():
    ex = session_examples(_session(), InputConfig(context=2))
    assert ex[0].text_a == "therapist: How was the week?" and ex[0].text_b == ""
    assert ex[1].text_a == "client, after a long pause: Fine."  # 4.5 s
    assert ex[2].text_a == "client: Busy."  # 0.2 s: no marker
    assert ex[2].text_b == "client: Fine. therapist: How was the week?"  # most recent first
    assert ex[3].text_b == "client: Busy. client: Fine."  # only 2 context utterances


def test_switches_turn_parts_off():
    ex = session_examples(_session(), InputConfig(context=0, pause_marker=False, speaker=False))
    assert [e.text_a for e in ex[:2]] == ["How was the week?", "Fine."]
    assert all(e.text_b == "" for e in ex)


def test_encoding_truncates_context_not_the_utterance():
    tok = load_tokenizer(default_base_path())
    long_ctx = [Utterance(f"u{i}", i, "therapist", "word " * 40, None, None) for i in range(3)]
    target = Utterance("t", 3, "client", "I really do not want to talk about my mother today.", None, None)
    s = Session("s", long_ctx + [target])
    cfg = InputConfig(context=3, max_length=48)
    enc = encode(tok, session_examples(s, cfg), cfg)
    ids = enc["input_ids"][-1]
    assert len(ids) == 48
    text = tok.decode(ids)
    assert "i really do not want to talk about my mother today." in text
    assert enc["pause"][-1] == [0.0, 0.0]
    batch = collate([{k: enc[k][i] for k in ("input_ids", "token_type_ids", "pause")} for i in range(4)], tok)
    assert batch["input_ids"].shape == (4, 48) and batch["pause"].shape == (4, 2)
    assert int(batch["attention_mask"][0].sum()) == len(enc["input_ids"][0])


def test_layout_of_the_3rs_schema_is_all_sigmoid():
    schema = load_schema()
    lay = OutputLayout.from_schema(schema)
    assert lay.n_outputs == lay.n_labels == len(schema.label_ids) and not lay.groups
    logits = torch.zeros((2, lay.n_outputs))
    assert torch.allclose(lay.probabilities(logits), torch.full((2, lay.n_labels), 0.5))


def test_exclusive_category_gets_a_softmax_with_none():
    schema = LabelSchema.from_dict(TOY_EXCLUSIVE)
    lay = OutputLayout.from_schema(schema)
    # move/reflect: 1 sigmoid logit; talk: none + 2 labels
    assert lay.n_outputs == 4 and len(lay.groups) == 1
    logits = torch.tensor(
        [
            [0.0, 5.0, 0.0, 0.0],  # reflect 0.5; talk: none wins
            [3.0, -9.0, 2.0, 2.0],
        ]
    )  # talk/change and talk/sustain tie, none low
    P = lay.probabilities(logits).numpy()
    ids = schema.label_ids
    talk = [ids.index("talk/change"), ids.index("talk/sustain")]
    assert P[0, ids.index("move/reflect")] == pytest.approx(0.5)
    assert P[:, talk].sum(1).max() <= 1.0 + 1e-6
    assert P[1, talk] == pytest.approx([0.5, 0.5], abs=1e-3)
    D = decide(P, schema, 0.4)
    assert D[1, talk].sum() == 1  # at most one label of an exclusive category
    Y = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    loss = lay.loss(logits, Y[:, [ids.index(l) for l in ids]])
    assert torch.isfinite(loss) and loss > 0


def test_class_weights_follow_label_frequency():
    schema = LabelSchema.from_dict(TOY_EXCLUSIVE)
    lay = OutputLayout.from_schema(schema)
    Y = np.zeros((100, 3))
    Y[:4, schema.label_ids.index("move/reflect")] = 1
    pw, gw = lay.class_weights(Y, cap=30)
    assert pw.tolist() == pytest.approx([math.sqrt(96 / 4)])
    assert gw[0][0] == 1.0 and gw[0][1:].tolist() == pytest.approx([math.sqrt(100), math.sqrt(100)])
