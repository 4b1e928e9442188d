"""The report's "Tuned at equal budget" section on hand-made results: the leaderboards, the sentence on whether the
half-depth answer changed, the budget check and the trial-history plot."""

from __future__ import annotations

from distilora.report.analysis import TUNED_ABLATION, comparison_pairs
from distilora.report.context import Baseline, ReportContext
from distilora.report.tuning import (
    distillation_sentence,
    leaderboards,
    ranking_sentence,
    trial_history_plot,
    tuning_section,
)
from distilora.results import (
    Comparison,
    Interval,
    McNemar,
    ModelResult,
    RunResults,
    RunStatistics,
    SplitMetrics,
    StatisticsMethod,
    TrialPoint,
    TunedRoute,
)

METHOD = StatisticsMethod(split="test", n_items=10, confidence=0.95, bootstrap="percentile", resamples=10, seed=0,
                          paired_test="McNemar", multiple_comparisons="Holm", alpha=0.05)


def model(route: str, layers: int, test_f1: float, tuned_from: str | None = None, **details) -> ModelResult:
    extra = ({"tuned_from": tuned_from} if tuned_from else {}) | details
    return ModelResult(route=route, num_layers=layers, metrics={"test": SplitMetrics(macro_f1=test_f1)}, extra=extra)


def record(route: str, trials: int = 4) -> TunedRoute:
    history = [TrialPoint(number=0, state="complete", macro_f1=0.60, default=True),
               TrialPoint(number=1, state="pruned", macro_f1=0.40),
               TrialPoint(number=2, state="complete", macro_f1=0.66),
               TrialPoint(number=3, state="fail")][:trials]
    return TunedRoute(route=route, study=route, trials=trials, complete=2, pruned=1, failed=trials - 3, seconds=9.0,
                      default_trial=0, default_macro_f1=0.60, best_trial=2, best_macro_f1=0.66,
                      best_settings={"distil.temperature": 4, "train.learning_rate": 1e-4}, history=history,
                      importances={"distil.temperature": 0.7, "train.learning_rate": 0.3})


def context(models: dict[str, ModelResult], tuning: dict[str, TunedRoute]) -> ReportContext:
    results = RunResults(labels=["no", "yes"], models=models)
    return ReportContext(results, Baseline(0, "no", [5, 5], "train label counts"), RunStatistics(METHOD), tuning)


def run_models(odd_tuned: float) -> dict[str, ModelResult]:
    return {"teacher": model("fine-tune", 6, 0.70), "odd": model("distil", 3, 0.62),
            "even": model("distil", 3, 0.64), "lora": model("lora", 6, 0.68),
            "odd-tuned": model("distil", 3, odd_tuned, tuned_from="odd")}


def test_a_tuned_route_takes_its_defaults_place_on_the_equal_budget_leaderboard():
    at_default, at_budget = leaderboards(context(run_models(0.66), {"odd": record("odd")}))
    assert at_default == ["teacher", "lora", "even", "odd"]
    assert at_budget == ["teacher", "lora", "odd-tuned", "even"]


def test_the_sentence_says_when_tuning_changed_which_half_depth_route_loses_least():
    changed = ranking_sentence(context(run_models(0.66), {"odd": record("odd")}))
    assert "at default settings even (0.640 test macro-F1)" in changed
    assert "at equal budget odd-tuned (0.660)" in changed
    assert "changed: odd now loses least instead of even" in changed
    same = ranking_sentence(context(run_models(0.63), {"odd": record("odd")}))
    assert "the answer is unchanged" in same and "at equal budget even" in same


def test_each_tuned_model_is_paired_with_its_default():
    assert ("odd-tuned", "odd", "tuned vs default") in comparison_pairs(run_models(0.66))


def test_unequal_budgets_are_called_out(tmp_path):
    ctx = context(run_models(0.66), {"odd": record("odd", trials=4), "even": record("even", trials=3)})
    section = tuning_section(ctx, {})
    assert section.title == "Tuned at equal budget"
    assert "not tuned at one budget (odd 4, even 3 trials)" in section.blocks[0]
    equal = tuning_section(context(run_models(0.66), {"odd": record("odd"), "even": record("even")}), {})
    assert equal.blocks[0].startswith("Budget: 4 trials per route")


def test_no_tune_file_means_no_section_and_the_history_plot_is_written(tmp_path):
    assert tuning_section(context(run_models(0.66), {}), {}) is None
    path = trial_history_plot(record("odd"), tmp_path / "tuning_odd.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000


def test_a_labels_only_student_counts_as_half_depth():
    models = run_models(0.63) | {"odd-no-kd": model("baseline", 3, 0.65, ablation_of="odd")}
    assert "at default settings odd-no-kd (0.650" in ranking_sentence(context(models, {"odd": record("odd")}))


def comparison(a: str, b: str, kind: str, difference: float) -> Comparison:
    interval = Interval(difference, difference - 0.01, difference + 0.01)
    return Comparison(a=a, b=b, kind=kind, macro_f1_difference=interval, accuracy_difference=interval,
                      difference_significant=True, mcnemar=McNemar(3, 9, 0.04))


def test_distillation_is_compared_with_the_labels_only_student_when_both_are_tuned():
    models = run_models(0.66) | {"odd-no-kd": model("baseline", 3, 0.65, ablation_of="odd"),
                                 "odd-no-kd-tuned": model("baseline", 3, 0.64, "odd-no-kd", ablation_of="odd")}
    assert ("odd-tuned", "odd-no-kd-tuned", TUNED_ABLATION) in comparison_pairs(models)
    ctx = context(models, {"odd": record("odd"), "odd-no-kd": record("odd-no-kd")})
    assert distillation_sentence(ctx) is None  # no statistics yet
    ctx.statistics.comparisons = [comparison("odd", "odd-no-kd", "student vs labels-only ablation", -0.03),
                                  comparison("odd-tuned", "odd-no-kd-tuned", TUNED_ABLATION, 0.02)]
    sentence = distillation_sentence(ctx)
    assert "odd-tuned − odd-no-kd-tuned = +0.020 [+0.010, +0.030] (adds; significant)" in sentence
    assert "at default settings odd − odd-no-kd = -0.030 [-0.040, -0.020] (subtracts; significant)" in sentence
