"""The report's calibration section: temperature and ECE per model, the operating point (test metrics at 0.5 and at
the tuned threshold side by side), the share of texts called positive on validation and test, and the prior shift
when their intervals do not overlap. Read from results.json's ``calibration`` and ``metrics_at_threshold``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from distilora.evaluation.calibration import policy_words, positive_class_rates
from distilora.render import formatting as fmt
from distilora.render.document import Block, Image, Table
from distilora.report.context import ReportContext
from distilora.report.labels import label_calibration_table
from distilora.results import CalibrationSummary, EceChange, Proportion, ThresholdScores

NOT_CALIBRATED = ("This run's results hold no calibration (it was evaluated before distilora fitted one): run the "
                  "same `distilora run` command again (finished stages are reused) to add it.")


SINGLE_LABEL_INTRO = (
    "Fitted on the validation split only, per model: a temperature T (scores are softmax(logits / T)) and, "
    "for binary tasks, a decision threshold. Every other section of this report is at the argmax (what a plain "
    "transformers pipeline gives); distilora's Classifier, `distilora predict` and the service apply the "
    "calibrated scores and the threshold.")
MULTI_LABEL_INTRO = (
    "Fitted on the validation split only, per model and label: a temperature T (the label's score is "
    "sigmoid(logit / T)) and a decision threshold (the label is on at a calibrated probability ≥ it). Every other "
    "section of this report decides each label at probability ≥ 0.5 of the raw sigmoid (what a plain transformers "
    "pipeline with function_to_apply=\"sigmoid\" gives); distilora's Classifier, `distilora predict` and the "
    "service apply the calibrated scores and each label's threshold.")

SINGLE_LABEL_RELIABILITY = (
    "Per model: accuracy against mean confidence in each bin of the top-class probability on test; grey: raw "
    "softmax, blue: after temperature scaling; on the dotted diagonal a model's confidence matches its accuracy.")
MULTI_LABEL_RELIABILITY = (
    "Per model: accuracy against mean confidence in each bin of the (text, label) decisions on test, a decision's "
    "confidence being max(p, 1 − p) of the label's probability; grey: raw sigmoid, blue: after temperature scaling; "
    "on the dotted diagonal a model's confidence matches its accuracy.")


def calibrated(ctx: ReportContext) -> dict[str, CalibrationSummary]:
    """``{model: its calibration entry}`` for the models that have one."""
    return {name: entry.calibration for name, entry in ctx.models.items() if entry.calibration}


def _arrow(ece: EceChange | None) -> str:
    return f"{fmt.num(ece.before)} → {fmt.num(ece.after)}" if ece else fmt.DASH


def _rule(c: CalibrationSummary) -> str:
    if c.thresholds:
        return "each label: P(label) ≥ its threshold"
    if c.threshold is None:
        return "argmax" + (f" ({c.note})" if c.note else "")
    return f"P({c.positive_label}) ≥ {c.threshold:.3f}"


def _policy(c: CalibrationSummary) -> str:
    if c.threshold is None:
        return fmt.DASH
    words = policy_words(c.policy, c.target)
    validation = c.validation_at_threshold or ThresholdScores()
    return (f"{words} (validation: precision {fmt.num(validation.precision)}, recall "
            f"{fmt.num(validation.recall)})")


def calibration_table(ctx: ReportContext, entries: Mapping[str, CalibrationSummary]) -> Table:
    """Temperature, ECE before → after on validation and test, and the decision rule, per model."""
    bins = next(iter(entries.values())).ece_bins
    rows = [[name, fmt.num(c.temperature), _arrow(c.ece.get("validation")), _arrow(c.ece.get("test")), _rule(c)]
            for name, c in entries.items()]
    scores = ("each label's decision confidence, max(p, 1 − p), raw sigmoid" if ctx.multi_label else
              "the top-class probability, raw softmax")
    return Table(["model", "temperature" + (" (geometric mean over labels)" if ctx.multi_label else ""),
                  "ECE validation (before → after)", "ECE test (before → after)", "decision"],
                 rows, numeric=[False, True, True, True, False],
                 caption=f"Temperature scaling fitted on validation (minimum NLL); expected calibration error over "
                         f"{bins} equal-width bins of {scores} → calibrated")


def operating_point_table(ctx: ReportContext, entries: Mapping[str, CalibrationSummary], positive: str) -> Table:
    """Test macro-F1, precision and recall of the positive class at 0.5 (argmax) and at the tuned threshold."""
    headers = ["model", "threshold", "chosen for", "test macro-F1 at 0.5", "at threshold",
               f"test precision ({positive}) at 0.5", "at threshold", f"test recall ({positive}) at 0.5",
               "at threshold", f"called {positive}: validation [95 % CI]", "test [95 % CI]", "prior shift?"]
    rows = []
    for name, c in entries.items():
        argmax = ctx.models[name].metrics["test"]
        tuned = (ctx.models[name].metrics_at_threshold or {}).get("test")
        at_half = positive_class_rates(argmax.confusion_matrix)
        at_tuned = positive_class_rates(tuned.confusion_matrix) if tuned else {}
        rows.append([name, f"{c.threshold:.3f}" if c.threshold is not None else "argmax", _policy(c),
                     fmt.num(argmax.macro_f1), fmt.num(tuned.macro_f1) if tuned else "same",
                     fmt.num(at_half["precision"]), fmt.num(at_tuned.get("precision")) if tuned else "same",
                     fmt.num(at_half["recall"]), fmt.num(at_tuned.get("recall")) if tuned else "same",
                     fmt.share(c.rate("validation")), fmt.share(c.rate("test")),
                     "yes" if c.prior_shift else "no"])
    return Table(headers, rows, numeric=[False, True, False] + [True] * 8 + [False],
                 caption=f"Operating point for '{positive}' (label 1), chosen on validation. At 0.5 = the argmax, "
                         "what results.json's `metrics` and a plain pipeline give; 'called' = share of texts given "
                         f"'{positive}' by the applied decision (95 % Wilson intervals)")


def _false_positives(ctx: ReportContext, name: str, split: str = "test") -> tuple[int, int] | None:
    """(negatives called positive, negatives) on ``split`` at the model's applied decision."""
    entry = ctx.models[name]
    metrics = (entry.metrics_at_threshold or {}).get(split) or entry.metrics.get(split)
    matrix = metrics.confusion_matrix if metrics is not None else []
    if len(matrix) != 2:
        return None
    return int(matrix[0][1]), int(sum(matrix[0]))


def _constant(rates: Mapping[str, Proportion | None]) -> bool:
    shares = [r for r in rates.values() if r is not None]
    return all(r.count == 0 for r in shares) or all(r.count == r.n for r in shares)


def prior_shift_sentences(ctx: ReportContext, entries: Mapping[str, CalibrationSummary], positive: str) -> list[str]:
    """A plain statement of whether the share called positive differs between validation and test beyond the CIs."""
    rated = {n: c for n, c in entries.items() if c.rate("test") and c.rate("validation")}
    # A model that gives every text the same label (the majority class) has no share that could shift.
    constant = [n for n, c in rated.items() if _constant(c.predicted_positive_rate)]
    rated = {n: c for n, c in rated.items() if n not in constant}
    left_out = (f" ({', '.join(constant)}, which {'gives' if len(constant) == 1 else 'give'} every text the same "
                "label, left out)" if constant else "")
    if not rated:
        return []
    shifted = [n for n, c in rated.items() if c.prior_shift]
    if not shifted:
        return [f"No prior shift: for every model{left_out} the share of texts called '{positive}' on validation and "
                "on test have overlapping 95 % intervals."]
    val = [rated[n].rate("validation").estimate * 100 for n in shifted]
    test = [rated[n].rate("test").estimate * 100 for n in shifted]
    first = next(iter(rated.values()))
    on_validation, on_test = first.true_share("validation"), first.true_share("test")
    truth = (f", while the true share of '{positive}' is {on_validation.estimate * 100:.1f} % on validation "
             f"and {on_test.estimate * 100:.1f} % on test" if on_validation and on_test else "")
    who = f"Every model{left_out} calls" if len(shifted) == len(rated) else \
        f"{len(shifted)} of {len(rated)} models ({', '.join(shifted)}) call{'s' if len(shifted) == 1 else ''}"
    higher = [rated[n].rate("test").estimate > rated[n].rate("validation").estimate for n in shifted]
    share = "a larger" if all(higher) else "a smaller" if not any(higher) else "a different"
    sentence = (f"Prior shift: {who} {share} share of texts '{positive}' on test than on validation "
                f"(validation {min(val):.1f}–{max(val):.1f} %, test {min(test):.1f}–{max(test):.1f} %; for each of "
                f"them the two 95 % intervals do not overlap){truth}. The test texts are not like the validation "
                "texts the thresholds were tuned on, so validation scores and thresholds do not carry over to test.")
    example = ctx.teacher if ctx.teacher in shifted else shifted[0]
    errors, before = _false_positives(ctx, example), _false_positives(ctx, example, "validation")
    if errors and errors[1]:
        negative = ctx.labels[0]
        on_validation = f"; on validation {before[0] / before[1] * 100:.0f} %" if before and before[1] else ""
        sentence += (f" For example, {example} calls {errors[0]:,} of the {errors[1]:,} test texts labelled "
                     f"'{negative}' '{positive}' ({errors[0] / errors[1] * 100:.0f} %{on_validation}).")
    return [sentence]


def target_sentences(ctx: ReportContext, entries: Mapping[str, CalibrationSummary], positive: str) -> list[str]:
    """Whether a precision or recall target met on validation holds on test."""
    metric = {"target-precision": "precision", "target-recall": "recall"}
    targeted = {n: c for n, c in entries.items() if c.policy in metric and c.threshold is not None}
    if not targeted:
        return []
    first = next(iter(targeted.values()))
    kind, target = metric[first.policy], first.target
    on_test = {}
    for name in targeted:
        tuned = (ctx.models[name].metrics_at_threshold or {}).get("test")
        value = positive_class_rates(tuned.confusion_matrix if tuned else [])[kind]
        if value is not None:
            on_test[name] = value
    if not on_test:
        return []
    held = [n for n, v in on_test.items() if v >= target]
    values = list(on_test.values())
    unmet = [n for n, c in entries.items() if n not in targeted and c.note and "not reachable" in c.note]
    sentence = (f"Target {kind} ≥ {target:g} for '{positive}', met on validation by the threshold of each of "
                f"{len(targeted)} models: on test their {kind} is {min(values):.3f}–{max(values):.3f}, so "
                + (f"the target holds for {', '.join(held)} only." if held and len(held) < len(on_test) else
                   "the target holds for every one of them." if held else "the target holds for none of them."))
    if unmet:
        sentence += f" Not reachable on validation (argmax kept): {', '.join(unmet)}."
    return [sentence]


def calibration_blocks(ctx: ReportContext, figures: Mapping[str, Path]) -> list[Block]:
    """The section's blocks: tables, the prior-shift sentence and the reliability diagrams."""
    entries = calibrated(ctx)
    if not entries:
        return [NOT_CALIBRATED]
    blocks: list[Block] = [MULTI_LABEL_INTRO if ctx.multi_label else SINGLE_LABEL_INTRO,
                           calibration_table(ctx, entries)]
    if ctx.multi_label:
        blocks.append(label_calibration_table(ctx, entries))
    elif len(ctx.labels) == 2:
        positive = ctx.labels[1]
        blocks.append(operating_point_table(ctx, entries, positive))
        blocks += target_sentences(ctx, entries, positive)
        blocks += prior_shift_sentences(ctx, entries, positive)
    else:
        blocks.append(f"{len(ctx.labels)} classes: temperature scaling only; decisions stay at the argmax.")
    missing = [n for n in ctx.models if n not in entries]
    if missing:
        blocks.append(f"Not calibrated (no calibration in the results): {', '.join(missing)}.")
    if "reliability" in figures:
        blocks.append(Image(figures["reliability"], "Reliability diagrams (test)",
                            MULTI_LABEL_RELIABILITY if ctx.multi_label else SINGLE_LABEL_RELIABILITY))
    return blocks
