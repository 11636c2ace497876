"""The session architecture: windows, dialogue features, marker memory, two-stage scores,
count-tuned decisions, and a tiny real training saved, reloaded and used (tests/model_helpers.py)."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
import torch

from model_helpers import in_memory_dev_proba, data_dir, make_session, LINES
from rupture_nlp.decision import coarse_matrix
from rupture_nlp.errors import RuptureError
from rupture_nlp.model import RuptureClassifier
from rupture_nlp.model.session import N_FEATURES, SessionConfig, build_head, run_windows, session_features, windows
from rupture_nlp.model.session_train import HeadTrainConfig, fit_head, tune_category_thresholds
from rupture_nlp.records import Session, Utterance, read_sessions
from rupture_nlp.schema import load_schema


@pytest.mark.parametrize("n", [0, 1, 5, 63, 64, 65, 96, 97, 130, 500])
def test_windows_tile_every_utterance_once_with_context_on_both_sides(n):
    W = 64
    ws = windows(n, W)
    kept = [i for s, e, k0, k1 in ws for i in range(k0, k1)]
    assert kept == list(range(n))  # each utterance predicted exactly once, in order
    for s, e, k0, k1 in ws:
        assert 0 <= s <= k0 <= k1 <= e <= n and e - s == min(n, W)
        for i in range(k0, k1):
            # at least W // 4 utterances before and after, unless the session itself ends sooner
            assert i - s >= min(W // 4, i) and e - 1 - i >= min(W // 4, n - 1 - i), (i, s, e)


def test_features_speaker_change_pause_and_missing_times():
    s = make_session(
        "f",
        [
            ("T", "How was the week?", [], None),
            ("C", "Fine.", [], 4.0),
            ("C", "I guess.", [], None),
            ("T", "Mm.", [], None),
        ],
    )
    X = session_features(s)
    assert X.shape == (4, N_FEATURES)
    assert X[:, :3].tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert X[:, 3].tolist() == [0, 1, 0, 1]  # speaker change
    assert X[1, 5] == 1.0 and X[1, 4] == pytest.approx(np.log1p(4.0), abs=0.01)
    for u in s.utterances:
        u.start = u.end = None
    X = session_features(s)
    assert (X[:, 4:6] == 0).all()  # unknown pauses: no value, flag off


def _head(schema, window=16, **kw):
    torch.manual_seed(0)
    return build_head(schema, 8, SessionConfig(window=window, hidden=8, **kw)).eval()


def test_marker_memory_sees_the_preceding_utterances_only():
    schema = load_schema(None)
    head = _head(schema, marker_window=3)
    c1 = torch.full((1, 10, 3), -20.0)
    c1[0, 4, 1] = 20.0  # a confrontation marker at utterance 4
    mem = head.memory(c1)[0]  # (10, 2): withdrawal, confrontation
    assert mem[:, 1].round().tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 0, 0]
    assert mem[:, 0].max() < 1e-6


def test_two_stage_scores_give_the_category_probability_to_its_top_label():
    schema = load_schema(None)
    head = _head(schema)
    coarse, fine = torch.randn(5, 3), torch.randn(5, len(schema.label_ids))
    P = head.probabilities(coarse, fine).numpy()
    np.testing.assert_allclose(coarse_matrix(P, schema), torch.sigmoid(coarse).numpy(), rtol=1e-6)
    assert (P <= coarse_matrix(P, schema).repeat([7, 7, 9], axis=1) + 1e-7).all()
    joint = _head(schema, two_stage=False)
    np.testing.assert_allclose(joint.probabilities(coarse, fine).numpy(), torch.sigmoid(fine).numpy(), rtol=1e-6)


def _random_session(n, seed, times=True):
    rng = np.random.default_rng(seed)
    rows = [(("T", "C")[int(rng.integers(2))], LINES[int(rng.integers(len(LINES)))][1], [], None) for _ in range(n)]
    s = make_session(f"r{seed}", rows)
    if not times:
        for u in s.utterances:
            u.start = u.end = None
    return s


def test_scores_do_not_depend_on_batching_and_see_both_sides_within_a_window():
    schema = load_schema(None)
    head = _head(schema, window=16)
    rng = np.random.default_rng(1)
    sessions = [_random_session(n, k) for k, n in enumerate([3, 16, 40])]
    vecs = [rng.normal(size=(len(s.utterances), 8)).astype(np.float32) for s in sessions]
    feats = [session_features(s) for s in sessions]
    together = run_windows(head, vecs, feats, max_windows=3)
    alone = [run_windows(head, [v], [f])[0] for v, f in zip(vecs, feats)]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # a change 3 utterances after utterance 20 changes its scores (it reads what follows) ...
    v2 = [v.copy() for v in vecs]
    v2[2][23] += 5.0
    after = run_windows(head, v2, feats)[2]
    assert np.abs(after[20] - together[2][20]).max() > 1e-4
    # ... a change more than a window away does not, and nothing leaks across sessions
    assert np.abs(after[:4] - together[2][:4]).max() == 0.0
    np.testing.assert_array_equal(run_windows(head, v2, feats)[1], together[1])


def test_count_mode_thresholds_match_gold_counts():
    rng = np.random.default_rng(3)
    C = (rng.random((400, 2)) < [0.1, 0.3]).astype(int)
    Pc = np.clip(C * 0.3 + rng.random((400, 2)) * 0.7, 0, 1)
    th = tune_category_thresholds(C, Pc, "count")
    pred = (Pc >= th).sum(0)
    assert np.abs(pred - C.sum(0)).max() <= 2
    th_f1 = tune_category_thresholds(C, Pc, "f1")
    assert th_f1.shape == (2,)
    with pytest.raises(ValueError):
        tune_category_thresholds(C, Pc, "median")


@pytest.mark.parametrize("seed", [13, 14, 15])
def test_head_training_survives_epochs_with_more_windows_than_the_estimate(seed):
    """Windows are cut at random offsets, so an epoch can have more of them than the fixed-draw
    estimate of the schedule (this set-up crashed OneCycleLR for seeds 14 and 15): the schedule now
    counts the real steps and every epoch trains."""
    schema = load_schema(None)
    rng = np.random.default_rng(2)
    lengths = [int(n) for n in rng.integers(20, 120, size=12)]
    head = _head(schema, window=8)
    V = [rng.normal(size=(n, 8)).astype(np.float32) for n in lengths]
    F = [np.zeros((n, N_FEATURES), np.float32) for n in lengths]
    Y = [(rng.random((n, len(schema.label_ids))) < 0.05).astype(np.float32) for n in lengths]
    history = fit_head(head, V, F, Y, HeadTrainConfig(epochs=4, batch_windows=1, seed=seed))
    assert len(history) == 4 and all(np.isfinite(history))


# --- a tiny real training ---------------------------------------------------------------------
def test_tiny_session_model_trains_saves_and_reloads(tiny_model):
    d = tiny_model("session")
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["arch"] == "session" and cfg["session"]["window"] == 8
    assert cfg["input"]["context"] == 0 and not cfg["input"]["pause_marker"]
    clf = RuptureClassifier.from_pretrained(d)
    dev = list(read_sessions(data_dir(d) / "dev.jsonl"))
    assert all(len(s.utterances) > 8 for s in dev)  # longer than one window
    P = clf.predict_proba(dev)
    np.testing.assert_allclose(P, in_memory_dev_proba(d), atol=1e-5)  # save/load reproduces training's model
    th = json.loads((d / "thresholds.json").read_text())
    for c in clf.schema.category_ids:  # two-stage: one threshold per category
        assert len({th[l] for l in clf.schema.labels_in(c)}) == 1
    # the other speaker role's labels are masked, as for the cross model
    spk = np.array([u.speaker for s in dev for u in s.utterances])
    rep = [j for j, l in enumerate(clf.schema.label_ids) if l.startswith("repair/")]
    assert (P[spk == "client"][:, rep] == 0).all()
    tagged = clf.predict(dev)
    assert [u.id for s in tagged for u in s.utterances] == [u.id for s in dev for u in s.utterances]


def test_tiny_session_model_without_times_and_with_one_utterance(tiny_model):
    clf = RuptureClassifier.from_pretrained(tiny_model("session"))
    s = _random_session(20, 5, times=False)
    P = clf.predict_proba([s])
    assert P.shape == (20, 23) and np.isfinite(P).all()
    one = Session(
        session_id="one",
        meta={},
        utterances=[Utterance(id="one-u1", turn=0, speaker="client", speaker_name="C", text="Fine.")],
    )
    assert clf.predict_proba([one]).shape == (1, 23)
    assert clf.predict_proba([]).shape == (0, 23)


def test_session_model_refuses_a_head_of_another_shape(tiny_model, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_model("session"), d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["session"]["hidden"] = 64
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RuptureError, match="head.safetensors"):
        RuptureClassifier.from_pretrained(d)
    cfg["arch"] = "recurrent"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RuptureError, match="arch"):
        RuptureClassifier.from_pretrained(d)


def test_session_model_compacts_to_adapters(tiny_model, tmp_path):
    from rupture_nlp.model.compact import lora_from_full

    full = RuptureClassifier.from_pretrained(tiny_model("session"))
    clf, stats = lora_from_full(tiny_model("session"), tmp_path / "c", rank=384, dtype="float32")
    assert clf.config.arch == "session" and clf.config.weights == "lora"
    dev = list(read_sessions(data_dir(tiny_model("session")) / "dev.jsonl"))
    np.testing.assert_allclose(clf.predict_proba(dev), full.predict_proba(dev), atol=2e-4)
    assert not (tmp_path / "c" / "encoder").exists()


def test_int8_compaction_stores_the_heads_matrices_int8_and_predicts_nearly_the_same(tiny_model, tmp_path):
    """dtype int8 stores the dialogue head's weight matrices row-wise int8 too (the GRU's are most
    of a compact model's size), its buffers exactly; loading dequantises them, reloading repeats."""
    from safetensors.torch import load_file

    from rupture_nlp.model.compact import lora_from_full

    f32, _ = lora_from_full(tiny_model("session"), tmp_path / "f32", rank=384, dtype="float32")
    i8, _ = lora_from_full(tiny_model("session"), tmp_path / "i8", rank=384, dtype="int8")
    stored = load_file(str(tmp_path / "i8" / "head.safetensors"))
    params = dict(f32.net.head.named_parameters())
    for k, p in params.items():
        assert stored[f"head.{k}"].dtype == (torch.int8 if p.ndim == 2 else torch.float32), k
    buffers = {k: v for k, v in f32.net.head.state_dict().items() if k not in params}  # the saved ones
    for k, b in buffers.items():
        assert torch.equal(stored[f"head.{k}"], b), k
    size = {k: (tmp_path / k / "head.safetensors").stat().st_size for k in ("f32", "i8")}
    assert size["i8"] < 0.35 * size["f32"], size
    dev = list(read_sessions(data_dir(tiny_model("session")) / "dev.jsonl"))
    P32, P8 = f32.predict_proba(dev), i8.predict_proba(dev)
    assert 0 < np.abs(P8 - P32).max() < 0.02
    np.testing.assert_array_equal(RuptureClassifier.from_pretrained(tmp_path / "i8").predict_proba(dev), P8)


def test_session_model_int8_stays_close(tiny_model):
    d = tiny_model("session")
    dev = list(read_sessions(data_dir(d) / "dev.jsonl"))
    f32 = RuptureClassifier.from_pretrained(d).predict_proba(dev)
    i8 = RuptureClassifier.from_pretrained(d, quantize="int8").predict_proba(dev)
    assert np.abs(f32 - i8).max() < 0.1 and not np.array_equal(f32, i8)


def test_deepcopy_of_a_session_model_predicts_the_same(tiny_model):
    clf = RuptureClassifier.from_pretrained(tiny_model("session"))
    dev = list(read_sessions(data_dir(tiny_model("session")) / "dev.jsonl"))
    np.testing.assert_array_equal(copy.deepcopy(clf).predict_proba(dev), clf.predict_proba(dev))


# --- the joint step: encoder and head trained together through the windows ---------------------
def test_grad_mask_takes_every_labelled_utterance_and_a_share_of_the_others():
    from rupture_nlp.model.session_train import _grad_mask

    gold = [np.zeros((30, 4)), np.zeros((50, 4))]
    gold[0][[1, 7], 0] = 1
    gold[1][[3, 9, 40], 2] = 1
    m = _grad_mask(gold, 2.0, np.random.default_rng(0))
    assert [len(x) for x in m] == [30, 50]
    assert m[0][[1, 7]].all() and m[1][[3, 9, 40]].all()
    assert sum(int(x.sum()) for x in m) == 5 + 10  # the labelled ones and 2x as many others
    assert all(x.all() for x in _grad_mask(gold, None, np.random.default_rng(0)))
    assert sum(int(x.sum()) for x in _grad_mask(gold, 0.0, np.random.default_rng(0))) == 5


def test_joint_step_trains_encoder_and_head_and_refreshes_the_cached_vectors():
    from rupture_nlp.model.architectures import SessionNet, embed_texts
    from rupture_nlp.model.base import resolve_base
    from rupture_nlp.model.hf import load_encoder, load_tokenizer
    from rupture_nlp.model.session import utterance_texts
    from rupture_nlp.model.session_train import JointTrainConfig, fit_joint
    from rupture_nlp.decision import label_matrix

    schema = load_schema(None)
    base = resolve_base(None)
    tok = load_tokenizer(base.path)
    torch.manual_seed(0)
    net = SessionNet(load_encoder(base.path, "mean"), build_head(schema, 384, SessionConfig(window=8)), "mean").eval()
    sessions = [make_session(f"j{k}", [LINES[(3 * k + j) % len(LINES)] for j in range(10)]) for k in range(3)]
    texts = [utterance_texts(s) for s in sessions]
    flat = embed_texts(net, tok, [t for ts in texts for t in ts], 32)
    vecs = [flat[10 * k : 10 * k + 10].copy() for k in range(3)]
    before = [v.copy() for v in vecs]
    gold = [label_matrix([s], schema).astype(np.float32) for s in sessions]
    enc0 = {k: v.detach().clone() for k, v in net.encoder.named_parameters()}
    head0 = {k: v.detach().clone() for k, v in net.head.named_parameters()}
    cfg = JointTrainConfig(epochs=1, grad_ratio=0.0, windows_per_step=1, encoder_lr=1e-3, head_lr=1e-3)
    losses = fit_joint(net, tok, texts, vecs, [session_features(s) for s in sessions], gold, cfg, 32)
    assert len(losses) == 1 and np.isfinite(losses[0])
    assert not net.training  # left in eval mode
    assert any(not torch.equal(enc0[k], v) for k, v in net.encoder.named_parameters())
    assert any(not torch.equal(head0[k], v) for k, v in net.head.named_parameters())
    for v, b, g in zip(vecs, before, gold):  # grad_ratio 0: exactly the labelled rows were re-encoded
        changed = np.abs(v - b).max(1) > 0
        np.testing.assert_array_equal(changed, g.sum(1) > 0)
    with pytest.raises(ValueError):
        JointTrainConfig(epochs=-1)


def test_joint_step_needs_a_session_model_with_an_encoder_to_train():
    from rupture_nlp.model.session_train import JointTrainConfig
    from rupture_nlp.model.train import TrainConfig

    for bad in (dict(arch="cross"), dict(arch="session", freeze_encoder=True)):
        with pytest.raises(ValueError, match="joint"):
            TrainConfig(joint=JointTrainConfig(epochs=1), **bad)
    assert TrainConfig(arch="session", joint={"epochs": 1}).joint.epochs == 1
