"""The report's tables, one function each, built from a :class:`ReportContext`."""

from __future__ import annotations

from distilora.report import formatting as f
from distilora.report.context import BASELINE, ReportContext
from distilora.report.document import Table


def _layers(entry: dict) -> str:
    """``1,3,5``, ``all 6``, or ``none`` for a model without an encoder (TF-IDF, majority)."""
    if entry.get("layers"):
        return ",".join(map(str, entry["layers"]))
    return "none" if entry.get("num_layers") == 0 else f"all {entry.get('num_layers', '?')}"


def _depth(entry: dict) -> str:
    """``3 (1,3,5)``, ``6 (all)`` or ``0``."""
    n = entry.get("num_layers")
    if entry.get("layers"):
        return f"{n if n is not None else len(entry['layers'])} ({_layers(entry)})"
    return "0" if n == 0 else f"{n if n is not None else '?'} (all)"


def _collapsed(ctx: ReportContext, name: str) -> str:
    flag = ctx.collapse(name).get("collapsed")
    return f.DASH if flag is None else ("⚠ collapsed" if flag else "no")


def _validation_f1(ctx: ReportContext, name: str) -> float | None:
    try:
        return ctx.metrics(name, "validation").get("macro_f1")
    except KeyError:
        return None


def _leaderboard_row(ctx: ReportContext, name: str) -> list[str]:
    if name == BASELINE:
        kind, depth, params, trained, size = f"baseline (always '{ctx.baseline.label}')", "0", "0", "0", "0"
    else:
        m = ctx.models[name]
        kind, depth, size = m.get("route", "?"), _depth(m), f.num(m.get("size_mb"), 1)
        params, trained = f.params(m.get("params")), f.params(m.get("trainable_params"))
    speed = ctx.speed_of(name)
    latency = f.num(speed["latency_ms"], 2) if speed else (f.DASH if name == BASELINE else "not measured")
    interval = ctx.intervals.get(name, {}).get("macro_f1")
    test = f.ci(interval) if interval else f.num(ctx.test_f1(name))
    return [name, kind, test, f.num(_validation_f1(ctx, name)), depth, params, trained, size, latency,
            _collapsed(ctx, name)]


def leaderboard(ctx: ReportContext) -> Table:
    """Every model (and the majority baseline) by test macro-F1, best first, with depth, size and latency."""
    names = sorted(ctx.rows, key=lambda n: -(ctx.test_f1(n) if ctx.test_f1(n) is not None else -1.0))
    headers = ["rank", "model", "kind", "test macro-F1 [95 % CI]", "validation macro-F1", "depth (layers)",
               "parameters", "trained parameters", "size (MB)", "latency, 1 text (ms)", "collapsed?"]
    rows = [[str(rank), *_leaderboard_row(ctx, name)] for rank, name in enumerate(names, 1)]
    return Table(headers, rows, numeric=[True, False, False, True, True, False, True, True, True, True, False],
                 caption="Leaderboard: every model by test macro-F1, best first (95 % percentile bootstrap CIs); "
                         "size in MiB on disk; latency: median single-text time; ⚠ collapsed: flagged by the run's "
                         "collapse check (see the findings)")


def _metric_columns(ctx: ReportContext, name: str, split: str) -> list[str]:
    m = ctx.metrics(name, split)
    per_class = m.get("f1_per_class") or []
    return [f.num(m.get("precision")), f.num(m.get("recall"))] + \
        [f.num(per_class[i] if i < len(per_class) else None) for i in range(len(ctx.labels))] + [f.num(m.get("loss"))]


def _seed_cell(ctx: ReportContext, name: str, split: str, metric: str = "macro_f1") -> str:
    if not ctx.multi_seed(name):
        return "1 seed" if name in ctx.seeds else f.DASH
    summary = ctx.seeds[name]
    return f"{f.mean_std(summary.get(split, {}).get(metric))} (n={summary['n_seeds']})"


def test_table(ctx: ReportContext) -> Table:
    """Test metrics per model with bootstrap CIs (and seed mean ± std next to them when there are seeds)."""
    seeds = ctx.any_multi_seed
    headers = ["model", "route", "layers", "accuracy [95 % CI]", "macro-F1 [95 % CI]"]
    headers += ["macro-F1 over seeds (mean ± std)"] if seeds else []
    headers += ["precision (macro)", "recall (macro)"] + [f"F1 {label}" for label in ctx.labels] + ["loss"]
    rows = []
    for name in ctx.rows:
        intervals = ctx.intervals.get(name, {})
        if name == BASELINE:
            route, layers = f"always '{ctx.baseline.label}'", f.DASH
        else:
            route, layers = ctx.models[name].get("route", "?"), _layers(ctx.models[name])
        row = [name, route, layers, f.ci(intervals.get("accuracy")), f.ci(intervals.get("macro_f1"))]
        row += [_seed_cell(ctx, name, "test")] if seeds else []
        rows.append(row + _metric_columns(ctx, name, "test"))
    n = ctx.statistics["method"]["n_items"]
    return Table(headers, rows, caption=f"Test set (n = {n}); intervals: 95 % percentile bootstrap, "
                                        f"{ctx.statistics['method']['resamples']:,} resamples",
                 numeric=[False, False, False] + [True] * (len(headers) - 3))


def validation_table(ctx: ReportContext) -> Table:
    """Validation metrics per model (the split early stopping chose checkpoints on)."""
    seeds = ctx.any_multi_seed
    headers = ["model", "accuracy", "macro-F1"] + (["macro-F1 over seeds (mean ± std)"] if seeds else [])
    headers += ["precision (macro)", "recall (macro)"] + [f"F1 {label}" for label in ctx.labels] + ["loss"]
    rows = []
    for name in ctx.rows:
        try:
            m = ctx.metrics(name, "validation")
        except KeyError:
            continue
        row = [name, f.num(m["accuracy"]), f.num(m["macro_f1"])] + ([_seed_cell(ctx, name, "validation")]
                                                                     if seeds else [])
        rows.append(row + _metric_columns(ctx, name, "validation"))
    n = ctx.metrics(BASELINE, "validation")["n"] if "validation" in ctx.baseline.metrics else "?"
    return Table(headers, rows, caption=f"Validation set (n = {n}), used for early stopping")


def cost_table(ctx: ReportContext) -> Table:
    """Size, training cost, final training loss and measured inference speed per model."""
    headers = ["model", "parameters", "trainable", "size on disk (MiB)", "training time (s)", "final training loss",
               "latency, 1 text (ms, median)", "throughput (texts/s)"]
    rows = []
    for name, m in ctx.models.items():
        size = f.num(m.get("size_mb"), 1)
        if m.get("adapter_size_mb") is not None:
            size += f" (adapter {m['adapter_size_mb']:.2f})"
        speed = ctx.speed_of(name)
        rows.append([name, f.params(m.get("params")), f.params(m.get("trainable_params")), size,
                     f.num(m.get("train_seconds"), 1), f.num(m.get("train_loss"), 4),
                     f.num(speed["latency_ms"], 2) if speed else "not measured",
                     f.num(speed["throughput"], 1) if speed else "not measured"])
    if not ctx.majority_in_run:
        rows.append([BASELINE, "0", "0", "0", "0", f.DASH, f.DASH, f.DASH])
    caption = "Cost. " + (f"Speed measured on this machine ({ctx.speed['machine']}; device "
                          f"{_devices(ctx)}) on {ctx.speed['texts']}" if ctx.speed else
                          "Speed not measured (the run had --no-speed)")
    return Table(headers, rows, caption=caption)


def _devices(ctx: ReportContext) -> str:
    return ", ".join(sorted({s.get("device", "?") for s in ctx.speed["models"].values()})) if ctx.speed else "?"


def comparison_table(ctx: ReportContext) -> Table:
    """Paired comparisons on the same test items: macro-F1 difference with CI, and McNemar's exact test."""
    headers = ["A vs B", "kind", "macro-F1 A", "macro-F1 B", "A − B [95 % CI]", "difference significant?",
               "only A right", "only B right", "McNemar p", "Holm-adjusted p", "errors differ?"]
    rows = []
    for c in ctx.statistics["comparisons"]:
        mc = c["mcnemar"]
        rows.append([
            f"{c['a']} vs {c['b']}", c["kind"], f.num(ctx.intervals[c["a"]]["macro_f1"]["estimate"]),
            f.num(ctx.intervals[c["b"]]["macro_f1"]["estimate"]), f.signed_ci(c["macro_f1_difference"]),
            "yes" if c["difference_significant"] else "no (CI contains 0)",
            str(mc["a_only_correct"]), str(mc["b_only_correct"]), f.p_value(mc["p_value"]), f.p_value(mc["p_holm"]),
            "yes" if c["mcnemar_significant"] else "no",
        ])
    alpha = ctx.statistics["method"]["alpha"]
    return Table(headers, rows, numeric=[False, False] + [True] * 3 + [False, True, True, True, True, False],
                 caption=f"Paired on the same test items. Significance at {alpha:g}: macro-F1 difference when its "
                         f"paired-bootstrap CI excludes 0; errors when McNemar's exact p (Holm-adjusted) < {alpha:g}")


def seed_table(ctx: ReportContext) -> Table | None:
    """Mean ± std over seeds next to the single-seed CI; None when every model has a single seed."""
    if not ctx.any_multi_seed:
        return None
    headers = ["model", "seeds", "test accuracy (mean ± std)", "test macro-F1 (mean ± std)",
               "validation macro-F1 (mean ± std)", "test macro-F1, main seed [95 % CI]"]
    rows = []
    for name in ctx.models:
        s = ctx.seeds.get(name)
        if not s:
            continue
        rows.append([name, ", ".join(map(str, s["seeds"])), f.mean_std(s.get("test", {}).get("accuracy")),
                     f.mean_std(s.get("test", {}).get("macro_f1")), f.mean_std(s.get("validation", {}).get("macro_f1")),
                     f.ci(ctx.intervals.get(name, {}).get("macro_f1"))])
    return Table(headers, rows, caption="Across seeds (std with ddof = 1); the CI column is the bootstrap interval of "
                                        "the main run's predictions")


def data_table(ctx: ReportContext) -> Table:
    """Rows used and dropped per split, with class counts when results.json has them."""
    report = ctx.results.get("data_report", {})
    headers = ["split", "rows used", "dropped", "reasons", "class counts"]
    rows = []
    for split, info in report.items():
        if not isinstance(info, dict) or "rows" not in info:
            continue
        reasons = ", ".join(f"{k}: {v}" for k, v in info.get("reasons", {}).items() if v) or info.get("note", "none")
        split_counts = info.get("label_counts")
        counts_text = ", ".join(f"{label}: {c}" for label, c in zip(ctx.labels, split_counts, strict=False)) \
            if split_counts else "not recorded"
        rows.append([split, str(info["rows"]), str(info.get("dropped", 0)), reasons, counts_text])
    return Table(headers, rows, numeric=[False, True, True, False, False])


def importance_table(name: str, importance: dict) -> Table:
    """One row per elimination step: the layers kept, every candidate's score, and the layer removed."""
    headers = ["step", "layers kept before", "validation loss with each layer removed", "removed",
               "loss without it", "macro-F1 without it"]
    rows = []
    for number, step in enumerate(importance.get("steps") or [], 1):
        candidates = sorted(step.get("candidates") or [], key=lambda c: c.get("layer", 0))
        removed = next((c for c in candidates if c.get("layer") == step.get("removed")), {})
        scores = ", ".join(f"{c.get('layer')}: {f.num(c.get('loss'))}" for c in candidates)
        rows.append([str(number), ",".join(map(str, step.get("kept") or [])), scores, str(step.get("removed")),
                     f.num(removed.get("loss")), f.num(removed.get("macro_f1"))])
    chosen = ",".join(map(str, importance.get("chosen") or [])) or "?"
    return Table(headers, rows, numeric=[True, False, False, True, True, True],
                 caption=f"Greedy layer elimination for {name}: at each step the teacher is scored with each kept "
                         f"layer removed and the least missed layer goes (criterion: "
                         f"{importance.get('criterion', '?')}); chosen layers {chosen}")
