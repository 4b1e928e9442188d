"""The report's tables, one function each, built from a :class:`ReportContext`."""

from __future__ import annotations

from distilora.render import formatting as fmt
from distilora.render.document import Table
from distilora.report.context import BASELINE, ReportContext
from distilora.report.labels import accuracy_name, baseline_rule, multi_label_cells, multi_label_headers
from distilora.results import Interval, ModelResult


def _layers(entry: ModelResult) -> str:
    """``1,3,5``, ``all 6``, or ``none`` for a model without an encoder (TF-IDF, majority)."""
    if entry.layers:
        return ",".join(map(str, entry.layers))
    return "none" if entry.num_layers == 0 else f"all {entry.num_layers if entry.num_layers is not None else '?'}"


def _depth(entry: ModelResult) -> str:
    """``3 (1,3,5)``, ``6 (all)`` or ``0``."""
    n = entry.num_layers
    if entry.layers:
        return f"{n if n is not None else len(entry.layers)} ({_layers(entry)})"
    return "0" if n == 0 else f"{n if n is not None else '?'} (all)"


def _collapsed(ctx: ReportContext, name: str) -> str:
    check = ctx.collapse(name)
    return fmt.DASH if check is None else ("⚠ collapsed" if check.collapsed else "no")


def _validation_f1(ctx: ReportContext, name: str) -> float | None:
    try:
        return ctx.metrics(name, "validation").macro_f1
    except KeyError:
        return None


def _leaderboard_row(ctx: ReportContext, name: str) -> list[str]:
    if name == BASELINE:
        kind, depth, params, trained, size = f"baseline ({baseline_rule(ctx)})", "0", "0", "0", "0"
    else:
        m = ctx.models[name]
        kind, depth, size = _route(m), _depth(m), fmt.num(m.size_mb, 1)
        params, trained = fmt.params(m.params), fmt.params(m.trainable_params)
    speed = ctx.speed_of(name)
    latency = fmt.num(speed.latency_ms, 2) if speed else (fmt.DASH if name == BASELINE else "not measured")
    interval = _interval(ctx, name, "macro_f1")
    test = fmt.ci(interval) if interval else fmt.num(ctx.test_f1(name))
    return [name, kind, test, fmt.num(_validation_f1(ctx, name)), depth, params, trained, size, latency,
            _collapsed(ctx, name)]


def leaderboard(ctx: ReportContext) -> Table:
    """Every model (and the majority baseline) by test macro-F1, best first, with depth, size and latency."""
    names = sorted(ctx.rows, key=lambda n: -(ctx.test_f1(n) if ctx.test_f1(n) is not None else -1.0))
    f1 = "macro-F1 over labels" if ctx.multi_label else "macro-F1"
    headers = ["rank", "model", "kind", f"test {f1} [95 % CI]", f"validation {f1}", "depth (layers)",
               "parameters", "trained parameters", "size (MB)", "latency, 1 text (ms)", "collapsed?"]
    rows = [[str(rank), *_leaderboard_row(ctx, name)] for rank, name in enumerate(names, 1)]
    return Table(headers, rows, numeric=[True, False, False, True, True, False, True, True, True, True, False],
                 caption=f"Leaderboard: every model by test {f1}, best first (95 % percentile bootstrap CIs); "
                         "size in MiB on disk; latency: median single-text time; ⚠ collapsed: flagged by the run's "
                         "collapse check (see the findings)")


def _route(entry: ModelResult) -> str:
    return entry.route if entry.route is not None else "?"


def _interval(ctx: ReportContext, name: str, metric: str) -> Interval | None:
    """The model's test interval of ``metric``, if the statistics have one."""
    intervals = ctx.intervals.get(name)
    return getattr(intervals, metric) if intervals is not None else None


def _metric_columns(ctx: ReportContext, name: str, split: str) -> list[str]:
    m = ctx.metrics(name, split)
    per_class = m.f1_per_class
    return multi_label_cells(ctx, name, split) + [fmt.num(m.precision), fmt.num(m.recall)] + \
        [fmt.num(per_class[i] if i < len(per_class) else None) for i in range(len(ctx.labels))] + [fmt.num(m.loss)]


def _metric_headers(ctx: ReportContext) -> list[str]:
    """The headers of :func:`_metric_columns`."""
    return multi_label_headers(ctx) + ["precision (macro)", "recall (macro)"] + \
        [f"F1 {label}" for label in ctx.labels] + ["loss"]


def _seed_cell(ctx: ReportContext, name: str, split: str, metric: str = "macro_f1") -> str:
    if not ctx.multi_seed(name):
        return "1 seed" if name in ctx.seeds else fmt.DASH
    summary = ctx.seeds[name]
    return f"{fmt.mean_std(summary.of(split, metric))} (n={summary.n_seeds})"


def test_table(ctx: ReportContext) -> Table:
    """Test metrics per model with bootstrap CIs (and seed mean ± std next to them when there are seeds)."""
    seeds = ctx.any_multi_seed
    headers = ["model", "route", "layers", f"{accuracy_name(ctx)} [95 % CI]", "macro-F1 [95 % CI]"]
    headers += ["macro-F1 over seeds (mean ± std)"] if seeds else []
    headers += _metric_headers(ctx)
    rows = []
    for name in ctx.rows:
        if name == BASELINE:
            route, layers = baseline_rule(ctx), fmt.DASH
        else:
            route, layers = _route(ctx.models[name]), _layers(ctx.models[name])
        row = [name, route, layers, fmt.ci(_interval(ctx, name, "accuracy")), fmt.ci(_interval(ctx, name, "macro_f1"))]
        row += [_seed_cell(ctx, name, "test")] if seeds else []
        rows.append(row + _metric_columns(ctx, name, "test"))
    n = ctx.statistics.method.n_items
    return Table(headers, rows, caption=f"Test set (n = {n}); intervals: 95 % percentile bootstrap, "
                                        f"{ctx.statistics.method.resamples:,} resamples",
                 numeric=[False, False, False] + [True] * (len(headers) - 3))


def validation_table(ctx: ReportContext) -> Table:
    """Validation metrics per model (the split early stopping chose checkpoints on)."""
    seeds = ctx.any_multi_seed
    headers = ["model", accuracy_name(ctx), "macro-F1"] + (["macro-F1 over seeds (mean ± std)"] if seeds else [])
    headers += _metric_headers(ctx)
    rows = []
    for name in ctx.rows:
        try:
            m = ctx.metrics(name, "validation")
        except KeyError:
            continue
        row = [name, fmt.num(m.accuracy), fmt.num(m.macro_f1)] + ([_seed_cell(ctx, name, "validation")]
                                                                 if seeds else [])
        rows.append(row + _metric_columns(ctx, name, "validation"))
    n = ctx.metrics(BASELINE, "validation").n if "validation" in ctx.baseline.metrics else "?"
    return Table(headers, rows, caption=f"Validation set (n = {n}), used for early stopping")


def cost_table(ctx: ReportContext) -> Table:
    """Size, training cost, final training loss and measured inference speed per model."""
    headers = ["model", "parameters", "trainable", "size on disk (MiB)", "training time (s)", "final training loss",
               "latency, 1 text (ms, median)", "throughput (texts/s)"]
    rows = []
    for name, m in ctx.models.items():
        size = fmt.num(m.size_mb, 1)
        if m.adapter_size_mb is not None:
            size += f" (adapter {m.adapter_size_mb:.2f})"
        speed = ctx.speed_of(name)
        rows.append([name, fmt.params(m.params), fmt.params(m.trainable_params), size,
                     fmt.num(m.train_seconds, 1), fmt.num(m.train_loss, 4),
                     fmt.num(speed.latency_ms, 2) if speed else "not measured",
                     fmt.num(speed.throughput, 1) if speed else "not measured"])
    if not ctx.majority_in_run:
        rows.append([BASELINE, "0", "0", "0", "0", fmt.DASH, fmt.DASH, fmt.DASH])
    caption = "Cost. " + (f"Speed measured on this machine ({ctx.speed.machine}; device "
                          f"{_devices(ctx)}) on {ctx.speed.texts}" if ctx.speed else
                          "Speed not measured (the run had --no-speed)")
    return Table(headers, rows, caption=caption)


def _devices(ctx: ReportContext) -> str:
    return ", ".join(sorted({s.device or "?" for s in ctx.speed.models.values()})) if ctx.speed else "?"


def comparison_table(ctx: ReportContext) -> Table:
    """Paired comparisons on the same test items: macro-F1 difference with CI, and McNemar's exact test."""
    headers = ["A vs B", "kind", "macro-F1 A", "macro-F1 B", "A − B [95 % CI]", "difference significant?",
               "only A right", "only B right", "McNemar p", "Holm-adjusted p", "errors differ?"]
    rows = []
    for c in ctx.statistics.comparisons:
        mc = c.mcnemar
        rows.append([
            f"{c.a} vs {c.b}", c.kind, fmt.num(ctx.intervals[c.a].macro_f1.estimate),
            fmt.num(ctx.intervals[c.b].macro_f1.estimate), fmt.signed_ci(c.macro_f1_difference),
            "yes" if c.difference_significant else "no (CI contains 0)",
            str(mc.a_only_correct), str(mc.b_only_correct), fmt.p_value(mc.p_value), fmt.p_value(mc.p_holm),
            "yes" if c.mcnemar_significant else "no",
        ])
    alpha = ctx.statistics.method.alpha
    right = " ('right': every label of the item right; per label in the next table)" if ctx.multi_label else ""
    return Table(headers, rows, numeric=[False, False] + [True] * 3 + [False, True, True, True, True, False],
                 caption=f"Paired on the same test items{right}. Significance at {alpha:g}: macro-F1 difference "
                         f"when its paired-bootstrap CI excludes 0; errors when McNemar's exact p (Holm-adjusted) < "
                         f"{alpha:g}")


def seed_table(ctx: ReportContext) -> Table | None:
    """Mean ± std over seeds next to the single-seed CI; None when every model has a single seed."""
    if not ctx.any_multi_seed:
        return None
    headers = ["model", "seeds", f"test {accuracy_name(ctx)} (mean ± std)", "test macro-F1 (mean ± std)",
               "validation macro-F1 (mean ± std)", "test macro-F1, main seed [95 % CI]"]
    rows = []
    for name in ctx.models:
        s = ctx.seeds.get(name)
        if not s:
            continue
        rows.append([name, ", ".join(map(str, s.seeds)), fmt.mean_std(s.of("test", "accuracy")),
                     fmt.mean_std(s.of("test", "macro_f1")), fmt.mean_std(s.of("validation", "macro_f1")),
                     fmt.ci(_interval(ctx, name, "macro_f1"))])
    return Table(headers, rows, caption="Across seeds (std with ddof = 1); the CI column is the bootstrap interval of "
                                        "the main run's predictions")


def data_table(ctx: ReportContext) -> Table:
    """Rows used and dropped per split, with class counts (positives per label for a multi-label run) when
    results.json has them."""
    headers = ["split", "rows used", "dropped", "reasons", "positives per label" if ctx.multi_label else "class counts"]
    rows = []
    for split, info in ctx.results.data_report.items():
        if info.rows is None:
            continue
        reasons = ", ".join(f"{k}: {v}" for k, v in info.reasons.items() if v) or info.note or "none"
        counts_text = ", ".join(f"{label}: {c}" for label, c in zip(ctx.labels, info.label_counts, strict=False)) \
            if info.label_counts else "not recorded"
        rows.append([split, str(info.rows), str(info.dropped), reasons, counts_text])
    return Table(headers, rows, numeric=[False, True, True, False, False])


def importance_table(name: str, importance: dict) -> Table:
    """One row per elimination step: the layers kept, every candidate's score, and the layer removed."""
    headers = ["step", "layers kept before", "validation loss with each layer removed", "removed",
               "loss without it", "macro-F1 without it"]
    rows = []
    for number, step in enumerate(importance.get("steps") or [], 1):
        candidates = sorted(step.get("candidates") or [], key=lambda c: c.get("layer", 0))
        removed = next((c for c in candidates if c.get("layer") == step.get("removed")), {})
        scores = ", ".join(f"{c.get('layer')}: {fmt.num(c.get('loss'))}" for c in candidates)
        rows.append([str(number), ",".join(map(str, step.get("kept") or [])), scores, str(step.get("removed")),
                     fmt.num(removed.get("loss")), fmt.num(removed.get("macro_f1"))])
    chosen = ",".join(map(str, importance.get("chosen") or [])) or "?"
    return Table(headers, rows, numeric=[True, False, False, True, True, True],
                 caption=f"Greedy layer elimination for {name}: at each step the teacher is scored with each kept "
                         f"layer removed and the least missed layer goes (criterion: "
                         f"{importance.get('criterion', '?')}); chosen layers {chosen}")
