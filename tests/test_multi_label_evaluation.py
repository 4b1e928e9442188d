"""Evaluating a multi-label model (gold labels: 0/1 rows, one column per label) on hand-made and synthetic arrays:
metrics, per-label calibration, the collapse check, bootstrap intervals, the report's paired tests and baseline,
and robustness. Every number is checked against scikit-learn (or torch, for the loss), not against a copy of the
code under test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.special import expit
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    hamming_loss,
    label_ranking_average_precision_score,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from distilora.cli import build_parser
from distilora.cli.run import config_from_args
from distilora.config import CalibrationConfig, ExperimentConfig
from distilora.evaluation import statistics as st
from distilora.evaluation.calibration import (
    Calibration,
    ThresholdPolicy,
    calibration_summary,
    choose_threshold,
    expected_calibration_error,
    fit_calibration,
)
from distilora.evaluation.collapse import collapse_check
from distilora.evaluation.metrics import classification_metrics
from distilora.evaluation.robustness import robustness_summary
from distilora.experiment.robustness import RobustnessProbe
from distilora.inference import load_classifier
from distilora.report.analysis import run_statistics
from distilora.report.context import SplitPredictions, majority_baseline
from distilora.results import (
    CalibrationSummary,
    Comparison,
    Interval,
    McNemar,
    ModelResult,
    RunResults,
    SplitMetrics,
    SplitReport,
)
from distilora.run_dir import RunLayout, read_predictions

LABELS = ["insult", "threat", "obscene"]


def synthetic(n: int = 400, seed: int = 0, scales=(1.0, 1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Gold rows drawn from sigmoid(z) per label; the model reports z · scale (its temperature is the scale)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, size=(n, len(scales))) + np.array([0.0, -1.5, 0.5])[: len(scales)]
    y = (rng.random(z.shape) < expit(z)).astype(np.int64)
    return y, z * np.asarray(scales)


# ---- metrics ---------------------------------------------------------------------------------------------------
def test_multi_label_metrics_agree_with_scikit_learn_and_torch():
    y, logits = synthetic(300, seed=1)
    m = classification_metrics(y, logits, LABELS)
    y_pred = (expit(logits) >= 0.5).astype(int)
    precision, recall, f1, support = precision_recall_fscore_support(y, y_pred, average=None, zero_division=0)
    assert m["n"] == 300
    assert m["accuracy"] == pytest.approx(accuracy_score(y, y_pred))  # subset accuracy
    assert m["macro_f1"] == pytest.approx(f1_score(y, y_pred, average="macro", zero_division=0))
    assert m["micro_f1"] == pytest.approx(f1_score(y, y_pred, average="micro", zero_division=0))
    assert m["precision"] == pytest.approx(precision.mean()) and m["recall"] == pytest.approx(recall.mean())
    assert m["f1_per_class"] == pytest.approx(f1.tolist())
    assert m["hamming_loss"] == pytest.approx(hamming_loss(y, y_pred))
    assert m["label_ranking_ap"] == pytest.approx(label_ranking_average_precision_score(y, expit(logits)))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(logits), torch.tensor(y, dtype=float))
    assert m["loss"] == pytest.approx(float(bce), rel=1e-9)
    aucs = [roc_auc_score(y[:, j], logits[:, j]) for j in range(3)]
    assert m["roc_auc"] == pytest.approx(np.mean(aucs))
    assert m["confusion_matrix"] == [matrix.ravel().tolist() for matrix in multilabel_confusion_matrix(y, y_pred)]
    assert [row["label"] for row in m["per_label"]] == LABELS
    for j, row in enumerate(m["per_label"]):
        assert (row["precision"], row["recall"], row["f1"], row["roc_auc"]) == pytest.approx(
            (precision[j], recall[j], f1[j], aucs[j]))
        assert row["support"] == support[j] == y[:, j].sum() and row["predicted"] == y_pred[:, j].sum()
    scores = SplitMetrics.from_json(m)
    assert scores.per_label[1].label == "threat" and scores.micro_f1 == m["micro_f1"]


def test_a_label_with_one_gold_value_has_no_roc_auc_and_the_macro_mean_skips_it():
    y = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 1], [0, 0, 0]])
    logits = np.array([[2.0, -1.0, -1.0], [-1.0, 0.5, 1.0], [0.5, -2.0, -0.5], [-0.3, -1.0, 0.2]])
    m = classification_metrics(y, logits, LABELS)
    assert m["per_label"][1]["roc_auc"] is None  # "threat" is never on
    defined = [roc_auc_score(y[:, 0], logits[:, 0]), roc_auc_score(y[:, 2], logits[:, 2])]
    assert m["roc_auc"] == pytest.approx(np.mean(defined))
    # threat: never true, predicted once (0.5 > 0) → precision 0, F1 0, as scikit-learn with zero_division=0
    assert m["per_label"][1]["predicted"] == 1 and m["per_label"][1]["f1"] == 0.0


def test_given_decisions_replace_the_half_threshold_and_float_rows_read_as_gold():
    y, logits = synthetic(120, seed=2)
    decided = (expit(logits) >= 0.8).astype(int)
    m = classification_metrics(y.astype(np.float32), logits, LABELS, y_pred=decided)  # the trainer's label_ids
    assert m["macro_f1"] == pytest.approx(f1_score(y, decided, average="macro", zero_division=0))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, decided))
    assert m["macro_f1"] != pytest.approx(classification_metrics(y, logits, LABELS)["macro_f1"])


def test_gold_rows_that_do_not_match_the_labels_are_refused():
    with pytest.raises(ValueError, match="3 labels"):
        classification_metrics(np.zeros((4, 2), dtype=int), np.zeros((4, 2)), LABELS)


# ---- calibration -----------------------------------------------------------------------------------------------
def test_each_label_gets_its_own_temperature():
    y, logits = synthetic(20_000, seed=3, scales=(2.0, 0.5, 1.0))
    calibration = fit_calibration(logits, y, LABELS)
    assert calibration.temperatures == pytest.approx([2.0, 0.5, 1.0], rel=0.06)
    assert calibration.temperature == pytest.approx(float(np.prod(calibration.temperatures)) ** (1 / 3))
    probs = calibration.probabilities(logits)
    assert probs == pytest.approx(expit(logits / np.asarray(calibration.temperatures)))


def test_each_label_threshold_is_the_one_its_policy_picks_on_its_own_column():
    y, logits = synthetic(500, seed=4)
    for settings, policy in ((CalibrationConfig(), ThresholdPolicy()),
                             (CalibrationConfig(target_recall=0.9), ThresholdPolicy("target-recall", 0.9))):
        calibration = fit_calibration(logits, y, LABELS, settings)
        for j, (temperature, threshold) in enumerate(zip(calibration.temperatures, calibration.thresholds,
                                                         strict=True)):
            expected = choose_threshold(y[:, j], expit(logits[:, j] / temperature), policy)
            assert threshold == expected.threshold
            assert calibration.label_validation[j]["recall"] == expected.recall
        decided = calibration.decide(calibration.probabilities(logits))
        assert decided.shape == y.shape
        precision, recall, f1, _ = precision_recall_fscore_support(y, decided, average="macro", zero_division=0)
        assert calibration.validation == pytest.approx({"precision": precision, "recall": recall, "macro_f1": f1})


def test_a_label_that_cannot_reach_the_target_keeps_one_half_and_the_note_names_it():
    y = np.array([[1, 1], [1, 0], [0, 1], [0, 0], [1, 0], [0, 0]])
    # insult is separable (precision 1 reachable); threat's best precision is 1/2
    logits = np.array([[3.0, 1.0], [2.0, 1.0], [-2.0, 1.0], [-3.0, 1.0], [2.5, -1.0], [-1.0, -2.0]])
    calibration = fit_calibration(logits, y, ["insult", "threat"], CalibrationConfig(target_precision=0.9))
    assert calibration.thresholds[1] == 0.5 and calibration.thresholds[0] != 0.5
    assert calibration.note.startswith("threat keeps threshold 0.5: --target-precision 0.9 is not reachable")
    assert "insult" not in calibration.note
    assert calibration.label_validation[1] is None and calibration.label_validation[0]["precision"] == 1.0
    assert calibration.policy == "target-precision" and calibration.target == 0.9


@pytest.mark.parametrize("value", [0, 1])
def test_a_label_with_a_single_gold_value_keeps_temperature_one_and_one_half(value):
    y, logits = synthetic(200, seed=5)
    y[:, 1] = value
    calibration = fit_calibration(logits, y, LABELS)
    assert calibration.temperatures[1] == 1.0 and calibration.thresholds[1] == 0.5
    held = "positives" if value else "negatives"
    assert calibration.note == f"threat: validation holds only {held}, so it keeps temperature 1 and threshold 0.5"
    assert calibration.temperatures[0] != 1.0


def test_a_label_with_the_same_score_for_every_item_keeps_one_half_and_the_note_says_so():
    y, logits = synthetic(200, seed=16)
    logits[:, 2] = -0.7  # a prior-only label
    calibration = fit_calibration(logits, y, LABELS, CalibrationConfig(target_recall=0.9))
    assert calibration.thresholds[2] == 0.5 and calibration.label_validation[2] is None
    assert calibration.note == "obscene: the same score for every validation item, so it keeps threshold 0.5"
    assert calibration.decision()["targets"] == {"insult": 0.9, "threat": 0.9, "obscene": 0.9}


def test_label_calibration_round_trips_and_a_single_label_file_keeps_its_keys():
    y, logits = synthetic(300, seed=6)
    calibration = fit_calibration(logits, y, LABELS, CalibrationConfig(target_recall=0.8))
    again = Calibration.from_json(calibration.to_json(), LABELS)
    assert again == calibration and again.multi_label
    assert (again.decide(again.probabilities(logits)) == calibration.decide(calibration.probabilities(logits))).all()
    single = json.loads(Calibration(["neutral", "toxic"], 1.2, 0.4, positive_index=1).to_json())
    assert not {"temperatures", "thresholds", "targets", "label_validation"} & set(single)
    old = {"format": 1, "labels": ["neutral", "toxic"], "temperature": 1.3, "threshold": None, "policy": "argmax"}
    assert not Calibration.from_json(json.dumps(old)).multi_label
    with pytest.raises(ValueError, match="one number per label"):
        Calibration.from_json(json.dumps({**json.loads(calibration.to_json()), "thresholds": [0.5]}))


def test_label_calibration_decides_and_describes_each_label():
    calibration = Calibration(LABELS, 1.0, policy="max-macro-f1", temperatures=[1.0, 2.0, 0.5],
                              thresholds=[0.5, 0.3, 0.9])
    probs = calibration.probabilities(np.array([[0.0, -2.0, 2.0], [1.0, 0.0, 3.0]]))
    assert probs == pytest.approx(expit(np.array([[0.0, -1.0, 4.0], [1.0, 0.0, 6.0]])))
    assert calibration.decide(probs).tolist() == [[1, 0, 1], [1, 1, 1]]
    decision = calibration.decision()
    assert decision["rule"] == "threshold" and decision["threshold"] is None
    assert decision["thresholds"] == {"insult": 0.5, "threat": 0.3, "obscene": 0.9}
    assert calibration.describe() == ("P(insult) ≥ 0.500, P(threat) ≥ 0.300, P(obscene) ≥ 0.900 (the highest "
                                      "validation macro-F1, per label); temperatures 1, 2, 0.5")


def test_label_summary_counts_every_item_label_pair_as_a_binary_event():
    y_val, val = synthetic(400, seed=7, scales=(3.0, 3.0, 3.0))
    y_test, test = synthetic(300, seed=8, scales=(3.0, 3.0, 3.0))
    calibration = fit_calibration(val, y_val, LABELS)
    summary, at_threshold = calibration_summary(calibration, {"validation": val, "test": test},
                                                {"validation": y_val, "test": y_test})
    p = expit(test / np.asarray(calibration.temperatures)).ravel()
    events = np.stack([1 - p, p], axis=1)
    assert summary["ece"]["test"]["after"] == pytest.approx(expected_calibration_error(events, y_test.ravel()))
    assert summary["ece"]["test"]["after"] < summary["ece"]["test"]["before"]  # overconfident by 3×
    assert sum(b["count"] for b in summary["reliability"]["test"]["after"]) == y_test.size
    assert summary["temperatures"] == calibration.temperatures and summary["thresholds"] == calibration.thresholds
    decided = calibration.decide(calibration.probabilities(test))
    assert at_threshold["test"]["macro_f1"] == pytest.approx(f1_score(y_test, decided, average="macro"))
    assert at_threshold["test"]["accuracy"] == pytest.approx(accuracy_score(y_test, decided))
    record = CalibrationSummary.from_json(json.loads(json.dumps(summary)))
    assert record.thresholds == calibration.thresholds and record.validation_at_threshold.macro_f1 is not None


def test_a_per_label_target_applies_to_the_labels_it_names_and_max_macro_f1_to_the_others():
    y, logits = synthetic(500, seed=15)
    settings = config_from_args(build_parser().parse_args(["run", "--target-precision", "insult=0.9, obscene=0.8"]))
    assert settings.calibration.target_precision == {"insult": 0.9, "obscene": 0.8}
    settings.calibration.check_labels(LABELS, multi_label=True)
    calibration = fit_calibration(logits, y, LABELS, settings.calibration)
    probs = calibration.probabilities(logits)
    policies = [ThresholdPolicy("target-precision", 0.9), ThresholdPolicy(), ThresholdPolicy("target-precision", 0.8)]
    for j, policy in enumerate(policies):
        assert calibration.thresholds[j] == choose_threshold(y[:, j], probs[:, j], policy).threshold
    assert calibration.targets == [0.9, None, 0.8] and calibration.target is None
    assert "insult: the highest validation recall with precision ≥ 0.9; threat: the highest validation macro-F1" \
        in calibration.describe()
    again = ExperimentConfig.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again.calibration.target_precision == {"insult": 0.9, "obscene": 0.8}
    assert config_from_args(build_parser().parse_args(["run", "--target-recall", "0.7"])).calibration.target_recall \
        == 0.7  # a plain number still works


@pytest.mark.parametrize("labels, multi_label, message", [
    (LABELS, True, "--target-precision names 'abusive', not a label of the data (insult, threat, obscene): fix "
                   "--target-precision"),
    (["neutral", "toxic"], False, "--target-precision gives one target per label (insult, abusive), but the task is "
                                  "not multi-label: give --target-precision one number"),
])
def test_a_per_label_target_naming_an_unknown_label_or_a_single_label_task_is_refused(labels, multi_label, message):
    settings = CalibrationConfig(target_precision={"insult": 0.9, "abusive": 0.8})
    with pytest.raises(ValueError) as error:
        settings.check_labels(labels, multi_label=multi_label)
    assert str(error.value) == message


@pytest.mark.parametrize("text, phrase", [("insult=1.5", "insult: must be in (0, 1], got 1.5"),
                                          ("insult=0.8,insult=0.9", "each label once"), ("=0.8", "LABEL=P pairs")])
def test_a_malformed_per_label_target_is_one_error_naming_the_flag(text, phrase, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--target-precision", text])
    err = capsys.readouterr().err
    assert "--target-precision" in err and phrase in err


def test_a_global_target_still_fits_a_multi_label_task():
    CalibrationConfig(target_recall=0.8).check_labels(LABELS, multi_label=True)
    with pytest.raises(ValueError, match="binary task"):
        CalibrationConfig(target_recall=0.8).check_labels(LABELS)


# ---- collapse --------------------------------------------------------------------------------------------------
def test_a_label_always_off_or_always_on_is_flagged_by_name():
    y_train = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1]])
    y_true = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    healthy = collapse_check(y_true, y_true, y_train, LABELS, share_limit=0.95)
    assert healthy == {"collapsed": False, "reasons": [], "top_class_share": 0.5, "majority_macro_f1": 0.0}
    stuck = y_true.copy()
    stuck[:, 1], stuck[:, 2] = 0, 1
    check = collapse_check(y_true, stuck, y_train, LABELS, share_limit=0.95)
    assert check["collapsed"] and check["reasons"] == ["turns 'threat' off for every validation item",
                                                       "turns 'obscene' on for every validation item"]
    assert check["top_class_share"] == 1.0


def test_macro_f1_not_above_the_per_label_majority_is_flagged():
    y_train = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 1], [0, 0, 1]])  # majority: insult and obscene on
    y_true = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1]])
    majority = np.tile([1, 0, 1], (5, 1))
    expected = f1_score(y_true, majority, average="macro", zero_division=0)
    worse = np.array([[0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0]])
    check = collapse_check(y_true, worse, y_train, LABELS, share_limit=0.95)
    assert check["majority_macro_f1"] == pytest.approx(round(expected, 4))
    assert check["reasons"] == [f"validation macro-F1 {f1_score(y_true, worse, average='macro'):.4f} is not above "
                                f"the per-label majority baseline's {expected:.4f}"]


# ---- intervals and paired tests --------------------------------------------------------------------------------
def noisy_rows(y: np.ndarray, flip: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(y.shape) < flip, 1 - y, y)


def test_multi_label_bootstrap_replicates_are_scikit_learn_on_the_resampled_items():
    y, _ = synthetic(150, seed=9)
    pred = noisy_rows(y, 0.2, seed=10)
    replicates = st.bootstrap_replicates(y, {"m": pred}, 3, n_resamples=5, seed=0)["m"]
    weights = next(st._resample_counts(len(y), 5, 0))
    for r in range(5):
        assert replicates["macro_f1"][r] == pytest.approx(
            f1_score(y, pred, average="macro", sample_weight=weights[r], zero_division=0))
        assert replicates["accuracy"][r] == pytest.approx(accuracy_score(y, pred, sample_weight=weights[r]))
    intervals = st.metric_intervals(y, pred, 3, n_resamples=300)
    assert intervals["macro_f1"]["estimate"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert intervals["accuracy"]["estimate"] == pytest.approx(accuracy_score(y, pred))
    assert intervals["macro_f1"]["low"] < intervals["macro_f1"]["estimate"] < intervals["macro_f1"]["high"]


def test_paired_comparisons_test_every_label_with_holm_across_all_label_tests():
    y, _ = synthetic(300, seed=11)
    decisions = {"teacher": noisy_rows(y, 0.05, 12), "odd": noisy_rows(y, 0.2, 13), "lora": noisy_rows(y, 0.3, 14)}
    predictions = {name: {"test": SplitPredictions(y, np.where(d == 1, 0.8, 0.2))} for name, d in decisions.items()}
    models = {"teacher": ModelResult(route="fine-tune"), "odd": ModelResult(route="distil"),
              "lora": ModelResult(route="lora")}
    stats = run_statistics(models, predictions, 3, n_resamples=200, labels=LABELS)
    assert stats.intervals["odd"].macro_f1.estimate == pytest.approx(f1_score(y, decisions["odd"], average="macro"))
    assert stats.intervals["odd"].accuracy.estimate == pytest.approx(accuracy_score(y, decisions["odd"]))
    all_tests = []
    for comparison in stats.comparisons:
        a_right, b_right = decisions[comparison.a] == y, decisions[comparison.b] == y
        assert [t.label for t in comparison.per_label] == LABELS
        for j, test in enumerate(comparison.per_label):
            assert test.a_only_correct == int(np.sum(a_right[:, j] & ~b_right[:, j]))
            assert test.b_only_correct == int(np.sum(~a_right[:, j] & b_right[:, j]))
        every_a, every_b = a_right.all(axis=1), b_right.all(axis=1)
        assert comparison.mcnemar.a_only_correct == int(np.sum(every_a & ~every_b))
        all_tests += comparison.per_label
    assert len(all_tests) == 3 * len(stats.comparisons)
    assert [t.p_holm for t in all_tests] == pytest.approx(st.holm([t.p_value for t in all_tests]))
    assert "per-label" in stats.method.multiple_comparisons
    json.dumps(stats.to_json())


def test_a_flipped_comparison_flips_its_label_tests_and_a_single_label_one_has_none():
    comparison = Comparison(a="x", b="y", kind="k", macro_f1_difference=Interval(0.1, 0.0, 0.2),
                            accuracy_difference=Interval(0.1, 0.0, 0.2), difference_significant=False,
                            mcnemar=McNemar(5, 2, 0.4), per_label=[McNemar(3, 1, 0.6, label="insult")])
    flipped = comparison.flipped()
    assert (flipped.per_label[0].a_only_correct, flipped.per_label[0].b_only_correct) == (1, 3)
    assert flipped.per_label[0].label == "insult" and flipped.mcnemar.a_only_correct == 2
    single = Comparison(a="x", b="y", kind="k", macro_f1_difference=Interval(0.1, 0.0, 0.2),
                        accuracy_difference=Interval(0.1, 0.0, 0.2), difference_significant=False,
                        mcnemar=McNemar(5, 2, 0.4))
    assert "per_label" not in single.to_json() and "label" not in single.to_json()["mcnemar"]
    assert single.flipped().per_label is None


def test_split_predictions_of_a_multi_label_model_decide_at_one_half():
    y = np.array([[1, 0, 1], [0, 1, 0]])
    predictions = SplitPredictions(y, np.array([[0.9, 0.2, 0.5], [0.1, 0.4, 0.3]]))
    assert predictions.y_pred.tolist() == [[1, 0, 1], [0, 0, 0]]
    assert predictions.correct.tolist() == [True, False]


def test_the_majority_baseline_of_a_multi_label_run_is_each_labels_train_prior():
    report = {"train": SplitReport(rows=10, label_counts=[6, 2, 0])}
    y_test = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 0]])
    baseline = majority_baseline(LABELS, report, {"test": y_test})
    assert (baseline.label, baseline.class_id, baseline.counts) == ("insult", -1, [6, 2, 0])
    predictions = baseline.predictions["test"]
    assert predictions.probs[0] == pytest.approx([0.6, 0.2, 1e-12])
    assert predictions.y_pred.tolist() == [[1, 0, 0]] * 4
    metrics = baseline.metrics["test"]
    assert metrics.macro_f1 == pytest.approx(f1_score(y_test, predictions.y_pred, average="macro", zero_division=0))
    assert metrics.accuracy == pytest.approx(0.25)
    y_validation = y_test[1:]  # insult on in 1 of 3 rows
    fallback = majority_baseline(LABELS, {}, {"validation": y_validation, "test": y_test})
    assert fallback.label == "no label" and fallback.counts == [1, 1, 1]
    assert fallback.source.startswith("validation labels")


# ---- robustness ------------------------------------------------------------------------------------------------
def test_an_item_is_consistent_only_when_none_of_its_labels_changed():
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    clean = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0]])
    typos = clean.copy()
    typos[0, 2] = 0  # one label of one item changes
    summary = robustness_summary(y, clean, {"typos": typos}, {"typos": 4}, 3)
    assert summary["kinds"]["typos"]["consistency"]["count"] == 3
    assert summary["consistency"]["estimate"] == pytest.approx(0.75)
    assert summary["kinds"]["typos"]["accuracy"] == pytest.approx(accuracy_score(y, typos))
    assert summary["kinds"]["typos"]["macro_f1"] == pytest.approx(f1_score(y, typos, average="macro", zero_division=0))
    assert summary["clean_accuracy"] == pytest.approx(accuracy_score(y, clean))


class KeywordLabels:
    """A stand-in multi-label classifier: a label is on (logit +3) when its keyword is in the text."""

    keywords = ("idiot", "kill", "damn")

    def logits(self, texts, long_text=None) -> np.ndarray:
        return np.array([[3.0 if word in text.lower() else -3.0 for word in self.keywords] for text in texts])


def test_the_probe_decides_multi_label_copies_per_label_and_counts_whole_items():
    texts = ["you idiot", "I will kill the damn bug", "lovely weather today", "damn idiot", "kill it"] * 4
    y = KeywordLabels().logits(texts) > 0
    probe = RobustnessProbe(texts, y.astype(int).tolist(), 3)
    calibration = Calibration(LABELS, temperatures=[1.0] * 3, thresholds=[0.5] * 3)
    clean_logits = KeywordLabels().logits(texts)
    summary = probe.measure(KeywordLabels(), calibration, clean_logits)
    clean = (clean_logits > 0).astype(int)
    unchanged = np.ones(len(texts), dtype=bool)
    for kind, (indices, copies) in probe.changed.items():
        decided = clean.copy()
        if len(indices):
            decided[indices] = (KeywordLabels().logits(copies) > 0).astype(int)
        same = (decided == clean).all(axis=1)
        unchanged &= same
        assert summary["kinds"][kind]["consistency"]["count"] == int(same.sum())
        assert summary["kinds"][kind]["macro_f1"] == pytest.approx(f1_score(y, decided, average="macro",
                                                                            zero_division=0))
    assert summary["consistency"]["count"] == int(unchanged.sum()) < len(texts)  # some keyword got misspelt
    assert summary["clean_accuracy"] == 1.0


# ---- a whole multi-label run -----------------------------------------------------------------------------------
def test_a_multi_label_run_keeps_per_label_calibration_statistics_and_robustness(multi_label_run):
    results = RunResults.from_json(json.loads((multi_label_run / "results.json").read_text()))
    labels = results.labels
    for name in ("teacher", "odd", "lora", "tfidf"):
        model = results.models[name]
        stored = Calibration.from_json((multi_label_run / name / "calibration.json").read_text(), labels)
        assert stored.thresholds == model.calibration.thresholds
        assert stored.temperatures == model.calibration.temperatures
        assert model.metrics_at_threshold["test"].per_label[0].label == labels[0]
        assert model.robustness.consistency.n == model.metrics["test"].n and model.collapse is not None
        predictions = read_predictions(RunLayout(multi_label_run), name)["test"]
        y, probs = np.asarray(predictions["y_true"]), np.asarray(predictions["probs"])
        assert model.intervals["test"].macro_f1.estimate == pytest.approx(
            f1_score(y, (probs >= 0.5).astype(int), average="macro", zero_division=0), abs=1e-6)
    classifier = load_classifier(multi_label_run / "odd")
    assert classifier.label_thresholds() == results.models["odd"].calibration.thresholds
    comparisons = results.statistics.comparisons
    assert comparisons and all([t.label for t in c.per_label] == labels for c in comparisons)
