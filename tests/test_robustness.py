"""The robustness measure of every run's evaluation and ``--augment`` in a run, on the tiny model: results.json,
the report, the model card, the stage fingerprint, and results.json files written before the measure."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import tiny_experiment_config

from distilora.config import PERTURBATION_KINDS, DataConfig
from distilora.experiment import RunContext, run_experiment
from distilora.model_card import render_model_card
from distilora.report import rebuild_report
from distilora.results import RunResults
from distilora.routes.finetune import FineTune
from distilora.run_dir import RunLayout, fingerprint


@pytest.fixture(scope="module")
def augmented_run(tmp_path_factory, tiny_teacher, tiny_dataset):
    """A finished run (teacher and the odd student) trained with ``--augment char``."""
    output = tmp_path_factory.mktemp("robustness") / "run"
    config = tiny_experiment_config(tiny_dataset, tiny_teacher, output, routes=("odd",))
    config.data.augment = ("char",)
    run_experiment(config)
    return output


def test_a_run_writes_each_models_robustness_to_results_json(augmented_run):
    results = json.loads((augmented_run / "results.json").read_text())
    test_items = results["models"]["teacher"]["metrics"]["test"]["n"]
    for name in ("teacher", "odd"):
        robustness = results["models"][name]["robustness"]
        assert robustness["consistency"]["n"] == test_items
        assert 0 <= robustness["consistency"]["low"] <= robustness["consistency"]["estimate"] \
            <= robustness["consistency"]["high"] <= 1
        assert list(robustness["kinds"]) == list(PERTURBATION_KINDS)
        for kind in robustness["kinds"].values():
            assert kind["changed_texts"] > 0 and kind["consistency"]["n"] == test_items
            assert kind["consistency"]["count"] >= robustness["consistency"]["count"]
        assert robustness["seed"] == 0 and robustness["seconds"] >= 0
    record = RunResults.of(results).models["odd"].robustness
    assert record.kinds["leet"].consistency.n == test_items


def test_an_augmented_run_records_its_copies_and_trains_on_them(augmented_run):
    results = json.loads((augmented_run / "results.json").read_text())
    train = results["data_report"]["train"]
    assert results["augmentation"]["kinds"] == ["leet", "repeat", "swap", "drop", "case"]
    assert results["augmentation"]["rows_added"] == train["augmented_rows"] > 0
    assert sum(train["label_counts"]) == train["rows"] + train["augmented_rows"]
    assert results["config"]["data"]["augment"] == ["char"]
    card = (augmented_run / "odd" / "README.md").read_text()
    assert f"plus {train['augmented_rows']:,} perturbed copies" in card
    assert "Label consistency" in card


def test_the_report_shows_robustness_and_what_compression_did_to_it(augmented_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(augmented_run, run)
    rebuild_report(RunLayout(run))
    report = (run / "report.md").read_text()
    assert "## Robustness to spelling perturbations" in report
    assert "Robustness: odd keeps its decision under every spelling perturbation on" in report
    assert "Augmentation: one perturbed copy (same label) of a seeded 50 % of the training rows" in report


def test_results_json_without_robustness_still_loads_reports_and_makes_cards(augmented_run, tmp_path):
    run = tmp_path / "old-run"
    shutil.copytree(augmented_run, run)
    results = json.loads((run / "results.json").read_text())
    for entry in results["models"].values():
        del entry["robustness"]
    del results["augmentation"]
    (run / "results.json").write_text(json.dumps(results))
    record = RunResults.of(results)
    assert record.models["odd"].robustness is None and record.augmentation is None
    assert record.to_json() == results
    assert "Label consistency" not in render_model_card("odd", record.models["odd"], record)
    rebuild_report(RunLayout(run))
    report = (run / "report.md").read_text()
    assert "Robustness to spelling perturbations" not in report and "Augmentation: none" in report


def test_the_stage_fingerprint_changes_with_the_augment_settings(tiny_teacher, tiny_dataset, tmp_path):
    config = tiny_experiment_config(tiny_dataset, tiny_teacher, tmp_path / "run", routes=())
    plain = RunContext(config, check_writable=False)
    teacher = FineTune("teacher")
    seen = {teacher.fingerprint(plain, 42)}
    # Without --augment the fingerprint is the one stages trained before the option had.
    assert teacher.fingerprint(plain, 42) == fingerprint(*teacher.fingerprint_parts(plain), "none", 42)
    assert plain.training_fingerprint == plain.data_fingerprint
    training = {plain.training_fingerprint}
    for augment, rate in ((("char",), 0.5), (("char",), 0.3), (("word",), 0.5), (("char", "word"), 0.5)):
        config.data = DataConfig(dataset=str(tiny_dataset), max_length=32, augment=augment, augment_rate=rate)
        ctx = RunContext(config, check_writable=False)
        seen.add(teacher.fingerprint(ctx, 42))
        training.add(ctx.training_fingerprint)
        assert ctx.data_fingerprint == plain.data_fingerprint  # the data as read: exports still match it
        assert len(ctx.encoded["train"]) > len(plain.encoded["train"])
    assert len(seen) == len(training) == 5


def test_the_finding_names_the_kind_a_model_loses_most_on_by_points_below_the_teacher():
    from distilora.report.context import Baseline, ReportContext
    from distilora.report.robustness import robustness_findings
    from distilora.results import (
        ModelResult,
        PerturbedScores,
        Proportion,
        Robustness,
        RunStatistics,
        StatisticsMethod,
    )

    def robustness(overall: float, by_kind: dict[str, float]) -> Robustness:
        def share(value: float) -> Proportion:
            return Proportion(value, value - 0.01, value + 0.01, count=round(value * 100), n=100)
        return Robustness(consistency=share(overall),
                          kinds={kind: PerturbedScores(consistency=share(v)) for kind, v in by_kind.items()})

    models = {"teacher": ModelResult(route="fine-tune", robustness=robustness(0.80, {"leet": 0.90, "swap": 0.85})),
              "odd": ModelResult(route="distil", robustness=robustness(0.70, {"leet": 0.88, "swap": 0.75})),
              "even": ModelResult(route="distil", robustness=robustness(0.82, {"leet": 0.92, "swap": 0.86}))}
    method = StatisticsMethod(split="test", n_items=100, confidence=0.95, bootstrap="percentile", resamples=10,
                              seed=0, paired_test="McNemar", multiple_comparisons="Holm", alpha=0.05)
    ctx = ReportContext(RunResults(labels=["no", "yes"], models=models), Baseline(0, "no", [1, 1], "train"),
                        RunStatistics(method))
    odd, even = robustness_findings(ctx)
    assert "(-10.0 points; the Wilson intervals do not overlap); it loses most on swap (10.0 points below" in odd
    assert "(+2.0 points;" in even and "loses most" not in even
