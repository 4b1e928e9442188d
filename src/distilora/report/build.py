"""``build_report``: statistics, plots and findings for a run's results, written as Markdown and HTML.

The report only reports: it reads the results it is given, the per-item predictions the run saved and the
behavioural checks' ``checks/*.json`` (it runs no model); it measures nothing and writes no results.json (the
caller keeps ``statistics`` with the results).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from distilora.checks.files import RunChecks
from distilora.checks.render import check_section
from distilora.data.known import known_dataset
from distilora.evaluation.statistics import RESAMPLES, SEED
from distilora.render.document import Block, Bullets, Document, Image, Section, render_html, render_markdown
from distilora.report import plots, tables
from distilora.report.analysis import run_statistics
from distilora.report.calibration import calibrated, calibration_blocks
from distilora.report.context import BASELINE, ReportContext, load_predictions, majority_baseline
from distilora.report.findings import findings
from distilora.report.labels import (
    baseline_rule,
    label_comparison_table,
    per_label_detail_table,
    per_label_f1_series,
    per_label_f1_table,
)
from distilora.report.robustness import augmentation_line, robustness_blocks, robustness_findings
from distilora.report.tuning import tuning_plots, tuning_section
from distilora.results import RunResults, RunStatistics
from distilora.run_dir import RunLayout, read_results, read_tuning, write_report, write_results

logger = logging.getLogger(__name__)


@dataclass
class Report:
    """What :func:`build_report` computed and wrote."""

    statistics: RunStatistics
    """Intervals, paired comparisons, seed summaries and the baseline (results.json's ``statistics``)."""
    files: dict[str, Path]
    """Every written file, keyed by its path relative to the run directory."""


def build_report(run_dir: RunLayout, results: RunResults | Mapping, *, n_resamples: int = RESAMPLES,
                 seed: int = SEED) -> Report:
    """Write ``report.html``, ``report.md`` and ``plots/*.png`` for ``results`` (the record, or results.json as
    read) into ``run_dir``."""
    results = RunResults.of(results)
    if not results.models:
        raise ValueError(f"{run_dir.root}: the results list no models to report on")
    ctx = _context(run_dir, results, n_resamples, seed)
    written = _plots(run_dir.plots_dir, ctx)
    document = _document(ctx, written)
    checks = RunChecks(run_dir).read_all()
    if checks:  # built from checks/*.json alone: the report runs no model
        section, check_plots = check_section(run_dir, checks)
        document.sections.insert(-2, section)  # before "Data" and "Method"
        written.update({f"checks:{path.name}": path for path in check_plots})
    files = write_report(run_dir, {"report.md": render_markdown(document, run_dir.root),
                                   "report.html": render_html(document)})
    files.update({path.relative_to(run_dir.root).as_posix(): path for path in written.values()})
    logger.info("Report written to %s", files["report.html"])
    return Report(ctx.statistics, files)


def report_run(run_dir: RunLayout, results: RunResults, *, n_resamples: int = RESAMPLES, seed: int = SEED) -> Report:
    """Report on ``results`` and keep the statistics in them and in the run's results.json (the last step of
    ``distilora run``)."""
    logger.info("Writing the report (plots, confidence intervals, paired tests)")
    report = build_report(run_dir, results, n_resamples=n_resamples, seed=seed)
    results.statistics = report.statistics
    write_results(run_dir, results)
    return report


def rebuild_report(run_dir: RunLayout, *, n_resamples: int = RESAMPLES, seed: int = SEED) -> Report:
    """Report on a finished run from its results.json and keep the new statistics there (``distilora report``)."""
    return report_run(run_dir, RunResults.of(read_results(run_dir)), n_resamples=n_resamples, seed=seed)


def _context(run_dir: RunLayout, results: RunResults, n_resamples: int, seed: int) -> ReportContext:
    predictions = load_predictions(run_dir, list(results.models))
    if not predictions:
        raise FileNotFoundError(f"{run_dir.root}: no per-item predictions saved; re-run the evaluation")
    first = next(iter(predictions.values()))
    baseline = majority_baseline(results.labels, results.data_report, {split: p.y_true for split, p in first.items()})
    statistics = run_statistics(results.models, {**predictions, BASELINE: baseline.predictions}, len(results.labels),
                                results.seed_runs, n_resamples=n_resamples, seed=seed, labels=results.labels)
    statistics.baseline = baseline.summary()
    return ReportContext(dataclasses.replace(results, statistics=None), baseline, statistics, read_tuning(run_dir))


def _plots(out: Path, ctx: ReportContext) -> dict[str, Path]:
    written: dict[str, Path] = {}
    for name, entry in ctx.models.items():
        stem = plots.file_stem(name)
        if entry.history:  # TF-IDF and majority models have no training history
            written[f"training:{name}"] = plots.training_curves(name, entry, out / f"training_{stem}.png")
        test = entry.metrics.get("test")
        if test is not None and test.confusion_matrix and not ctx.multi_label:  # per label: the per-label table
            written[f"confusion:{name}"] = plots.confusion_matrix_plot(name, test.confusion_matrix, ctx.labels,
                                                                       out / f"confusion_{stem}.png")
        if entry.importance:
            written[f"importance:{name}"] = plots.importance_plot(name, entry.importance,
                                                                  out / f"importance_{stem}.png")
    reliable = {n: c for n, c in calibrated(ctx).items() if c.reliability.get("test")}
    if reliable:
        written["reliability"] = plots.reliability_diagrams(reliable, len(ctx.labels), out / "reliability.png",
                                                            multi_label=ctx.multi_label)
    series = per_label_f1_series(ctx) if ctx.multi_label else {}
    if series:
        written["per_label_f1"] = plots.per_label_f1_bars(series, ctx.labels, out / "per_label_f1.png")
    names = [n for n in ctx.models if n in ctx.intervals]
    base_f1 = ctx.intervals[BASELINE].macro_f1.estimate
    written["macro_f1"] = plots.macro_f1_intervals(names, ctx.intervals, ctx.seeds, base_f1, out / "macro_f1_ci.png")
    written["tradeoff"] = _tradeoff(out / "tradeoff.png", ctx, names, base_f1)
    written.update(tuning_plots(ctx, out))
    return written


def _tradeoff(path: Path, ctx: ReportContext, names: list[str], base_f1: float) -> Path:
    """Test macro-F1 against latency (models with a speed entry), or against size when speed was not measured."""
    timed = [n for n in names if ctx.speed_of(n)]
    if timed:
        x = {n: ctx.speed_of(n).latency_ms for n in timed}
        missing = [n for n in names if n not in timed]
        title = "Trade-off: test macro-F1 against latency" + (f" (not timed: {', '.join(missing)})" if missing else "")
        return plots.tradeoff(timed, x, ctx.intervals, "single-text latency (ms, median)", "ms", title, base_f1, path)
    x = {n: float(ctx.models[n].size_mb or 0) for n in names}
    return plots.tradeoff(names, x, ctx.intervals, "size on disk (MiB)", "MiB",
                          "Trade-off: test macro-F1 against size (speed not measured)", base_f1, path)


def _training_blocks(ctx: ReportContext, figures: dict[str, Path]) -> list[Block]:
    blocks: list[Block] = [Image(figures[f"training:{n}"], f"Training curves of {n}") for n in ctx.models
                           if f"training:{n}" in figures]
    untrained = [n for n in ctx.models if f"training:{n}" not in figures]
    if untrained:
        blocks.append(f"No training history (not trained step by step): {', '.join(untrained)}.")
    return blocks


def _importance_sections(ctx: ReportContext, figures: dict[str, Path]) -> list[Section]:
    return [Section(f"Layer importance ({name})",
                    [tables.importance_table(name, entry.importance),
                     Image(figures[f"importance:{name}"], f"Layer importance of {name}",
                           "Lines: one per elimination step, the teacher's validation loss with each kept layer "
                           "removed; rings: the layer removed.")])
            for name, entry in ctx.models.items() if f"importance:{name}" in figures]


def _label_sections(ctx: ReportContext, figures: dict[str, Path]) -> list[Section]:
    """A multi-label run's per-label scores: F1 per label and model, the other scores per label, the bar chart."""
    if "per_label_f1" not in figures:
        return []
    return [Section("Per-label results (test)", [
        per_label_f1_table(ctx), per_label_detail_table(ctx),
        Image(figures["per_label_f1"], "Test F1 per label and model",
              "Bars: each model's test F1 on each label (label on at probability ≥ 0.5); see the findings for which "
              "label compression hurts most.")])]


def _confusion_sections(ctx: ReportContext, figures: dict[str, Path]) -> list[Section]:
    """The confusion matrices of exclusive classes; a multi-label run has its per-label counts in the per-label
    table instead."""
    if ctx.multi_label:
        return []
    return [Section("Confusion matrices (test)", [Image(figures[f"confusion:{n}"], f"Confusion matrix of {n}")
                                                  for n in ctx.models if f"confusion:{n}" in figures])]


def _baseline_line(ctx: ReportContext) -> str:
    if ctx.multi_label:
        return f"Per-label majority baseline: {baseline_rule(ctx)} (from the {ctx.baseline.source})."
    return (f"Majority-class baseline: always '{ctx.baseline.label}', the most frequent class in the "
            f"{ctx.baseline.source}.")


def _overview(ctx: ReportContext) -> str:
    r, labels = ctx.results, ", ".join(ctx.labels)
    if ctx.multi_label:
        labels = f"{labels} (multi-label: each text has any number of them, each decided on its own)"
    return (f"Teacher {_or_unknown(r.teacher)}; labels {labels}; seed {_or_unknown(r.seed)}; "
            f"{ctx.statistics.method.n_items} test items; run created {_or_unknown(r.created)}.")


def _known_limits(dataset: str | None) -> list[Block]:
    known = known_dataset(dataset)
    return [Bullets([f"Known limit: {limit}" for limit in known.limits])] if known else []


def _precision_line(results: RunResults) -> str:
    """How the run computed: precision asked and used, the hardware's bf16 support, training processes."""
    p = results.precision
    if p is None or not (p.requested or p.resolved or p.device):
        return "Precision: fp32 (not recorded: a run older than --precision)."
    native = "has" if p.native_bf16 else "has no"
    where = f"{p.device} ({p.cpu})" if p.cpu and p.device == "cpu" else p.device
    processes = results.world_size or 1
    return (f"Precision: {p.resolved or '?'} for training and evaluation (--precision {p.requested or '?'}; "
            f"the {where} {native} native bf16); {processes} training process{'es' if processes != 1 else ''}.")


def _or_unknown(value: object) -> str:
    return "?" if value is None else str(value)


def _document(ctx: ReportContext, figures: dict[str, Path]) -> Document:
    r, method = ctx.results, ctx.statistics.method
    sections = [
        Section("Overview", [_overview(ctx)]),
        Section("Leaderboard", [tables.leaderboard(ctx)]),
        Section("What the numbers say", [Bullets(findings(ctx) + robustness_findings(ctx))]),
        Section("Test results", [tables.test_table(ctx),
                                 Image(figures["macro_f1"], "Test macro-F1 with 95 % CIs",
                                       "Points: test macro-F1; bars: 95 % bootstrap CI; dashed: majority baseline.")]),
        *_label_sections(ctx, figures),
        Section("Validation results", [tables.validation_table(ctx)]),
        Section("Calibration and operating point", calibration_blocks(ctx, figures)),
    ]
    robustness = robustness_blocks(ctx)
    if robustness:
        sections.append(Section("Robustness to spelling perturbations", robustness))
    seed_table = tables.seed_table(ctx)
    if seed_table:
        sections.append(Section("Across seeds", [seed_table]))
    sections += [
        Section("Paired comparisons", [tables.comparison_table(ctx),
                                       *([label_comparison_table(ctx)] if ctx.multi_label else [])]),
        *filter(None, [tuning_section(ctx, figures)]),
        Section("Size, cost and speed", [tables.cost_table(ctx),
                                         Image(figures["tradeoff"], "Trade-off chart", "One point per model; "
                                               "vertical bars: 95 % CI of test macro-F1.")]),
        *_importance_sections(ctx, figures),
        Section("Training curves", _training_blocks(ctx, figures)),
        *_confusion_sections(ctx, figures),
        Section("Data", [tables.data_table(ctx),
                         *[f"Warning: {w}." for info in ctx.results.data_report.values() for w in info.warnings or []],
                         _baseline_line(ctx),
                         *_known_limits(r.dataset)]),
        Section("Method", [Bullets([
            f"Confidence intervals: {method.confidence:.0%} {method.bootstrap}; {method.resamples:,} "
            f"resamples, seed {method.seed}.",
            f"Paired test: {method.paired_test}.",
            f"Multiple comparisons: {method.multiple_comparisons}.",
            _precision_line(r),
            augmentation_line(r),
            *([f"Transfer texts: {r.transfer.summary()}; trained on by {', '.join(r.transfer.models) or 'no model'}."]
              if r.transfer else []),
            "Speed: " + (f"measured during the run's evaluation on {ctx.speed.texts}; median single-text latency "
                         "after a warm-up, and texts per second for one batch of all of them"
                         + (f", in {ctx.speed.precision} (how `distilora serve` runs the models by default)"
                            if ctx.speed.precision else "") + "."
                         if ctx.speed else "not measured."),
        ])]),
    ]
    return Document(f"distilora report — {_or_unknown(r.dataset)}", sections)
