"""'What the numbers say': sentences computed from the results, each stating only what the data shows."""

from __future__ import annotations

from distilora.render import formatting as fmt
from distilora.report.analysis import ablation_of, ranking
from distilora.report.calibration import calibrated, prior_shift_sentences
from distilora.report.context import MAJORITY_MODEL, ReportContext
from distilora.report.labels import accuracy_name, baseline_rule, compression_findings
from distilora.results import Comparison
from distilora.routes.kinds import RouteKind
from distilora.training.losses import LOSS_COMPONENTS, logged_components

TIE = 1e-12
NEAR_TEACHER = 0.97
"""A half-depth model "reaches" the teacher at this share of its test macro-F1."""
MAX_SPELLED_OUT = 8
"""Up to this many paired comparisons get a sentence each; more are summarised in one sentence per kind."""


def findings(ctx: ReportContext) -> list[str]:
    """Every finding, in reading order."""
    sentences = [*_best(ctx), *_baseline(ctx), *_distillation_gain(ctx), *_half_depth(ctx),
                 *compression_findings(ctx), *_collapsed(ctx), *_prior_shift(ctx)]
    # The best-vs-runner-up and the ablation comparisons are already told above.
    ablation = ablation_of(ctx.models)
    rest = [c for c in ctx.statistics.comparisons
            if c.kind != "best vs runner-up" and (not ablation or {c.a, c.b} != set(ablation))]
    sentences += [_comparison(c) for c in rest] if len(rest) <= MAX_SPELLED_OUT else _comparison_groups(rest)
    sentences += _cost(ctx) + _components(ctx) + _seeds(ctx) + _precision(ctx)
    return [s for s in sentences if s]


def _significance(c: Comparison) -> str:
    d, mc = c.macro_f1_difference, c.mcnemar
    discordant = mc.a_only_correct + mc.b_only_correct
    if discordant == 0 and abs(d.estimate) <= TIE:
        return (f"{c.a} and {c.b} are right and wrong on exactly the same test items, so there is no "
                "difference to test (McNemar p = 1).")
    if c.difference_significant:
        f1_text = f"the macro-F1 difference is statistically significant (95 % CI {fmt.signed_ci(d)} excludes 0)"
    else:
        f1_text = f"the macro-F1 difference is not statistically significant (95 % CI {fmt.signed_ci(d)} contains 0)"
    errors = "differ significantly" if c.mcnemar_significant else "do not differ significantly"
    return (f"{f1_text}; on the {discordant} items exactly one of them gets right ({mc.a_only_correct} only "
            f"{c.a}, {mc.b_only_correct} only {c.b}), McNemar's exact test gives {fmt.p_is(mc.p_value)} "
            f"(Holm-adjusted {fmt.p_value(mc.p_holm)}): their error rates {errors}.")


def _best(ctx: ReportContext) -> list[str]:
    names = [n for n in ctx.models if n in ctx.intervals]
    if not names:
        return []
    ranked = ranking(ctx.intervals, names)
    score = {n: ctx.intervals[n].macro_f1.estimate for n in names}
    top = [n for n in ranked if score[ranked[0]] - score[n] <= TIE]
    if len(top) == len(ranked) and len(top) > 1:
        return [f"All {len(top)} models have the same test macro-F1, {score[top[0]]:.3f}; the test set does not "
                "separate them."]
    if len(top) > 1:
        return [f"The highest test macro-F1, {score[top[0]]:.3f}, is shared by {_join(top)}; the test set does not "
                "rank them."]
    best, runner_up = ranked[0], ranked[1] if len(ranked) > 1 else None
    interval = ctx.intervals[best].macro_f1
    sentence = (f"{best} has the highest test macro-F1: {interval.estimate:.3f} "
                f"(95 % CI {interval.low:.3f}–{interval.high:.3f})")
    if runner_up is None:
        return [sentence + "."]
    sentence += f", {score[best] - score[runner_up]:.3f} above the next best, {runner_up} ({score[runner_up]:.3f})."
    comparison = ctx.comparison(best, runner_up)
    if comparison:
        sentence += " Paired on the test items: " + _significance(comparison)
    return [sentence]


def _baseline(ctx: ReportContext) -> list[str]:
    base = ctx.baseline.metrics.get("test")
    if not base:
        return []
    value = base.macro_f1
    kind = "per-label majority" if ctx.multi_label else "majority-class"
    sentence = (f"The {kind} baseline ({baseline_rule(ctx)}, chosen from the {ctx.baseline.source}) scores test "
                f"macro-F1 {value:.3f} and {accuracy_name(ctx)} {base.accuracy:.3f}.")
    names = [n for n in ctx.models if n in ctx.intervals and not (n == MAJORITY_MODEL and ctx.majority_in_run)]
    above = [n for n in names if ctx.intervals[n].macro_f1.estimate > value + TIE]
    clear = [n for n in above if ctx.intervals[n].macro_f1.low > value]
    not_above = [n for n in names if n not in above]
    if not_above:
        sentence += f" {_join(not_above)} {'does' if len(not_above) == 1 else 'do'} not score above it."
    if above:
        sentence += f" {_join(above)} {'scores' if len(above) == 1 else 'score'} above it"
        unclear = [n for n in above if n not in clear]
        sentence += (f"; for {_join(unclear)} the lower end of the 95 % CI is at or below the baseline, so that "
                     "margin is not established." if unclear else ", each with its whole 95 % CI above the baseline.")
    return [sentence]


def _distillation_gain(ctx: ReportContext) -> list[str]:
    """What the teacher adds: the student against the same student trained on labels alone (its ablation)."""
    ablation = ablation_of(ctx.models)
    c = ctx.comparison(*ablation) if ablation else None
    if c is None:
        return []
    d = c.macro_f1_difference
    sign = " (negative: the labels-only student scores higher)" if d.estimate < -TIE else ""
    return [f"Distillation adds {fmt.signed(d.estimate)} [95 % CI {fmt.signed(d.low)}, {fmt.signed(d.high)}] "
            f"macro-F1 over training the same student on labels alone ({c.a} vs {c.b}, same initialisation)"
            f"{sign}; paired on the test items, " + _significance(c)]


def _half_depth(ctx: ReportContext) -> list[str]:
    """Whether any model with at most half the teacher's layers reaches 97 % of its test macro-F1."""
    teacher = ctx.teacher
    depth = ctx.models[teacher].num_layers if teacher else None
    teacher_f1 = ctx.test_f1(teacher) if teacher else None
    if not depth or not teacher_f1:
        return []
    kinds = (RouteKind.DISTIL, RouteKind.HYBRID, RouteKind.BASELINE)
    scores = {n: ctx.test_f1(n) for n, m in ctx.models.items()
              if m.route in kinds and 0 < (m.num_layers or 0) <= depth / 2}
    share = {n: v / teacher_f1 for n, v in scores.items() if v is not None}
    if not share:
        return []
    closest = max(share, key=share.get)
    target = (f"97 % of the teacher's test macro-F1 ({NEAR_TEACHER:.2f} × {teacher_f1:.3f} = "
              f"{NEAR_TEACHER * teacher_f1:.3f})")
    reached = sorted((n for n in share if share[n] >= NEAR_TEACHER), key=lambda n: -share[n])
    if not reached:
        near = f"the closest is {closest} with {scores[closest]:.3f} ({share[closest] * 100:.1f} % of the teacher's)"
        return [f"No half-depth model (at most {depth // 2} of the teacher's {depth} layers) reaches {target}; "
                f"{near}."]
    verb = "reaches" if len(reached) == 1 else "reach"
    each = _join([f"{n} ({scores[n]:.3f}, {share[n] * 100:.1f} %)" for n in reached])
    return [f"With at most half of the teacher's {depth} layers, {_join(reached)} {verb} {target}: {each} "
            "(point estimates; see the paired comparisons for their uncertainty)."]


def _collapsed(ctx: ReportContext) -> list[str]:
    """One sentence per model the run's collapse check flagged."""
    out = []
    for name in ctx.models:
        check = ctx.collapse(name)
        if check is None or not check.collapsed:
            continue
        reasons = "; ".join(check.reasons) or "no reason recorded"
        details = []
        if check.top_class_share is not None and not ctx.multi_label:
            details.append(f"its most predicted class takes {check.top_class_share * 100:.0f} % of the validation "
                           "items")
        if check.majority_macro_f1 is not None:
            majority = "each label's train majority" if ctx.multi_label else "the train majority class"
            details.append(f"always answering {majority} scores validation macro-F1 "
                           f"{check.majority_macro_f1:.3f}")
        out.append(f"{name} is flagged as collapsed: {reasons}" + (f" ({'; '.join(details)})" if details else "")
                   + ".")
    return out


def _prior_shift(ctx: ReportContext) -> list[str]:
    """The calibration section's prior-shift sentence, when the shares called positive shift (binary runs)."""
    entries = calibrated(ctx)
    if ctx.multi_label or len(ctx.labels) != 2 or not any(c.prior_shift for c in entries.values()):
        return []
    return [s + " (See 'Calibration and operating point'.)" for s in prior_shift_sentences(ctx, entries, ctx.labels[1])]


def _comparison(c: Comparison) -> str:
    d = c.macro_f1_difference.estimate
    direction = "equal to" if abs(d) <= TIE else ("higher than" if d > 0 else "lower than")
    amount = "" if abs(d) <= TIE else f" by {abs(d):.3f}"
    return f"{c.a} vs {c.b} ({c.kind}): {c.a}'s test macro-F1 is {direction} {c.b}'s{amount}; " + _significance(c)


def _comparison_groups(comparisons: list[Comparison]) -> list[str]:
    """One sentence per kind of comparison: each pair's macro-F1 difference with its CI and Holm-adjusted p."""
    kinds = list(dict.fromkeys(c.kind for c in comparisons))
    out = []
    for kind in kinds:
        group = [c for c in comparisons if c.kind == kind]
        items = [f"{c.a} − {c.b} {fmt.signed_ci(c.macro_f1_difference)}"
                 + (" (CI excludes 0)" if c.difference_significant else "")
                 + f", Holm p {fmt.p_value(c.mcnemar.p_holm)}" for c in group]
        differ = [f"{c.a} vs {c.b}" for c in group if c.mcnemar_significant]
        tail = (f" Error rates differ significantly (McNemar, Holm-adjusted) for {_join(differ)}." if differ
                else " No pair's error rates differ significantly (McNemar, Holm-adjusted).")
        out.append(f"{kind[0].upper()}{kind[1:]} ({len(group)} paired comparisons, test macro-F1 A − B [95 % CI]): "
                   + "; ".join(items) + "." + tail)
    return out


def _cost(ctx: ReportContext) -> list[str]:
    teacher = ctx.teacher
    if teacher is None:
        return []
    t, t_speed = ctx.models[teacher], ctx.speed_of(teacher)
    out = []
    for name, m in ctx.models.items():
        if name == teacher:
            continue
        parts = []
        if m.size_mb and t.size_mb:
            parts.append(f"{fmt.ratio(m.size_mb / t.size_mb)} the size on disk "
                         f"({m.size_mb:.1f} vs {t.size_mb:.1f} MiB)")
        if m.params and t.params:
            parts.append(f"{fmt.ratio(m.params / t.params)} the parameters")
        speed = ctx.speed_of(name)
        if speed and t_speed:
            parts.append(f"{_speed_words(t_speed.latency_ms / speed.latency_ms)} on a single text "
                         f"({speed.latency_ms:.2f} vs {t_speed.latency_ms:.2f} ms, median)")
            parts.append(f"{fmt.ratio(speed.throughput / t_speed.throughput)} the batch throughput "
                         f"({speed.throughput:.0f} vs {t_speed.throughput:.0f} texts/s)")
        if parts:
            out.append(f"{name} compared with {teacher}: " + ", ".join(parts) + ".")
        if m.route in (RouteKind.LORA, RouteKind.HYBRID) and m.trainable_params and m.params:
            adapter = (f"; the adapter alone is {m.adapter_size_mb:.2f} MiB on disk"
                       if m.adapter_size_mb is not None else "")
            out.append(f"{name} trained {m.trainable_params / m.params:.1%} of its parameters "
                       f"({fmt.params(m.trainable_params)} of {fmt.params(m.params)}){adapter}.")
    if out and not ctx.speed:
        out.append("Inference speed was not measured for this report, so no speed ratios are given.")
    return out


def _speed_words(ratio: float) -> str:
    """``2.00× faster`` or ``1.25× slower`` (``ratio`` = teacher latency / model latency)."""
    if abs(ratio - 1) < 0.005:
        return "as fast"
    return f"{ratio:.2f}× faster" if ratio > 1 else f"{1 / ratio:.2f}× slower"


def _components(ctx: ReportContext) -> list[str]:
    """How each loss component of a model trained against the teacher moved: the terms against the teacher
    first, then the one against the labels."""
    teacher_terms = {component.logged for component in LOSS_COMPONENTS if component.matches_teacher}
    out = []
    for name, m in ctx.models.items():
        history = [h for h in m.history if teacher_terms & h.keys()]
        if not history:
            continue
        moves = []
        for component in sorted(logged_components(history), key=lambda c: not c.matches_teacher):
            values = [h[component.logged] for h in history if h.get(component.logged) is not None]
            if values:
                first, last = values[0], values[-1]
                verb = "fell" if last < first else "rose" if last > first else "stayed"
                moves.append(f"{component.phrase} {verb} from {first:.3g} to {last:.3g}"
                             f"{fmt.percent_change(first, last)}")
        steps = [h["step"] for h in history if "step" in h]
        span = f" ({len(history)} logged values, steps {steps[0]}–{steps[-1]})" if steps else ""
        out.append(f"From the first to the last logged value of {name}'s distillation{span}, "
                   + ", ".join(moves[:-1]) + f" and {moves[-1]}.")
    return out


def _seeds(ctx: ReportContext) -> list[str]:
    out = []
    for name in ctx.models:
        if not ctx.multi_seed(name):
            continue
        summary = ctx.seeds[name]
        test = summary.of("test", "macro_f1")
        interval = ctx.intervals[name].macro_f1 if name in ctx.intervals else None
        if test:
            extra = f"; the main seed's 95 % bootstrap CI is {interval.low:.3f}–{interval.high:.3f}" if interval else ""
            out.append(f"Over {summary.n_seeds} seeds, {name}'s test macro-F1 is {test.mean:.3f} ± "
                       f"{test.std:.3f} (mean ± std, range {min(test.values):.3f}–{max(test.values):.3f})"
                       f"{extra}.")
    return out


def _precision(ctx: ReportContext) -> list[str]:
    widths = {n: i.macro_f1.high - i.macro_f1.low for n, i in ctx.intervals.items() if n in ctx.models}
    if not widths:
        return []
    widest = max(widths, key=widths.get)
    n = ctx.statistics.method.n_items
    return [f"All intervals come from the same {n} test items; the widest 95 % macro-F1 interval ({widest}) "
            f"spans {widths[widest]:.3f}."]


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
