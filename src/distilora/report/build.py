"""``build_report``: statistics, speed, plots and findings for a finished run, written as Markdown and HTML."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from distilora.artifacts import write_atomic
from distilora.inference import read_results
from distilora.report import plots, tables
from distilora.report.analysis import run_statistics
from distilora.report.baseline import NAME as BASELINE
from distilora.report.baseline import majority_baseline
from distilora.report.context import ReportContext
from distilora.report.document import Bullets, Document, Image, Section
from distilora.report.findings import findings
from distilora.report.predictions import load_predictions
from distilora.report.render import render_html, render_markdown
from distilora.report.speed import benchmark_texts, measure_models
from distilora.report.statistics import RESAMPLES, SEED

logger = logging.getLogger(__name__)

REPORT_KEYS = ("statistics", "speed")
"""Keys the report adds to ``results.json`` (replaced on every rebuild; every other key is kept)."""


def build_report(run_dir: Path, *, measure_speed: bool = True, n_resamples: int = RESAMPLES,
                 seed: int = SEED) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``plots/*.png`` into ``run_dir``; add statistics to results.json.

    Returns every written file, keyed by its path relative to ``run_dir``.
    """
    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    results = read_results(run_dir)
    if not results.get("models"):
        raise ValueError(f"{results_path}: no models to report on")

    ctx = _context(run_dir, results, measure_speed, n_resamples, seed)
    written = _plots(run_dir, ctx)
    document = _document(ctx, written)

    results.update({"statistics": ctx.statistics, "speed": ctx.speed})
    write_atomic(results_path, json.dumps(results, indent=1))
    write_atomic(run_dir / "report.md", render_markdown(document, run_dir))
    write_atomic(run_dir / "report.html", render_html(document))
    files = {name: run_dir / name for name in ("report.html", "report.md", "results.json")}
    files.update({path.relative_to(run_dir).as_posix(): path for path in written.values()})
    logger.info("Report written to %s", run_dir / "report.html")
    return files


def _context(run_dir: Path, results: dict, measure_speed: bool, n_resamples: int, seed: int) -> ReportContext:
    names = list(results["models"])
    predictions = load_predictions(run_dir, names)
    if not predictions:
        raise FileNotFoundError(f"{run_dir / 'predictions'}: no per-item predictions; re-run the evaluation")
    first = next(iter(predictions.values()))
    baseline = majority_baseline(results["labels"], results.get("data_report", {}),
                                 {split: p.y_true for split, p in first.items()})
    statistics = run_statistics(results["models"], {**predictions, BASELINE: baseline.predictions},
                                len(results["labels"]), results.get("seed_runs"), n_resamples=n_resamples, seed=seed)
    statistics["baseline"] = baseline.to_dict()
    speed = None
    if measure_speed:
        texts, source = benchmark_texts(results)
        speed = {**measure_models(run_dir, names, texts), "texts": source}
    clean = {k: v for k, v in results.items() if k not in REPORT_KEYS}
    return ReportContext(clean, baseline, statistics, speed)


def _plots(run_dir: Path, ctx: ReportContext) -> dict[str, Path]:
    out = run_dir / "plots"
    written: dict[str, Path] = {}
    for name, entry in ctx.models.items():
        stem = plots.file_stem(name)
        written[f"training:{name}"] = plots.training_curves(name, entry, out / f"training_{stem}.png")
        written[f"confusion:{name}"] = plots.confusion_matrix_plot(
            name, entry["metrics"]["test"]["confusion_matrix"], ctx.labels, out / f"confusion_{stem}.png")
    names = [n for n in ctx.models if n in ctx.intervals]
    base_f1 = ctx.intervals[BASELINE]["macro_f1"]["estimate"]
    written["macro_f1"] = plots.macro_f1_intervals(names, ctx.intervals, ctx.seeds, base_f1, out / "macro_f1_ci.png")
    if ctx.speed:
        x = {n: ctx.speed["models"][n]["latency_ms"] for n in names}
        label, unit, title = "single-text latency (ms, median)", "ms", "Trade-off: test macro-F1 against latency"
    else:
        x = {n: float(ctx.models[n].get("size_mb") or 0) for n in names}
        label, unit, title = "size on disk (MiB)", "MiB", "Trade-off: test macro-F1 against size (speed not measured)"
    written["tradeoff"] = plots.tradeoff(names, x, ctx.intervals, label, unit, title, base_f1, out / "tradeoff.png")
    return written


def _document(ctx: ReportContext, figures: dict[str, Path]) -> Document:
    r, method = ctx.results, ctx.statistics["method"]
    overview = (f"Teacher {r.get('teacher', '?')}; labels {', '.join(ctx.labels)}; seed {r.get('seed', '?')}; "
                f"{method['n_items']} test items; run created {r.get('created', '?')}.")
    sections = [
        Section("Overview", [overview]),
        Section("What the numbers say", [Bullets(findings(ctx))]),
        Section("Test results", [tables.test_table(ctx),
                                 Image(figures["macro_f1"], "Test macro-F1 with 95 % CIs",
                                       "Points: test macro-F1; bars: 95 % bootstrap CI; dashed: majority baseline.")]),
        Section("Validation results", [tables.validation_table(ctx)]),
    ]
    seed_table = tables.seed_table(ctx)
    if seed_table:
        sections.append(Section("Across seeds", [seed_table]))
    sections += [
        Section("Paired comparisons", [tables.comparison_table(ctx)]),
        Section("Size, cost and speed", [tables.cost_table(ctx),
                                         Image(figures["tradeoff"], "Trade-off chart", "One point per model; "
                                               "vertical bars: 95 % CI of test macro-F1.")]),
        Section("Training curves", [Image(figures[f"training:{n}"], f"Training curves of {n}") for n in ctx.models]),
        Section("Confusion matrices (test)", [Image(figures[f"confusion:{n}"], f"Confusion matrix of {n}")
                                              for n in ctx.models]),
        Section("Data", [tables.data_table(ctx),
                         f"Majority-class baseline: always '{ctx.baseline.label}', the most frequent class in the "
                         f"{ctx.baseline.source}."]),
        Section("Method", [Bullets([
            f"Confidence intervals: {method['confidence']:.0%} {method['bootstrap']}; {method['resamples']:,} "
            f"resamples, seed {method['seed']}.",
            f"Paired test: {method['paired_test']}.",
            f"Multiple comparisons: {method['multiple_comparisons']}.",
            "Speed: " + (f"measured while building this report on {ctx.speed['texts']}; median single-text latency "
                         "after a warm-up, and texts per second for one batch of all of them."
                         if ctx.speed else "not measured."),
        ])]),
    ]
    return Document(f"distilora report — {r.get('dataset', '?')}", sections)
