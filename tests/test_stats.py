"""Known-answer tests of the report's statistics: McNemar, bootstrap CIs, Holm, seed summaries, the baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score

from distilora.evaluation import statistics as st
from distilora.report.analysis import comparison_pairs, run_statistics
from distilora.report.context import SplitPredictions, majority_baseline
from distilora.results import ModelResult, SeedRun, SplitMetrics, SplitReport


def paired_correctness(a_only: int, b_only: int, both: int = 0, neither: int = 0) -> tuple[list[bool], list[bool]]:
    """Correctness vectors of two models with the given contingency table."""
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    return a, b


# ---- McNemar's exact test ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a_only", "b_only", "expected"), [
    (0, 5, 2 * 0.5**5),  # the most extreme table of 5 discordant pairs: 2 · (1/32)
    (1, 4, 2 * (1 + 5) / 32),  # P(X ≤ 1) = (C(5,0) + C(5,1)) / 2^5, doubled
    (2, 2, 1.0),  # balanced: nothing to see
])
def test_mcnemar_exact_matches_hand_computed_p(a_only, b_only, expected):
    a, b = paired_correctness(a_only, b_only, both=7, neither=3)
    result = st.mcnemar_exact(a, b)
    assert (result.a_only_correct, result.b_only_correct) == (a_only, b_only)
    assert result.p_value == pytest.approx(expected, abs=1e-12)


def test_mcnemar_exact_matches_binomtest_and_the_binomial_sum():
    a, b = paired_correctness(12, 3, both=80, neither=5)
    p = st.mcnemar_exact(a, b).p_value
    by_hand = 2 * sum(math.comb(15, k) for k in range(4)) / 2**15  # = 0.03515625
    assert p == pytest.approx(by_hand, abs=1e-12)
    assert p == pytest.approx(binomtest(3, 15, 0.5).pvalue, abs=1e-12)
    # Concordant pairs do not enter the test, and swapping the models gives the same p.
    assert st.mcnemar_exact(*paired_correctness(12, 3)).p_value == pytest.approx(p)
    assert st.mcnemar_exact(b, a).p_value == pytest.approx(p)


def test_mcnemar_without_discordant_pairs_is_one():
    a, b = paired_correctness(0, 0, both=10, neither=4)
    assert st.mcnemar_exact(a, b) == st.McNemarResult(0, 0, 1.0)


def test_mcnemar_rejects_unpaired_inputs():
    with pytest.raises(ValueError, match="same items"):
        st.mcnemar_exact([True, False], [True])


# ---- bootstrap -----------------------------------------------------------------------------------------------
def noisy_predictions(n: int, accuracy: float, num_classes: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, num_classes, n)
    wrong = rng.random(n) > accuracy
    y_pred = np.where(wrong, (y_true + rng.integers(1, num_classes, n)) % num_classes, y_true)
    return y_true, y_pred


def test_macro_f1_matches_scikit_learn_including_an_absent_class():
    y_true, y_pred = noisy_predictions(300, 0.7, num_classes=3, seed=1)
    y_pred[y_pred == 2] = 0  # class 2 is never predicted
    expected = f1_score(y_true, y_pred, labels=[0, 1, 2, 3], average="macro", zero_division=0)
    assert st.macro_f1(y_true, y_pred, 4) == pytest.approx(expected, abs=1e-12)


# One model's CI and a paired difference's CI, composed from the report's primitives as analysis.py does.
def bootstrap_ci(y_true, y_pred, num_classes: int, metric: str = "macro_f1", *, n_resamples: int = st.RESAMPLES,
                 seed: int = st.SEED, confidence: float = st.CONFIDENCE) -> st.Interval:
    """Percentile bootstrap CI of one model's ``metric`` (``accuracy`` or ``macro_f1``) on a test set."""
    replicates = st.bootstrap_replicates(y_true, {"m": y_pred}, num_classes, n_resamples=n_resamples, seed=seed)
    estimate = st.point_estimate(metric, np.asarray(y_true), np.asarray(y_pred), num_classes)
    return st.percentile_interval(replicates["m"][metric], estimate, confidence)


def paired_bootstrap_ci(y_true, pred_a, pred_b, num_classes: int,
                        metric: str = "macro_f1", *, n_resamples: int = st.RESAMPLES, seed: int = st.SEED,
                        confidence: float = st.CONFIDENCE) -> st.Interval:
    """CI of ``metric(A) − metric(B)``, both scored on the same resampled test items."""
    replicates = st.bootstrap_replicates(y_true, {"a": pred_a, "b": pred_b}, num_classes,
                                      n_resamples=n_resamples, seed=seed)
    y = np.asarray(y_true)
    estimate = (st.point_estimate(metric, y, np.asarray(pred_a), num_classes)
                - st.point_estimate(metric, y, np.asarray(pred_b), num_classes))
    return st.percentile_interval(replicates["a"][metric] - replicates["b"][metric], estimate, confidence)


def test_bootstrap_ci_contains_estimate_and_shrinks_with_n():
    widths = {}
    for n in (100, 2000):
        y_true, y_pred = noisy_predictions(n, 0.8, seed=n)
        for metric in ("accuracy", "macro_f1"):
            ci = bootstrap_ci(y_true, y_pred, 2, metric, n_resamples=1000, seed=3)
            assert ci.low < ci.estimate < ci.high
            widths[n, metric] = ci.high - ci.low
    for metric in ("accuracy", "macro_f1"):
        # The width goes as 1/sqrt(n): 20× the items, about 4.5× narrower.
        assert 3 < widths[100, metric] / widths[2000, metric] < 7


def test_bootstrap_accuracy_ci_matches_the_normal_approximation():
    y_true, y_pred = noisy_predictions(2000, 0.8, seed=7)
    ci = bootstrap_ci(y_true, y_pred, 2, "accuracy", n_resamples=4000, seed=0)
    p = ci.estimate
    expected_half_width = 1.96 * math.sqrt(p * (1 - p) / 2000)
    assert (ci.high - ci.low) / 2 == pytest.approx(expected_half_width, rel=0.12)
    assert ci.estimate == pytest.approx(np.mean(y_true == y_pred))


def test_bootstrap_is_seeded():
    y_true, y_pred = noisy_predictions(200, 0.75)
    first = bootstrap_ci(y_true, y_pred, 2, n_resamples=1000, seed=5)
    assert bootstrap_ci(y_true, y_pred, 2, n_resamples=1000, seed=5) == first
    assert bootstrap_ci(y_true, y_pred, 2, n_resamples=1000, seed=6) != first


def test_paired_bootstrap_of_identical_predictions_has_zero_width():
    y_true, y_pred = noisy_predictions(300, 0.7)
    ci = paired_bootstrap_ci(y_true, y_pred, y_pred.copy(), 2, n_resamples=1000)
    assert (ci.estimate, ci.low, ci.high) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_separates_a_real_difference_and_is_antisymmetric():
    y_true, good = noisy_predictions(500, 0.9, seed=11)
    _, bad = noisy_predictions(500, 0.6, seed=11)  # same labels (same seed), more errors
    ab = paired_bootstrap_ci(y_true, good, bad, 2, n_resamples=1000)
    ba = paired_bootstrap_ci(y_true, bad, good, 2, n_resamples=1000)
    assert ab.estimate == pytest.approx(st.macro_f1(y_true, good, 2) - st.macro_f1(y_true, bad, 2))
    assert ab.low > 0
    assert (ba.estimate, ba.low, ba.high) == pytest.approx((-ab.estimate, -ab.high, -ab.low))


def test_bootstrap_rejects_mismatched_or_empty_inputs():
    with pytest.raises(ValueError, match="2 predictions for 3"):
        st.bootstrap_replicates([0, 1, 0], {"m": [0, 1]}, 2)
    with pytest.raises(ValueError, match="empty"):
        st.bootstrap_replicates([], {"m": []}, 2)


# ---- Holm and seeds --------------------------------------------------------------------------------------------
def test_holm_known_answer():
    # Sorted: 0.01·4 = 0.04, 0.03·3 = 0.09, 0.04·2 = 0.08 → 0.09 (monotone), 0.5·1 = 0.5.
    assert st.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert st.holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])


def test_summarise_seeds_mean_and_sample_std():
    runs = [SeedRun(seed=s, metrics={split: SplitMetrics(accuracy=a, macro_f1=f) for split in ("test", "validation")})
            for s, a, f in [(1, 0.8, 0.5), (2, 0.9, 0.6), (3, 0.7, 0.7)]]
    summary = st.summarise_seeds(runs)
    assert summary.n_seeds == 3 and summary.seeds == [1, 2, 3]
    assert summary.test["macro_f1"].mean == pytest.approx(0.6)
    assert summary.test["macro_f1"].std == pytest.approx(0.1)  # ddof = 1
    assert summary.test["accuracy"].values == [0.8, 0.9, 0.7]
    assert st.summarise_seeds(runs[:1]).test["macro_f1"].std == 0.0


# ---- majority baseline -----------------------------------------------------------------------------------------
LABELS = ["neutral", "offensive", "hate"]
Y = {"validation": np.array([0, 0, 0, 1, 2]), "test": np.array([0] * 5 + [1] * 3 + [2] * 2)}


def test_majority_baseline_uses_train_counts():
    baseline = majority_baseline(LABELS, {"train": SplitReport(rows=100, label_counts=[10, 70, 20])}, Y)
    assert (baseline.class_id, baseline.label, baseline.source) == (1, "offensive", "train label counts")
    test = baseline.metrics["test"]
    assert test.accuracy == pytest.approx(0.3)
    # Only "offensive" has non-zero F1: precision 3/10, recall 1 → 2·0.3/1.3.
    assert test.f1_per_class == pytest.approx([0, 2 * 0.3 / 1.3, 0])
    assert test.macro_f1 == pytest.approx(2 * 0.3 / 1.3 / 3)
    assert test.confusion_matrix == [[0, 5, 0], [0, 3, 0], [0, 2, 0]]
    # Its probabilities are the train class frequencies, so its loss is the prior's cross-entropy.
    assert test.loss == pytest.approx(-(5 * math.log(0.1) + 3 * math.log(0.7) + 2 * math.log(0.2)) / 10)
    assert (baseline.predictions["test"].y_pred == 1).all()


def test_majority_baseline_falls_back_to_validation_labels_and_says_so():
    baseline = majority_baseline(LABELS, {"train": SplitReport(rows=100)}, Y)
    assert baseline.label == "neutral"
    assert "validation" in baseline.source and "no train label counts" in baseline.source
    assert baseline.metrics["test"].accuracy == pytest.approx(0.5)


# ---- applying it to a run --------------------------------------------------------------------------------------
def test_comparison_pairs_cover_students_teacher_and_lora():
    models = {"teacher": ModelResult(route="fine-tune"), "odd": ModelResult(route="distil"),
              "even": ModelResult(route="distil"), "lora": ModelResult(route="lora")}
    assert comparison_pairs(models) == [
        ("odd", "even", "student vs student"),
        ("odd", "teacher", "student vs teacher"), ("even", "teacher", "student vs teacher"),
        ("lora", "teacher", "LoRA vs teacher"),
        ("odd", "lora", "student vs LoRA"), ("even", "lora", "student vs LoRA"),
    ]


def test_run_statistics_adds_best_vs_runner_up_when_not_already_compared():
    y_true, strong = noisy_predictions(400, 0.9, seed=2)
    _, weaker = noisy_predictions(400, 0.85, seed=2)
    _, student = noisy_predictions(400, 0.6, seed=2)

    def split(pred):
        return {"test": SplitPredictions(y_true, np.eye(2)[pred])}

    # A baseline is compared with nobody by kind: when it leads, it is compared with the runner-up.
    models = {"teacher": ModelResult(route="fine-tune"), "odd": ModelResult(route="distil"),
              "tfidf": ModelResult(route="baseline")}
    stats = run_statistics(models, {"teacher": split(student), "odd": split(weaker), "tfidf": split(strong)}, 2,
                           n_resamples=1000)
    kinds = {(c.a, c.b): c.kind for c in stats.comparisons}
    assert kinds == {("odd", "teacher"): "student vs teacher", ("tfidf", "odd"): "best vs runner-up"}
    raw = [c.mcnemar.p_value for c in stats.comparisons]
    assert [c.mcnemar.p_holm for c in stats.comparisons] == pytest.approx(st.holm(raw))
    odd_vs_teacher = stats.comparisons[0]
    assert odd_vs_teacher.difference_significant and odd_vs_teacher.mcnemar_significant
    assert odd_vs_teacher.macro_f1_difference.low > 0
