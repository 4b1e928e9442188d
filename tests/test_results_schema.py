"""results.json as typed records: a run's file reads and writes back unchanged, older files read with defaults and
keep their unknown keys, a misshapen file is refused where it is wrong; the loss components a training logs are
plotted and told; the general rendering tools import without the report."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys

import pytest
from conftest import tiny_experiment_config

from distilora.evaluation import results_markdown
from distilora.model_card import render_model_card
from distilora.report import plots, rebuild_report
from distilora.results import Comparison, ModelResult, ResultsError, RunResults, SeedRun, SplitMetrics, SplitReport
from distilora.run_dir import RunLayout, read_results
from distilora.training.losses import LOSS_COMPONENTS, loss_component

OLD_RUN = {
    "dataset": "old/data",
    "teacher": "old-teacher",
    "labels": ["neutral", "toxic"],
    "data_report": {"train": {"rows": 90, "dropped": 0, "reasons": {}},
                    "validation": {"rows": 30, "dropped": 2, "reasons": {"empty_text": 2}}},
    "seed": 7,
    "models": {
        "odd": {"route": "distil", "layers": [1, 3], "num_layers": 2, "description": "teacher layers 1,3",
                "metrics": {"validation": {"n": 30, "loss": 0.5, "accuracy": 0.8, "macro_f1": 0.79, "precision": 0.8,
                                           "recall": 0.78, "f1_per_class": [0.8, 0.78],
                                           "confusion_matrix": [[12, 3], [3, 12]]}},
                "params": 1200, "trainable_params": 1200, "size_mb": 0.5, "train_seconds": 3.0,
                "importance": {"chosen": [1, 3]}, "legacy_flag": True},
    },
    "created": "2024-01-01",
    "made_by": "an older distilora",
}
"""A results.json of an older version: no precision, speed, intervals, calibration, collapse check, history or
training settings; label counts not recorded; a key this version does not know (``made_by``, ``legacy_flag``)."""


# ---- round trips ---------------------------------------------------------------------------------------------------
def test_a_runs_results_read_and_written_back_are_the_same_file(tiny_run):
    text = (tiny_run / "results.json").read_text()
    raw = json.loads(text)
    results = RunResults.from_json(raw)
    assert results.to_json() == raw
    assert json.dumps(results.to_json(), indent=1) == text, "same keys in the same order"
    # The records are typed all the way down.
    odd = results.models["odd"]
    assert isinstance(odd.metrics["test"], SplitMetrics) and odd.metrics["test"].macro_f1 == raw["models"]["odd"][
        "metrics"]["test"]["macro_f1"]
    assert odd.intervals["test"].macro_f1.low <= odd.intervals["test"].macro_f1.estimate
    assert odd.calibration.temperature == raw["models"]["odd"]["calibration"]["temperature"]
    assert results.statistics.comparisons[0].a == raw["statistics"]["comparisons"][0]["a"]
    assert results.speed.models["teacher"].latency_ms > 0


def test_an_older_results_file_reads_with_defaults_and_writes_back_without_additions():
    results = RunResults.from_json(copy.deepcopy(OLD_RUN))
    odd = results.models["odd"]
    assert (results.precision, results.speed, results.seed_runs, results.statistics) == (None, None, None, None)
    assert odd.calibration is None and odd.collapse is None and odd.collapsed is None
    assert odd.intervals == {} and odd.history == [] and odd.metrics_at_threshold is None
    assert results.data_report["train"].label_counts is None and results.data_report["train"].warnings is None
    assert odd.importance == {"chosen": [1, 3]} and odd.details["legacy_flag"] is True
    assert results.extra == {"made_by": "an older distilora"}
    assert results.to_json() == OLD_RUN, "nothing added, nothing lost"


def test_an_older_results_file_renders_its_table_and_model_card():
    results = RunResults.from_json(copy.deepcopy(OLD_RUN))
    card = render_model_card("odd", results.models["odd"], results)
    assert "Not calibrated" in card and "Not measured for this model" in card
    assert "- validation: 30 rows, 2 dropped (empty text or unusable label)" in card
    assert "| validation | 30 | 0.800 | 0.790 | 0.800 | 0.780 | 0.500 |" in card  # no intervals: the point values
    table = results_markdown(results)
    assert "| odd | 1,3 | 0.00 M | 0.00 M | 0.5 | 3 | 0.8000 | 0.7900 | — | — | — |" in table  # no test split
    assert "- validation: 30 rows used, 2 dropped (empty_text: 2)" in table


def test_a_field_set_on_an_older_file_is_written_after_the_keys_it_had():
    results = RunResults.from_json(copy.deepcopy(OLD_RUN))
    results.data_report["train"].label_counts = [45, 45]
    written = results.to_json()
    assert written["data_report"]["train"]["label_counts"] == [45, 45]
    assert list(written["data_report"]["train"]) == ["rows", "dropped", "reasons", "label_counts"]


def test_records_made_in_code_write_every_key_but_those_only_some_runs_have():
    entry = ModelResult(route="distil", metrics={"test": SplitMetrics(n=4, macro_f1=0.5)}, extra={"ablation_of": "x"})
    written = entry.to_json()
    assert written["calibration"] is None and written["history"] == [] and written["ablation_of"] == "x"
    assert "adapter_size_mb" not in written and "seed" not in written
    assert "roc_auc" not in written["metrics"]["test"]
    assert ModelResult.from_json(written) == entry
    assert SplitReport(rows=3).to_json() == {"rows": 3, "dropped": 0, "reasons": {}}


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["models"]["odd"].update(metrics=[]),
     r"results.json.models.odd.metrics: expected an object, found list"),
    (lambda r: r.update(models=["odd"]), r"results.json.models: expected an object, found list"),
    (lambda r: r["data_report"].update(test="all rows"),
     r"results.json.data_report.test: expected an object, found str"),
])
def test_a_misshapen_results_file_is_refused_naming_where(change, message):
    raw = copy.deepcopy(OLD_RUN)
    change(raw)
    with pytest.raises(ResultsError, match=message):
        RunResults.of(raw)


def test_a_statistics_comparison_without_its_test_is_refused_naming_the_key():
    with pytest.raises(ResultsError, match=r"Comparison: the key 'mcnemar' is missing"):
        Comparison.from_json({"a": "x", "b": "y", "kind": "k", "macro_f1_difference": {"estimate": 0, "low": 0,
                                                                                       "high": 0},
                              "accuracy_difference": {"estimate": 0, "low": 0, "high": 0},
                              "difference_significant": False})


# ---- the loss components: declared once, logged, plotted, told -----------------------------------------------------
@pytest.fixture(scope="module")
def hidden_run(tiny_teacher, tiny_dataset, tmp_path_factory):
    """A tiny run whose student also matches the teacher's intermediate [CLS] states (w_hidden > 0)."""
    from distilora import run_experiment

    output = tmp_path_factory.mktemp("hidden") / "run"
    config = tiny_experiment_config(tiny_dataset, tiny_teacher, output, routes=("odd",))
    config.distillation.w_hidden = 1.0
    run_experiment(config)
    return output


def _logged_components(history: list[dict]) -> set[str]:
    return {key.removeprefix("loss_") for entry in history for key in entry if key.startswith("loss_")}


def test_every_loss_component_a_training_logs_is_in_its_training_curves(hidden_run):
    entry = RunResults.of(read_results(RunLayout(hidden_run))).models["odd"]
    logged = _logged_components(entry.history)
    assert "hidden" in logged  # the run's own data: the student matched the teacher's layers
    figure = plots.training_figure("odd", entry)
    legends = {text.get_text() for ax in figure.axes if ax.get_legend() for text in ax.get_legend().get_texts()}
    titles = {ax.get_title() for ax in figure.axes if ax.get_visible()}
    for key in logged:
        component = loss_component(key)
        assert f"training {component.label}" in legends and component.label in legends, key
        assert f"Component: {component.label}" in titles, key


def test_every_loss_component_a_training_logs_is_told_in_the_findings(hidden_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(hidden_run, run)
    rebuild_report(RunLayout(run), n_resamples=200)
    findings = (run / "report.md").read_text().split("## What the numbers say")[1].split("\n## ")[0]
    history = json.loads((run / "results.json").read_text())["models"]["odd"]["history"]
    sentence = next(line for line in findings.splitlines() if "odd's distillation" in line)
    for key in _logged_components(history):
        assert f"{loss_component(key).phrase} fell from" in sentence or \
            f"{loss_component(key).phrase} rose from" in sentence, key


def test_an_undeclared_loss_component_is_refused_by_name():
    assert [c.logged for c in LOSS_COMPONENTS] == [f"loss_{c.key}" for c in LOSS_COMPONENTS]
    with pytest.raises(ValueError, match="'mystery' is not declared in distilora.training.losses.LOSS_COMPONENTS"):
        loss_component("mystery")


# ---- layers ------------------------------------------------------------------------------------------------------
def test_the_checks_rendering_imports_without_the_report():
    """checks → render, evaluation; report → checks: one direction, no cycle."""
    code = ("import sys, distilora.checks.render, distilora.checks.compute; "
            "print(sorted(m for m in sys.modules if m.startswith('distilora.report')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_extra_seeds_entry_carries_its_own_scores_and_no_collapse_check(tiny_run):
    results = RunResults.of(read_results(RunLayout(tiny_run)))
    main = results.models["odd"]
    other = SeedRun(seed=results.seed + 1, metrics={"test": SplitMetrics(n=32, accuracy=0.25, macro_f1=0.2)},
                    calibration=main.calibration)
    entry = main.with_seed_run(other)
    assert (entry.seed, entry.metrics["test"].macro_f1, entry.collapse, entry.intervals) == (results.seed + 1, 0.2,
                                                                                              None, {})
    card = render_model_card("odd", entry, results)
    assert f"# odd (seed {results.seed + 1})" in card and "Not measured for this model" in card
    assert main.seed is None and main.metrics["test"].macro_f1 != 0.2, "the main entry is unchanged"
