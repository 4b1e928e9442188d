"""How a multi-label run is told: the report's tables, findings, plot and calibration, the model card and results.md,
from results records made by hand (chosen per-label scores, so every number the tests read is known)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from distilora.evaluation.evaluate import results_markdown
from distilora.model_card import render_model_card
from distilora.render.document import render_markdown
from distilora.report import build, labels, plots, tables
from distilora.report.calibration import calibration_blocks
from distilora.report.context import BASELINE, Baseline, ReportContext
from distilora.report.findings import findings
from distilora.report.robustness import robustness_blocks
from distilora.results import (
    CalibrationSummary,
    Comparison,
    Interval,
    LabelScores,
    McNemar,
    MetricIntervals,
    ModelResult,
    Proportion,
    Robustness,
    RunResults,
    RunStatistics,
    SplitMetrics,
    SplitReport,
    StatisticsMethod,
)

LABELS = ["insult", "threat", "obscene"]
N = 40
SUPPORT = [16, 12, 18]
"""Test texts each label is on in."""
F1 = {"teacher": [0.90, 0.80, 0.85], "odd": [0.70, 0.78, 0.86], "lora": [0.85, 0.50, 0.80],
      "tfidf": [0.60, 0.55, 0.65], "majority": [0.0, 0.0, 0.0]}
"""Test F1 per label: odd loses most on insult, lora on threat; over both, threat drops most (mean −0.16)."""
ROUTES = {"teacher": "fine-tune", "odd": "distil", "lora": "lora", "tfidf": "baseline", "majority": "baseline"}
LAYERS = {"teacher": 4, "odd": 2, "lora": 4, "tfidf": 0, "majority": 0}
COUNTS = {"train": [48, 40, 50], "validation": [15, 14, 17], "test": SUPPORT}


def split_metrics(name: str, offset: float = 0.0) -> SplitMetrics:
    """Scores whose per-label F1 are ``F1[name]`` (shifted by ``offset``), the rest derived from them."""
    f1 = [max(0.0, v + offset) for v in F1[name]]
    per_label = [LabelScores(label=label, precision=min(1.0, v + 0.05), recall=max(0.0, v - 0.05), f1=v,
                             roc_auc=None if name == "majority" else min(1.0, v + 0.1), support=support,
                             predicted=0 if name == "majority" else support + i)
                 for i, (label, v, support) in enumerate(zip(LABELS, f1, SUPPORT, strict=True))]
    return SplitMetrics(n=N, loss=0.4, accuracy=round(sum(f1) / 6, 4), macro_f1=sum(f1) / len(f1),
                        precision=sum(s.precision for s in per_label) / 3, recall=sum(s.recall for s in per_label) / 3,
                        f1_per_class=f1, confusion_matrix=[[20, 2, 3, 15]] * 3, roc_auc=0.9,
                        micro_f1=round(sum(f1) / 3 + 0.01, 4), hamming_loss=round(1 - sum(f1) / 3, 4),
                        label_ranking_ap=0.777 if name == "teacher" else 0.5, per_label=per_label)


def calibration(name: str) -> CalibrationSummary | None:
    if name == "majority":
        return None
    return CalibrationSummary(temperature=1.1, policy="max-macro-f1", temperatures=[1.0, 1.25, 1.05],
                              thresholds=[0.4, 0.55, 0.35 if name == "teacher" else 0.5])


def multi_label_results() -> RunResults:
    models = {name: ModelResult(route=ROUTES[name], num_layers=LAYERS[name], layers=[1, 3] if name == "odd" else None,
                                metrics={"validation": split_metrics(name, 0.02), "test": split_metrics(name)},
                                calibration=calibration(name), params=1000 * (LAYERS[name] + 1), size_mb=1.0,
                                path=f"models/{name}")
              for name in F1}
    data_report = {split: SplitReport(rows={"train": 120}.get(split, N), label_counts=counts)
                   for split, counts in COUNTS.items()}
    return RunResults(dataset="synthetic-multi-label", teacher="tiny", labels=LABELS, multi_label=True,
                      data_report=data_report, seed=42, models=models, created="today")


def multi_label_context(results: RunResults | None = None) -> ReportContext:
    results = results or multi_label_results()
    intervals = {name: MetricIntervals(accuracy=Interval(m.metrics["test"].accuracy, 0.1, 0.9),
                                       macro_f1=Interval(m.metrics["test"].macro_f1, m.metrics["test"].macro_f1 - 0.1,
                                                         min(1.0, m.metrics["test"].macro_f1 + 0.1)))
                 for name, m in results.models.items()}
    intervals[BASELINE] = intervals["majority"]  # the statistics' baseline row: the run's own majority model
    method = StatisticsMethod(split="test", n_items=N, confidence=0.95, bootstrap="percentile", resamples=100, seed=0,
                              paired_test="McNemar", multiple_comparisons="Holm", alpha=0.05)
    majority = results.models["majority"].metrics
    baseline = Baseline(class_id=0, label="insult", counts=COUNTS["train"], source="train label counts",
                        metrics=dict(majority))
    return ReportContext(results, baseline, RunStatistics(method=method, intervals=intervals))


@pytest.fixture
def ctx() -> ReportContext:
    return multi_label_context()


def rows_of(table) -> dict[str, list[str]]:
    return {row[0]: row for row in table.rows}


def test_the_leaderboard_ranks_by_test_macro_f1_over_labels_with_its_intervals(ctx):
    board = tables.leaderboard(ctx)
    assert board.headers[3] == "test macro-F1 over labels [95 % CI]"
    assert [row[1] for row in board.rows] == ["teacher", "odd", "lora", "tfidf", "majority"]
    teacher = board.rows[0]
    f1 = ctx.intervals["teacher"].macro_f1
    assert teacher[3] == f"{f1.estimate:.3f} [{f1.low:.3f}, {f1.high:.3f}]"
    assert "macro-F1 over labels" in board.caption


def test_the_per_label_table_gives_each_models_test_f1_per_label(ctx):
    table = labels.per_label_f1_table(ctx)
    assert table.headers == ["model", "F1 insult", "F1 threat", "F1 obscene", "macro-F1 (mean over labels)"]
    rows = rows_of(table)
    assert list(rows) == list(F1)
    assert rows["lora"][1:4] == ["0.850", "0.500", "0.800"]
    assert rows["teacher"][4] == f"{sum(F1['teacher']) / 3:.3f}"


def test_the_per_label_detail_table_has_precision_recall_and_roc_auc_of_every_label_and_model(ctx):
    table = labels.per_label_detail_table(ctx)
    assert table.headers[2:6] == ["precision", "recall", "F1", "ROC-AUC"]
    assert len(table.rows) == len(LABELS) * len(F1)
    odd_threat = next(row for row in table.rows if row[:2] == ["threat", "odd"])
    assert odd_threat[2:] == ["0.830", "0.730", "0.780", "0.880", "12", "13"]
    majority_insult = next(row for row in table.rows if row[:2] == ["insult", "majority"])
    assert majority_insult[5] == "—"  # no ROC-AUC recorded


def test_the_finding_names_the_label_compression_hurts_most(ctx):
    said = labels.compression_findings(ctx)
    assert said[0] == ("Per label, odd's test F1 minus the teacher's (teacher): insult -0.200, threat -0.020, "
                       "obscene +0.010; it loses most on 'insult' (-0.200).")
    assert said[1].startswith("Per label, lora's test F1") and "it loses most on 'threat' (-0.300)" in said[1]
    assert said[2].startswith("Compression hurts 'threat' most: over the 2 compressed models its test F1 is "
                              "-0.160 from the teacher's on average")
    assert "(the largest drop for lora)" in said[2]
    assert said[0] in findings(ctx) and said[2] in findings(ctx)


def test_no_label_is_named_when_compression_costs_none():
    results = multi_label_results()
    for name in ("odd", "lora"):
        results.models[name].metrics["test"] = split_metrics("teacher", 0.01)
    said = labels.compression_findings(multi_label_context(results))
    assert all("loses on no label" in s for s in said[:2])
    assert said[2].startswith("Compression costs no label F1 on average")


def test_the_per_label_f1_plot_draws_a_bar_per_label_and_model(ctx, tmp_path):
    series = labels.per_label_f1_series(ctx)
    assert series["odd"] == F1["odd"] and list(series) == list(F1)
    path = plots.per_label_f1_bars(series, LABELS, tmp_path / "per_label_f1.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= 300


def test_the_main_tables_show_subset_accuracy_micro_f1_hamming_loss_and_lrap(ctx):
    assert tables.test_table(ctx).headers[3] == "subset accuracy [95 % CI]"
    assert tables.validation_table(ctx).headers[1] == "subset accuracy"
    for table in (tables.test_table(ctx), tables.validation_table(ctx)):
        for header in ("micro-F1", "Hamming loss", "label-ranking AP"):
            assert header in table.headers
    test = tables.test_table(ctx)
    teacher = rows_of(test)["teacher"]
    column = dict(zip(test.headers, teacher, strict=True))
    assert column["label-ranking AP"] == "0.777"
    assert column["Hamming loss"] == f"{1 - sum(F1['teacher']) / 3:.3f}"
    assert column["F1 threat"] == "0.800"


def test_the_data_section_gives_the_positives_per_label_in_each_split(ctx):
    table = tables.data_table(ctx)
    assert table.headers[-1] == "positives per label"
    assert rows_of(table)["validation"][-1] == "insult: 15, threat: 14, obscene: 17"


def test_the_calibration_section_gives_each_labels_temperature_and_threshold(ctx):
    blocks = calibration_blocks(ctx, {})
    per_label = next(b for b in blocks if getattr(b, "headers", [None])[-3:] == LABELS)
    rows = rows_of(per_label)
    assert rows["teacher"][1] == "the highest validation macro-F1"
    assert rows["teacher"][2:] == ["T 1.00, ≥ 0.400", "T 1.25, ≥ 0.550", "T 1.05, ≥ 0.350"]
    assert rows["odd"][4] == "T 1.05, ≥ 0.500"
    summary = next(b for b in blocks if getattr(b, "headers", [None])[0] == "model" and b is not per_label)
    assert rows_of(summary)["teacher"][-1] == "each label: P(label) ≥ its threshold"
    assert any("sigmoid(logit / T)" in b for b in blocks if isinstance(b, str))


def test_the_paired_comparisons_add_mcnemar_on_each_label(ctx):
    ctx.statistics.comparisons = [Comparison(
        a="odd", b="teacher", kind="student vs teacher", macro_f1_difference=Interval(-0.07, -0.15, 0.01),
        accuracy_difference=Interval(-0.035, -0.1, 0.03), difference_significant=False,
        mcnemar=McNemar(a_only_correct=3, b_only_correct=5, p_value=0.727, p_holm=0.727), mcnemar_significant=False,
        per_label=[McNemar(a_only_correct=1, b_only_correct=6, p_value=0.125, p_holm=0.375, label="insult"),
                   McNemar(a_only_correct=0, b_only_correct=0, p_value=1.0, p_holm=1.0, label="threat"),
                   McNemar(a_only_correct=0, b_only_correct=9, p_value=0.004, p_holm=0.012, label="obscene")])]
    table = labels.label_comparison_table(ctx)
    assert table.rows == [["odd vs teacher", "insult", "1", "6", "0.125", "0.375", "no"],
                          ["odd vs teacher", "threat", "0", "0", "1.000", "1.000", "no"],
                          ["odd vs teacher", "obscene", "0", "9", "0.004", "0.012", "yes"]]
    assert "every label of the item right" in tables.comparison_table(ctx).caption


def multi_label_markdown(ctx: ReportContext, out: Path) -> str:
    figures = build._plots(out / "plots", ctx)
    return render_markdown(build._document(ctx, figures), out)


def test_a_multi_label_report_has_the_per_label_section_and_no_words_of_exclusive_classes(ctx, tmp_path):
    md = multi_label_markdown(ctx, tmp_path)
    section = md.split("## Per-label results (test)\n")[1].split("\n## ")[0]
    assert "| F1 insult | F1 threat | F1 obscene |" in section and "| ROC-AUC |" in section
    assert "![Test F1 per label and model](plots/per_label_f1.png)" in section
    assert (tmp_path / "plots" / "per_label_f1.png").is_file()
    assert "Compression hurts 'threat' most" in md
    assert "multi-label: each text has any number of them" in md
    assert not list((tmp_path / "plots").glob("confusion_*.png"))
    for wrong in ("Confusion matri", "positive class", "class counts", "argmax", "softmax", "majority-class",
                  "always 'insult'"):
        assert wrong not in md, wrong
    assert not re.search(r"(?<!subset )accuracy \[95", md)


def test_the_robustness_table_of_a_multi_label_run_speaks_of_the_set_of_labels():
    results = multi_label_results()
    results.models["teacher"].robustness = Robustness(consistency=Proportion(0.9, 0.8, 0.95, 36, 40), accuracy=0.4,
                                                      macro_f1=0.8, clean_accuracy=0.425, clean_macro_f1=0.85)
    summary = robustness_blocks(multi_label_context(results))[1]
    assert summary.headers[4] == "test subset accuracy clean"
    assert "decided set of labels" in summary.caption


# ---- the model card and results.md -------------------------------------------------------------------------------
def test_the_model_card_of_a_multi_label_model_has_its_labels_per_label_scores_thresholds_and_sigmoid_usage():
    results = multi_label_results()
    results.models["odd"].robustness = Robustness(consistency=Proportion(0.9, 0.8, 0.95, 36, 40), accuracy=0.3,
                                                  macro_f1=0.7, clean_accuracy=0.39, clean_macro_f1=0.78)
    card = render_model_card("odd", results.models["odd"], results)
    assert "subset accuracy 0.300 (clean 0.390)" in card
    assert "- **Labels** (multi-label" in card and "`insult`, `threat`, `obscene`" in card
    assert "| label | precision | recall | F1 | ROC-AUC | texts with it | texts given it |" in card
    assert "| threat | 0.830 | 0.730 | 0.780 | 0.880 | 12 | 13 |" in card
    assert "| insult | 1.000 | 0.4000 |" in card  # temperature, threshold of each label
    assert ('pipeline("text-classification", model="path/to/this/directory", top_k=None, '
            'function_to_apply="sigmoid", truncation=True)') in card
    assert "subset accuracy" in card
    for wrong in ("argmax", "softmax", "positive class"):
        assert wrong not in card, wrong


def test_the_model_card_of_a_multi_label_baseline_names_no_transformers_pipeline():
    results = multi_label_results()
    card = render_model_card("majority", results.models["majority"], results)
    assert "pipeline(" not in card and "Not calibrated" in card
    assert "| obscene | 0.050 | 0.000 | 0.000 | — | 18 | 0 |" in card


def test_results_markdown_of_a_multi_label_run_has_subset_accuracy_micro_and_macro_f1():
    text = results_markdown(multi_label_results())
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    assert "| test subset acc | test micro-F1 | test macro-F1 |" in header
    teacher = next(line for line in text.splitlines() if line.startswith("| teacher"))
    cells = [c.strip() for c in teacher.strip("|").split("|")]
    column = dict(zip([h.strip() for h in header.strip("|").split("|")], cells, strict=True))
    assert column["test micro-F1"] == f"{sum(F1['teacher']) / 3 + 0.01:.4f}"
    assert column["test macro-F1"] == f"{sum(F1['teacher']) / 3:.4f}"
    assert "multi-label" in text


def test_the_card_of_a_multi_label_onnx_export_names_each_labels_served_threshold_and_no_argmax():
    results = multi_label_results()
    export = {"export": "odd-onnx", "passed": True, "multi_label": True, "thresholds": {"insult": 0.4, "threat": 0.55},
              "settings": {"inputs": ["input_ids", "attention_mask"], "max_length": 32},
              "gate": {"agreement": 0.99, "labels": "argmax", "split": "test", "min_agreement": 0.98},
              "decision": {}, "test": {"n": N, "agreement": 0.99, "decision_agreement": 0.98}}
    card = render_model_card("odd", results.models["odd"], results, export)
    assert ("each label when its calibrated probability is ≥ its threshold (`insult` 0.4000, `threat` 0.5500"
            in card)
    assert "(every label at 0.5, on test), required ≥ 0.98 at 0.5 and as served" in card
    assert "| label agreement (every label at 0.5) | label agreement (as served) |" in card
    assert "raw logits; a sigmoid per label" in card
    assert "argmax" not in card and "softmax" not in card


# ---- a finished multi-label run -----------------------------------------------------------------------------------
def test_the_report_of_a_multi_label_run_has_the_per_label_table_plot_and_finding(multi_label_run):
    md = (multi_label_run / "report.md").read_text()
    section = md.split("## Per-label results (test)\n")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert rows[0] == "| model | F1 insult | F1 threat | F1 obscene | macro-F1 (mean over labels) |"
    assert {row.split(" | ")[0].strip("| ") for row in rows[1:6]} == {"teacher", "odd", "lora", "tfidf", "majority"}
    assert "![Test F1 per label and model](plots/per_label_f1.png)" in section
    with Image.open(multi_label_run / "plots" / "per_label_f1.png") as image:
        assert image.format == "PNG" and min(image.size) >= 300
    assert "Per label, odd's test F1 minus the teacher's (teacher): insult " in md
    assert "Per label, lora's test F1 minus the teacher's (teacher): insult " in md
    assert re.search(r"Compression (hurts '(insult|threat|obscene)' most|costs no label F1 on average)", md)
    assert "| test macro-F1 over labels [95 % CI] |" in md and "| subset accuracy [95 % CI] |" in md
    for wrong in ("Confusion matri", "positive class", "class counts", "argmax", "softmax"):
        assert wrong not in md, wrong
    card = (multi_label_run / "odd" / "README.md").read_text()
    assert "| label | precision | recall | F1 | ROC-AUC | texts with it | texts given it |" in card
    assert 'top_k=None, function_to_apply="sigmoid"' in card
    assert "| test subset acc | test micro-F1 | test macro-F1 |" in (multi_label_run / "results.md").read_text()
