"""Metrics against values worked out by hand (see tests/eval_helpers.py: HAND_ROWS).

Fine level (labels wd/x, wd/y, rep/z, rep/w):
  wd/x  gold 3, predicted 3, TP 2 FP 1 FN 1 -> P 2/3, R 2/3, F1 2/3
  wd/y  gold 2, predicted 1, TP 0 FP 1 FN 2 -> P 0,   R 0,   F1 0
  rep/z gold 2, predicted 3, TP 2 FP 1 FN 0 -> P 2/3, R 1,   F1 0.8
  rep/w gold 0, predicted 1 (FP)           -> no support: recall/F1 undefined, not in macro
  micro: TP 4, FP 4, FN 3 -> P 1/2, R 4/7, F1 8/15
  macro over x, y, z: F1 (2/3 + 0 + 0.8)/3, P (2/3 + 0 + 2/3)/3 = 4/9, R (2/3 + 0 + 1)/3 = 5/9
Coarse level (wd = x|y, rep = z|w):
  wd  gold 4, predicted 4, TP 3 -> P = R = F1 = 3/4
  rep gold 2, predicted 4, TP 2 -> P 1/2, R 1, F1 2/3
  micro: TP 5 FP 3 FN 1 -> F1 10/14; macro (3/4 + 2/3)/2
Session counts (markers per session) and ICC(2,1), n = 3 sessions, k = 2 raters:
  wd  gold [3, 1, 1], pred [2, 1, 1]: MSR 3/2, MSC 1/6, MSE 1/6 -> (3/2 - 1/6)/(3/2 + 1/6) = 0.8
  rep gold [0, 1, 1], pred [1, 1, 2]: MSR 1/2, MSC 2/3, MSE 1/6 -> (1/3)/(1/2 + 1/6 + 2(1/2)/3) = 1/3
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval_helpers import hand_example, make_session, toy_schema
from rupture_nlp.metrics import (
    bootstrap_f1,
    bootstrap_weights,
    icc_2_1,
    label_scores,
    paired_difference,
    session_confusion,
)
from rupture_nlp.report.evaluation import format_report
from rupture_nlp.scoring import evaluate_predictions, result_to_json

approx = pytest.approx


@pytest.fixture(scope="module")
def hand():
    sessions, P, schema = hand_example()
    return sessions, P, schema, evaluate_predictions(sessions, P, schema, 0.5, n_boot=500, seed=7)


def test_fine_per_label_matches_hand_computation(hand):
    fine = hand[3]["fine"]["per_label"]
    assert fine["wd/x"] == {
        "precision": approx(2 / 3),
        "recall": approx(2 / 3),
        "f1": approx(2 / 3),
        "support": 3,
        "predicted": 3,
        "f1_ci": fine["wd/x"]["f1_ci"],
    }
    assert (fine["wd/y"]["precision"], fine["wd/y"]["recall"], fine["wd/y"]["f1"]) == (0, 0, 0)
    assert (fine["rep/z"]["precision"], fine["rep/z"]["recall"], fine["rep/z"]["f1"]) == (approx(2 / 3), 1, approx(0.8))
    assert fine["rep/w"]["support"] == 0 and fine["rep/w"]["predicted"] == 1
    assert fine["rep/w"]["recall"] is None and fine["rep/w"]["f1"] is None and fine["rep/w"]["f1_ci"] is None


def test_fine_micro_macro_match_hand_computation(hand):
    res = hand[3]["fine"]
    assert res["micro"]["precision"] == approx(0.5)
    assert res["micro"]["recall"] == approx(4 / 7)
    assert res["micro"]["f1"] == approx(8 / 15)
    assert res["macro"]["f1"] == approx((2 / 3 + 0 + 0.8) / 3)
    assert res["macro"]["precision"] == approx(4 / 9)
    assert res["macro"]["recall"] == approx(5 / 9)
    assert res["macro"]["n_labels"] == 3 and "3 of 4" in res["macro"]["over"]
    assert res["labels_without_support"] == ["rep/w"]


def test_coarse_matches_hand_computation(hand):
    res = hand[3]["coarse"]
    assert res["per_label"]["wd"]["f1"] == approx(0.75)
    assert (res["per_label"]["rep"]["precision"], res["per_label"]["rep"]["recall"]) == (approx(0.5), 1)
    assert res["per_label"]["rep"]["f1"] == approx(2 / 3)
    assert res["micro"]["f1"] == approx(10 / 14)
    assert res["macro"]["f1"] == approx((0.75 + 2 / 3) / 2)


def test_session_icc_matches_hand_computation(hand):
    icc = hand[3]["session_icc"]
    assert icc["wd"]["icc"] == approx(0.8)
    assert icc["rep"]["icc"] == approx(1 / 3)
    assert icc["wd"]["gold_mean"] == approx(5 / 3) and icc["wd"]["pred_mean"] == approx(4 / 3)
    assert icc["wd"]["n_sessions"] == 3 and icc["wd"]["reason"] is None
    lo, hi = icc["wd"]["ci95"]
    assert lo < 0.8 < hi


def _icc21_formula(table: np.ndarray) -> float:
    """Shrout & Fleiss ICC(2,1) from the ANOVA mean squares of an (n targets, k raters) table."""
    n, k = table.shape
    gm = table.mean()
    msr = k * ((table.mean(1) - gm) ** 2).sum() / (n - 1)
    msc = n * ((table.mean(0) - gm) ** 2).sum() / (k - 1)
    sse = ((table - table.mean(1, keepdims=True) - table.mean(0, keepdims=True) + gm) ** 2).sum()
    mse = sse / ((n - 1) * (k - 1))
    return (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)


def test_icc_agrees_with_formula_on_a_larger_table():
    gold = np.array([4, 0, 2, 7, 1, 3, 5, 0])
    pred = np.array([3, 1, 2, 5, 2, 3, 6, 1])
    assert icc_2_1(gold, pred)["icc"] == approx(_icc21_formula(np.stack([gold, pred], 1)))
    # a constant offset lowers absolute agreement but not below consistency's sign
    shifted = icc_2_1(gold, gold + 2)["icc"]
    assert 0 < shifted < 1


def test_icc_degenerate_cases_give_null_with_reason():
    few = icc_2_1([1, 2], [1, 3])
    assert few["icc"] is None and "too few sessions" in few["reason"]
    flat = icc_2_1([0, 0, 0, 0], [0, 0, 0, 0])
    assert flat["icc"] is None and "no variance" in flat["reason"]
    empty = icc_2_1([], [])
    assert empty["icc"] is None and empty["gold_mean"] is None
    assert icc_2_1([1, 2, 3, 5], [1, 2, 3, 5])["icc"] == approx(1.0)
    json.dumps([few, flat, empty], allow_nan=False)


def test_bootstrap_ci_contains_estimate_and_is_seeded(hand):
    sessions, P, schema, res = hand
    for level in ("fine", "coarse"):
        for avg in ("micro", "macro"):
            lo, hi = res[level][avg]["f1_ci"]
            assert lo <= res[level][avg]["f1"] <= hi
    again = evaluate_predictions(sessions, P, schema, 0.5, n_boot=500, seed=7)
    assert again["fine"] == res["fine"] and again["coarse"] == res["coarse"]
    # with 3 sessions there are few distinct resamples, so compare the draws themselves
    draws = [
        evaluate_predictions(sessions, P, schema, 0.5, n_boot=500, seed=sd, return_samples=True)["_samples"]["fine"][
            "micro_f1"
        ]
        for sd in (7, 7, 8)
    ]
    assert np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[0], draws[2])
    none = evaluate_predictions(sessions, P, schema, 0.5, n_boot=0)
    assert none["fine"]["macro"]["f1_ci"] is None and none["fine"]["macro"]["f1"] == res["fine"]["macro"]["f1"]


def test_bootstrap_resamples_whole_sessions():
    W = bootstrap_weights(5, 200, seed=1)
    assert W.shape == (200, 5) and (W.sum(axis=1) == 5).all() and W.min() >= 0
    assert np.array_equal(W, bootstrap_weights(5, 200, seed=1))
    # per-session confusion counts add up to the pooled ones scikit-learn uses
    sessions, P, schema = hand_example()
    from rupture_nlp.decision import decide, label_matrix

    Y, D = label_matrix(sessions, schema), decide(P, schema, 0.5)
    groups = np.repeat(np.arange(3), [3, 2, 3])
    tp, fp, fn = session_confusion(Y, D, groups, 3)
    assert (tp.sum(0) == [2, 0, 2, 0]).all() and (fp.sum(0) == [1, 1, 1, 1]).all() and (fn.sum(0) == [1, 2, 0, 0]).all()
    # a single-session table: every resample is that session, the CI collapses onto the estimate
    one = bootstrap_f1(Y[:3], D[:3], np.zeros(3, int), 1, n_boot=50, seed=0)
    assert (
        one["micro_f1"][0] == one["micro_f1"][1] == approx(label_scores(Y[:3], D[:3], schema.label_ids)["micro"]["f1"])
    )


def test_paired_difference_interval():
    a = np.array([0.6, 0.7, 0.65, np.nan, 0.8])
    b = np.array([0.5, 0.5, 0.55, 0.4, 0.6])
    lo, hi = paired_difference(a, b)
    assert lo == approx(0.1) and hi == approx(0.2)


def test_exclusive_category_keeps_one_label():
    schema = toy_schema(exclusive_wd=True)
    s = make_session("e1", [("C", "a", ["wd/x"]), ("C", "b", ["wd/y"]), ("T", "c", ["rep/z", "rep/w"])])
    #                 wd/x wd/y rep/z rep/w
    P = np.array(
        [
            [0.9, 0.8, 0.1, 0.1],  # both wd on -> only wd/x kept
            [0.6, 0.7, 0.1, 0.1],  # both wd on -> only wd/y kept
            [0.1, 0.1, 0.9, 0.9],
        ]
    )  # rep is not exclusive -> both kept
    res = evaluate_predictions([s], P, schema, 0.5, n_boot=0)
    per = res["fine"]["per_label"]
    assert per["wd/x"]["predicted"] == 1 and per["wd/y"]["predicted"] == 1
    assert per["rep/z"]["predicted"] == 1 and per["rep/w"]["predicted"] == 1
    assert res["fine"]["micro"]["f1"] == approx(1.0)
    free = evaluate_predictions([s], P, toy_schema(exclusive_wd=False), 0.5, n_boot=0)
    assert free["fine"]["per_label"]["wd/y"]["predicted"] == 2


def test_thresholds_as_dict_and_per_label():
    sessions, P, schema, _ = hand_example() + (None,)
    strict = evaluate_predictions(sessions, P, schema, {"wd/x": 0.95}, n_boot=0)
    assert strict["fine"]["per_label"]["wd/x"]["predicted"] == 0
    assert strict["fine"]["per_label"]["rep/z"]["predicted"] == 3
    assert strict["thresholds"]["wd/x"] == 0.95 and strict["thresholds"]["rep/z"] == 0.5


def test_shape_mismatch_and_json(hand):
    sessions, P, schema, res = hand
    with pytest.raises(ValueError):
        evaluate_predictions(sessions, P[:-1], schema, 0.5)
    text = result_to_json(res)
    assert json.loads(text)["fine"]["micro"]["f1"] == approx(8 / 15)
    md = format_report(res)
    assert "| predictions | 0.533 | 0.489 [" in md and "rep/w | 0 |" in md


def test_tune_thresholds_hand_computed():
    """Own thresholds, the shared macro-F1 threshold, and their average, worked out by hand."""
    import numpy as np

    from rupture_nlp.decision import tune_thresholds

    Y = np.array([[1, 0], [1, 0], [0, 1], [0, 0], [0, 0]])
    P = np.array([[0.8, 0.1], [0.7, 0.2], [0.3, 0.95], [0.2, 0.85], [0.1, 0.8]])
    grid = [0.25, 0.5, 0.75, 0.9]
    own = tune_thresholds(Y, P, grid=grid, shrink=0.0)
    # a: t=0.25 -> P>=.25 on rows 0,1,2: F1 = 2*2/(3+2) = 0.8; t=0.5 and 0.75: 1.0; t=0.9: 0
    # b: t=0.25..0.75 -> rows 2,3,4 on: F1 = 2/(3+1) = 0.5; t=0.9 -> row 2 only: 1.0
    assert own.tolist() == [0.5, 0.9]
    # macro over (a, b): 0.25 -> 0.65, 0.5 -> 0.75, 0.75 -> 0.75, 0.9 -> 0.5; tie 0.5/0.75 -> 0.5
    assert tune_thresholds(Y, P, grid=grid, shrink=1.0).tolist() == [0.5, 0.5]
    assert tune_thresholds(Y, P, grid=grid, shrink=0.5).tolist() == [0.5, 0.7]
    # a label without positives keeps the default as its own threshold
    Y0 = Y.copy()
    Y0[:, 1] = 0
    assert tune_thresholds(Y0, P, grid=grid, shrink=0.0).tolist() == [0.5, 0.5]
    with pytest.raises(ValueError):
        tune_thresholds(Y, P[:, :1])
