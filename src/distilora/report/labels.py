"""The report's per-label parts of a multi-label run: each model's scores per label, which label compression hurts
most, the per-label calibration, and the positives per label in each split. Read from results.json's ``per_label``,
``calibration.temperatures`` / ``thresholds`` and ``data_report``; a single-label run has none of them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from distilora.evaluation.calibration import policy_words
from distilora.render import formatting as fmt
from distilora.render.document import Table
from distilora.report.context import ReportContext
from distilora.results import CalibrationSummary, LabelScores
from distilora.routes.kinds import RouteKind

COMPRESSED = (RouteKind.DISTIL, RouteKind.LORA, RouteKind.HYBRID)
"""The routes that compress the teacher (or train fewer weights): their per-label F1 is set against the teacher's."""
TIE = 1e-12
MULTI_LABEL_COLUMNS = (("micro_f1", "micro-F1"), ("hamming_loss", "Hamming loss"),
                       ("label_ranking_ap", "label-ranking AP"))
"""The multi-label metrics a per-model table adds: (``SplitMetrics`` field, header)."""


def accuracy_name(ctx: ReportContext) -> str:
    """``subset accuracy`` (every label of a text right) for a multi-label run, ``accuracy`` otherwise."""
    return "subset accuracy" if ctx.multi_label else "accuracy"


def baseline_rule(ctx: ReportContext) -> str:
    """What the majority baseline answers: ``always 'neutral'``, or each label at its train majority."""
    if ctx.multi_label:
        return f"each label on only if most training texts have it: {ctx.baseline.label}"
    return f"always '{ctx.baseline.label}'"


def multi_label_cells(ctx: ReportContext, name: str, split: str) -> list[str]:
    """The model's micro-F1, Hamming loss and label-ranking AP on ``split`` (none for a single-label run)."""
    if not ctx.multi_label:
        return []
    m = ctx.metrics(name, split)
    return [fmt.num(getattr(m, key)) for key, _ in MULTI_LABEL_COLUMNS]


def multi_label_headers(ctx: ReportContext) -> list[str]:
    return [header for _, header in MULTI_LABEL_COLUMNS] if ctx.multi_label else []


def label_scores(ctx: ReportContext, name: str, split: str = "test") -> list[LabelScores]:
    """The model's (or the baseline's) scores per label on ``split``; empty when it has none there."""
    try:
        return ctx.metrics(name, split).per_label or []
    except KeyError:
        return []


def label_f1(ctx: ReportContext, name: str, split: str = "test") -> dict[str, float]:
    """``{label: F1}`` of the labels the model has an F1 for on ``split``."""
    return {s.label: s.f1 for s in label_scores(ctx, name, split) if s.f1 is not None}


def scored_rows(ctx: ReportContext, split: str = "test") -> list[str]:
    """The per-model rows (models, then the internal baseline unless the run has one) with per-label scores."""
    return [name for name in ctx.rows if label_scores(ctx, name, split)]


def per_label_f1_table(ctx: ReportContext, split: str = "test") -> Table:
    """One row per model: its F1 on each label, then the macro mean over labels."""
    rows = []
    for name in scored_rows(ctx, split):
        f1 = label_f1(ctx, name, split)
        rows.append([name, *[fmt.num(f1.get(label)) for label in ctx.labels],
                     fmt.num(ctx.metrics(name, split).macro_f1)])
    return Table(["model", *[f"F1 {label}" for label in ctx.labels], "macro-F1 (mean over labels)"], rows,
                 caption=f"{split.capitalize()} F1 per label (each label on at probability ≥ 0.5, as a plain "
                         "pipeline with a sigmoid decides); precision, recall and ROC-AUC in the next table")


def per_label_detail_table(ctx: ReportContext, split: str = "test") -> Table:
    """One row per label and model: precision, recall, F1, ROC-AUC, and how many texts have / are given the label."""
    rows = []
    for label in ctx.labels:
        for name in scored_rows(ctx, split):
            s = next((s for s in label_scores(ctx, name, split) if s.label == label), None)
            if s is not None:
                rows.append([label, name, fmt.num(s.precision), fmt.num(s.recall), fmt.num(s.f1),
                             fmt.num(s.roc_auc), str(s.support), str(s.predicted)])
    return Table(["label", "model", "precision", "recall", "F1", "ROC-AUC", "texts with it", "texts given it"], rows,
                 numeric=[False, False] + [True] * 6,
                 caption=f"{split.capitalize()} scores per label; ROC-AUC '—': the split holds only positives or "
                         "only negatives of the label")


def teacher_differences(ctx: ReportContext, split: str = "test") -> dict[str, dict[str, float]]:
    """``{compressed model: {label: its F1 − the teacher's}}`` on the labels both have an F1 for."""
    teacher = ctx.teacher
    reference = label_f1(ctx, teacher, split) if teacher else {}
    if not reference:
        return {}
    out = {}
    for name, entry in ctx.models.items():
        f1 = label_f1(ctx, name, split) if entry.route in COMPRESSED else {}
        differences = {label: f1[label] - reference[label] for label in ctx.labels
                       if label in f1 and label in reference}
        if differences:
            out[name] = differences
    return out


def compression_findings(ctx: ReportContext, split: str = "test") -> list[str]:
    """Per compressed model, its per-label F1 against the teacher's and the label it loses most on; then the label
    compression hurts most over all of them (the largest mean drop)."""
    differences = teacher_differences(ctx, split)
    if not differences:
        return []
    out = []
    for name, by_label in differences.items():
        worst = min(by_label, key=by_label.get)
        each = ", ".join(f"{label} {fmt.signed(d)}" for label, d in by_label.items())
        verdict = (f"it loses most on '{worst}' ({fmt.signed(by_label[worst])})" if by_label[worst] < -TIE
                   else "it loses on no label")
        out.append(f"Per label, {name}'s {split} F1 minus the teacher's ({ctx.teacher}): {each}; {verdict}.")
    labels = [label for label in ctx.labels if any(label in d for d in differences.values())]
    mean = {label: float(np.mean([d[label] for d in differences.values() if label in d])) for label in labels}
    worst = min(mean, key=mean.get)
    if mean[worst] >= -TIE:
        return [*out, f"Compression costs no label F1 on average: every label's mean difference from the teacher "
                      f"over the {len(differences)} compressed models is ≥ 0."]
    hit = [name for name, d in differences.items() if worst in d and d[worst] <= min(d.values()) + TIE]
    out.append(f"Compression hurts '{worst}' most: over the {len(differences)} compressed models its {split} F1 is "
               f"{fmt.signed(mean[worst])} from the teacher's on average, the largest drop of any label"
               + (f" (the largest drop for {', '.join(hit)})" if hit else "")
               + f". Point estimates: per-label F1 on the {split} split has no interval here, and a label with few "
                 "positives (see the per-label table) moves most by chance.")
    return out


def per_label_f1_series(ctx: ReportContext, split: str = "test") -> dict[str, list[float | None]]:
    """``{model: [F1 of each label, in label order]}`` for the per-label F1 plot."""
    return {name: [label_f1(ctx, name, split).get(label) for label in ctx.labels]
            for name in scored_rows(ctx, split)}


def _cell(c: CalibrationSummary, i: int) -> str:
    temperature = fmt.num(c.temperatures[i], 2) if c.temperatures and i < len(c.temperatures) else fmt.DASH
    threshold = f"{c.thresholds[i]:.3f}" if c.thresholds and i < len(c.thresholds) else fmt.DASH
    return f"T {temperature}, ≥ {threshold}"


def label_calibration_table(ctx: ReportContext, entries: Mapping[str, CalibrationSummary]) -> Table:
    """Per model: the threshold policy, then each label's temperature and decision threshold."""
    rows = [[name, policy_words(c.policy, c.target) if c.policy else fmt.DASH,
             *[_cell(c, i) for i in range(len(ctx.labels))]] for name, c in entries.items()]
    return Table(["model", "thresholds chosen for", *ctx.labels], rows,
                 numeric=[False, False] + [True] * len(ctx.labels),
                 caption="Per label, fitted on validation: its temperature T (its score is sigmoid(logit / T)) and "
                         "its decision threshold (the label is on at a calibrated probability ≥ it)")



def label_comparison_table(ctx: ReportContext) -> Table:
    """Each paired comparison's McNemar test on each label's decisions, Holm-adjusted over all of them."""
    alpha = ctx.statistics.method.alpha
    rows = [[f"{c.a} vs {c.b}", test.label or "?", str(test.a_only_correct), str(test.b_only_correct),
             fmt.p_value(test.p_value), fmt.p_value(test.p_holm) if test.p_holm is not None else fmt.DASH,
             "yes" if test.p_holm is not None and test.p_holm < alpha else "no"]
            for c in ctx.statistics.comparisons for test in c.per_label or []]
    return Table(["A vs B", "label", "only A right", "only B right", "McNemar p", "Holm-adjusted p", "differ?"], rows,
                 numeric=[False, False, True, True, True, True, False],
                 caption=f"Per label, paired on the same test items: the items on which only one of the two decides "
                         f"that label right (at 0.5), McNemar's exact test, Holm-adjusted over every label of every "
                         f"comparison; 'differ?' at {alpha:g}")
