"""Calibration and the operating point, on hand-made and synthetic scores: temperature, ECE, thresholds, the
calibration a model stores, and what results.json keeps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import softmax

from distilora.config import CalibrationConfig
from distilora.evaluation.calibration import (
    Calibration,
    ThresholdPolicy,
    calibration_summary,
    choose_threshold,
    expected_calibration_error,
    fit_calibration,
    fit_temperature,
    operating_points,
    positive_class_rates,
    proportion_interval,
    reliability_bins,
)

LABELS = ["neutral", "toxic"]
# Hand-made: six items by falling score; the positives are the 1st, 2nd and 4th.
Y = [1, 1, 0, 1, 0, 0]
P = [0.9, 0.8, 0.7, 0.6, 0.3, 0.1]


def binary_logits(p_positive) -> np.ndarray:
    p = np.asarray(p_positive, dtype=np.float64)
    return np.stack([np.zeros_like(p), np.log(p / (1 - p))], axis=1)


# ---- temperature -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_temperature_scaling_recovers_a_known_temperature(true_temperature):
    """Labels drawn from softmax(z); the model reports z · T: the fit must find T."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, size=(20_000, 3))
    y = np.array([rng.choice(3, p=row) for row in softmax(z, axis=1)])
    assert fit_temperature(z * true_temperature, y) == pytest.approx(true_temperature, rel=0.05)
    assert fit_temperature(z, y) == pytest.approx(1.0, rel=0.05)


def test_temperature_stays_within_its_bounds_and_keeps_the_argmax():
    logits = np.array([[0.0, 3.0], [0.0, -3.0], [0.0, 2.0]])
    temperature = fit_temperature(logits, [1, 0, 1], bounds=(0.5, 4.0))  # separable: wants T → 0
    assert temperature == pytest.approx(0.5, abs=1e-3)
    calibration = Calibration(LABELS, temperature)
    assert (calibration.probabilities(logits).argmax(1) == logits.argmax(1)).all()


# ---- calibration error -----------------------------------------------------------------------------------------
def test_ece_matches_a_hand_computation():
    probs = np.array([[0.1, 0.9], [0.2, 0.8], [0.4, 0.6], [0.45, 0.55], [0.97, 0.03]])
    y = np.array([1, 0, 1, 0, 0])
    # Confidences 0.9, 0.8, 0.6, 0.55, 0.97 fall in 15 bins of width 1/15: (0.8667, 0.9333] holds 0.9 (right),
    # (0.7333, 0.8] holds 0.8 (wrong), (0.5333, 0.6] holds 0.6 (right) and 0.55 (wrong), (0.9333, 1] 0.97 (right).
    expected = (1 / 5) * abs(1 - 0.9) + (1 / 5) * abs(0 - 0.8) + (2 / 5) * abs(0.5 - 0.575) + (1 / 5) * abs(1 - 0.97)
    assert expected_calibration_error(probs, y, n_bins=15) == pytest.approx(expected)
    bins = reliability_bins(probs, y, n_bins=15)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 5
    shared = next(b for b in bins if b["count"] == 2)
    assert shared["lower"] == pytest.approx(8 / 15) and shared["confidence"] == pytest.approx(0.575)
    assert shared["accuracy"] == 0.5


def test_a_confidence_on_a_bin_edge_belongs_to_the_lower_bin():
    bins = reliability_bins(np.array([[0.4, 0.6]]), [1], n_bins=5)  # 0.6 is the upper edge of (0.4, 0.6]
    assert [b["count"] for b in bins] == [0, 0, 1, 0, 0]


# ---- thresholds ------------------------------------------------------------------------------------------------
def test_operating_points_count_every_distinct_decision():
    points = operating_points(Y, P)
    assert [p.predicted_positive for p in points] == [1, 2, 3, 4, 5, 6]
    assert [round(p.threshold, 3) for p in points] == [0.85, 0.75, 0.65, 0.45, 0.2, 0.05]
    assert [round(p.precision, 3) for p in points] == [1.0, 1.0, 0.667, 0.75, 0.6, 0.5]
    assert [round(p.recall, 3) for p in points] == [0.333, 0.667, 0.667, 1.0, 1.0, 1.0]
    # at 0.75: tp 2, fp 0, fn 1, tn 3 → F1 toxic 4/5, F1 neutral 6/7
    assert points[1].macro_f1 == pytest.approx((4 / 5 + 6 / 7) / 2)


def test_max_macro_f1_breaks_ties_towards_one_half():
    # 0.75 and 0.45 both give macro-F1 (4/5 + 6/7) / 2; 0.45 is nearer the argmax's 0.5.
    point = choose_threshold(Y, P)
    assert point.threshold == pytest.approx(0.45)
    assert point.macro_f1 == pytest.approx((6 / 7 + 4 / 5) / 2)


@pytest.mark.parametrize(("kind", "target", "threshold", "precision", "recall"), [
    ("target-precision", 0.75, 0.45, 0.75, 1.0),    # highest recall with precision ≥ 0.75
    ("target-precision", 0.9, 0.75, 1.0, 2 / 3),
    ("target-precision", 1.0, 0.75, 1.0, 2 / 3),
    ("target-recall", 0.9, 0.45, 0.75, 1.0),        # highest precision with recall ≥ 0.9
    ("target-recall", 0.5, 0.75, 1.0, 2 / 3),
    ("target-recall", 0.3, 0.75, 1.0, 2 / 3),       # precision 1 twice: the higher recall
])
def test_target_policies_pick_the_documented_point(kind, target, threshold, precision, recall):
    point = choose_threshold(Y, P, ThresholdPolicy(kind, target))
    assert (point.threshold, point.precision, point.recall) == pytest.approx((threshold, precision, recall))


def test_an_unreachable_precision_names_the_best_reachable_one():
    with pytest.raises(ValueError, match=r"--target-precision 0.8 is not reachable on validation: the best "
                                         r"precision there is 0.667"):
        choose_threshold([0, 1, 1, 0], [0.9, 0.8, 0.7, 0.2], ThresholdPolicy("target-precision", 0.8))


def test_targets_need_positive_items():
    with pytest.raises(ValueError, match="no positive items"):
        choose_threshold([0, 0, 0], [0.9, 0.5, 0.1], ThresholdPolicy("target-recall", 0.5))


@pytest.mark.parametrize("settings", [dict(target_precision=0.9, target_recall=0.9), dict(target_precision=0.0),
                                      dict(target_recall=1.5), dict(ece_bins=0)])
def test_calibration_settings_are_checked(settings):
    with pytest.raises(ValueError):
        CalibrationConfig(**settings)


# ---- the stored calibration ------------------------------------------------------------------------------------
def test_fit_calibration_on_a_binary_task_sets_temperature_and_threshold():
    calibration = fit_calibration(binary_logits(P), Y, LABELS)
    assert calibration.positive_label == "toxic" and calibration.policy == "max-macro-f1"
    assert calibration.threshold is not None and 0 < calibration.threshold < 1
    scaled = calibration.probabilities(binary_logits(P))
    assert calibration.decide(scaled).tolist() == (scaled[:, 1] >= calibration.threshold).astype(int).tolist()
    assert calibration.validation["macro_f1"] == pytest.approx((6 / 7 + 4 / 5) / 2)


def test_an_unreachable_target_leaves_the_argmax_and_says_why():
    logits = binary_logits([0.9, 0.8, 0.7, 0.2])
    calibration = fit_calibration(logits, [0, 1, 1, 0], LABELS, CalibrationConfig(target_precision=0.8))
    assert calibration.threshold is None and calibration.policy == "argmax"
    assert "not reachable" in calibration.note and "0.667" in calibration.note
    assert calibration.decide(calibration.probabilities(logits)).tolist() == logits.argmax(1).tolist()


def test_multi_class_and_constant_scores_get_no_threshold():
    three = fit_calibration(np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 3, ["a", "b", "c"])
    assert three.threshold is None and "temperature scaling only" in three.note
    constant = fit_calibration(np.tile([0.2, -0.1], (10, 1)), [0, 1] * 5, LABELS)
    assert constant.threshold is None and "same score" in constant.note


def test_calibration_round_trips_and_refuses_bad_files():
    calibration = fit_calibration(binary_logits(P), Y, LABELS)
    again = Calibration.from_json(calibration.to_json(), LABELS)
    assert again == calibration
    assert json.loads(calibration.to_json())["positive_label"] == "toxic"
    with pytest.raises(ValueError, match="fitted for labels"):
        Calibration.from_json(calibration.to_json(), ["a", "b"])
    broken = json.loads(calibration.to_json())
    broken["temperature"] = -1
    with pytest.raises(ValueError, match="malformed"):
        Calibration.from_json(json.dumps(broken))
    with pytest.raises(ValueError, match="malformed"):
        Calibration.from_json("[1, 2]")


# ---- what results.json keeps -----------------------------------------------------------------------------------
def test_summary_flags_a_prior_shift_only_when_the_intervals_do_not_overlap():
    rng = np.random.default_rng(1)
    n = 1000
    y = {"validation": rng.integers(0, 2, n), "test": rng.integers(0, 2, n)}
    z = {split: (2 * truth - 1) * 1.5 + rng.normal(0, 1.5, n) for split, truth in y.items()}
    same = {split: np.stack([np.zeros(n), v], axis=1) for split, v in z.items()}
    calibration = fit_calibration(same["validation"], y["validation"], LABELS)
    summary, at_threshold = calibration_summary(calibration, same, y)
    assert summary["prior_shift"] is False
    assert set(summary["ece"]) == {"validation", "test"} and calibration.ece == summary["ece"]
    assert summary["ece"]["validation"]["after"] <= summary["ece"]["validation"]["before"] + 1e-9

    shifted = {**same, "test": same["test"] + np.array([0.0, 3.0])}  # test texts look much more toxic
    summary, at_threshold = calibration_summary(calibration, shifted, y)
    rates = summary["predicted_positive_rate"]
    assert summary["prior_shift"] is True and rates["test"]["low"] > rates["validation"]["high"]
    decided = calibration.decide(calibration.probabilities(shifted["test"]))
    assert rates["test"]["count"] == int(decided.sum())
    matrix = np.asarray(at_threshold["test"]["confusion_matrix"])
    assert matrix[:, 1].sum() == decided.sum() and matrix.sum() == n
    assert summary["positive_share"]["test"]["count"] == int(y["test"].sum())
    assert positive_class_rates(matrix)["recall"] == pytest.approx(matrix[1, 1] / matrix[1].sum())


def test_wilson_interval_of_a_share():
    interval = proportion_interval(1501, 1718)
    assert interval["estimate"] == pytest.approx(1501 / 1718)
    assert interval["low"] < 1501 / 1718 < interval["high"] and interval["high"] - interval["low"] < 0.04
    assert proportion_interval(0, 0) is None


# ---- edge cases ----------------------------------------------------------------------------------------------------
def adjacent_pairs(count: int = 200) -> list[float]:
    """Scores in (0, 1) whose lower neighbour is the next float down: the half-way point rounds onto one of them."""
    return list(np.random.default_rng(0).uniform(0.05, 0.95, count))


def test_thresholds_between_adjacent_scores_call_exactly_the_counted_items_positive():
    """Before: with adjacent float scores the half-way threshold rounded onto the lower score, so applying it called
    one more item positive than the operating point counted (precision 1.0 stored, 0.5 served)."""
    for high in adjacent_pairs():
        scores = np.array([high, np.nextafter(high, 0.0), 0.01])
        y = [1, 0, 0]
        probs = np.stack([1 - scores, scores], axis=1)
        for point in operating_points(y, scores):
            calibration = Calibration(LABELS, threshold=point.threshold, positive_index=1)
            assert int(calibration.decide(probs).sum()) == point.predicted_positive, (high, point)
        chosen = choose_threshold(y, scores, ThresholdPolicy("target-precision", 1.0))
        decided = Calibration(LABELS, threshold=chosen.threshold, positive_index=1).decide(probs)
        assert decided.tolist() == [1, 0, 0] and chosen.precision == 1.0


def test_a_fitted_threshold_reproduces_its_validation_operating_point_exactly():
    rng = np.random.default_rng(1)
    base = rng.uniform(-3, 3, 400)
    logits = np.stack([np.zeros(800), np.r_[base, np.nextafter(base, -np.inf)]], axis=1)
    y = (logits[:, 1] + rng.normal(0, 1.5, 800) > 0).astype(int)
    policies = (CalibrationConfig(), CalibrationConfig(target_precision=0.9), CalibrationConfig(target_recall=0.9))
    for settings in policies:
        calibration = fit_calibration(logits, y, LABELS, settings)
        decided = calibration.decide(calibration.probabilities(logits))
        tp, called = int(((decided == 1) & (y == 1)).sum()), int(decided.sum())
        assert (tp / called, tp / int(y.sum())) == (calibration.validation["precision"],
                                                    calibration.validation["recall"]), settings


@pytest.mark.parametrize("only", [0, 1])
def test_a_validation_split_with_one_class_keeps_the_argmax_and_says_why(only):
    """Before: an all-positive split got a threshold under every score (everything positive), an all-negative one a
    threshold calling ~2 % positive, and a precision target was "met" by calling everything positive."""
    logits = binary_logits(P)
    for settings in (CalibrationConfig(), CalibrationConfig(target_precision=0.9)):
        calibration = fit_calibration(logits, [only] * len(P), LABELS, settings)
        assert calibration.threshold is None and calibration.policy == "argmax" and calibration.temperature == 1.0
        assert f"holds only '{LABELS[only]}' (6 items)" in calibration.note
        assert calibration.decide(calibration.probabilities(logits)).tolist() == logits.argmax(1).tolist()
