"""The report's "Tuned at equal budget" section: each route ``distilora tune`` tuned against its default (validation,
test with CIs, the paired tests), the leaderboard at equal budget beside the default one, what each study spent, its
best settings, parameter importances and trial history. Read from ``tune.json`` and the run's results: the report
runs no study."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from distilora.render import formatting as fmt
from distilora.render.document import Block, Bullets, Image, Section, Table
from distilora.render.figures import save_figure
from distilora.report.analysis import TUNED_ABLATION, tuned_defaults
from distilora.report.context import ReportContext
from distilora.report.plots import PALETTE, file_stem
from distilora.results import Comparison, TrialPoint, TunedRoute
from distilora.routes.tuned import TUNED_FROM

STATE_STYLES = {"complete": {"marker": "o", "color": PALETTE[0]}, "pruned": {"marker": "x", "color": PALETTE[1]},
                "fail": {"marker": "v", "color": "grey"}}


def tuned_models(ctx: ReportContext) -> dict[str, str]:
    """``{route: its tuned model}`` for every tuned model of the run whose route is in the run too."""
    return {default: tuned for tuned, default in tuned_defaults(ctx.models).items()}


def _test(ctx: ReportContext, name: str | None) -> str:
    if name is None:
        return "not evaluated"
    interval = ctx.intervals.get(name)
    return fmt.ci(interval.macro_f1) if interval else fmt.num(ctx.test_f1(name))


def _route_row(ctx: ReportContext, record: TunedRoute, tuned: str | None) -> list[str]:
    comparison = ctx.comparison(tuned, record.route) if tuned else None
    paired = [fmt.signed_ci(comparison.macro_f1_difference), fmt.p_value(comparison.mcnemar.p_value),
              fmt.p_value(comparison.mcnemar.p_holm)] if comparison else [fmt.DASH] * 3
    return [record.route, f"{record.trials} ({record.complete} / {record.pruned} / {record.failed})",
            fmt.num(record.seconds, 0), fmt.num(record.default_macro_f1, 4), fmt.num(record.best_macro_f1, 4),
            _test(ctx, record.route if record.route in ctx.models else None), _test(ctx, tuned), *paired]


def default_vs_tuned_table(ctx: ReportContext) -> Table:
    """Per tuned route: its budget, validation and test macro-F1 at default and tuned settings, the paired tests."""
    tuned = tuned_models(ctx)
    headers = ["route", "trials (complete / pruned / failed)", "wall (s)", "validation, default",
               "validation, tuned", "test, default [95 % CI]", "test, tuned [95 % CI]",
               "tuned − default [95 % CI]", "McNemar p", "Holm-adjusted p"]
    rows = [_route_row(ctx, record, tuned.get(route)) for route, record in ctx.tuning.items()]
    return Table(headers, rows, numeric=[False] + [True] * 9,
                 caption="Validation macro-F1 at the best epoch of the default trial (the study's first) and of the "
                         "best trial; test macro-F1 of the run's default model and of the tuned one, evaluated once "
                         "each; tuned − default: paired bootstrap on the same test items; McNemar's exact test on "
                         "their errors, Holm-adjusted over the report's comparisons")


def _ranked(ctx: ReportContext, names: Sequence[str]) -> list[str]:
    return sorted(names, key=lambda name: -(ctx.test_f1(name) or 0.0))


def leaderboards(ctx: ReportContext) -> tuple[list[str], list[str]]:
    """The models at default settings, and at equal budget (each tuned route's tuned model in its place), by test
    macro-F1, best first; baselines and untuned routes are in both."""
    tuned = tuned_models(ctx)
    defaults = [name for name, entry in ctx.models.items() if TUNED_FROM not in entry.details]
    return _ranked(ctx, defaults), _ranked(ctx, [tuned.get(name, name) for name in defaults])


def leaderboard_table(ctx: ReportContext) -> Table:
    at_default, at_budget = leaderboards(ctx)
    rows = [[str(rank), default, _test(ctx, default), budget, _test(ctx, budget)]
            for rank, (default, budget) in enumerate(zip(at_default, at_budget, strict=True), 1)]
    return Table(["rank", "at default settings", "test macro-F1 [95 % CI]", "at equal budget",
                  "test macro-F1 [95 % CI]"], rows, numeric=[True, False, True, False, True],
                 caption="Both leaderboards by test macro-F1; at equal budget every tuned route is replaced by its "
                         "tuned model (routes not tuned keep their defaults)")


def _half_depth(ctx: ReportContext, names: Sequence[str]) -> list[str]:
    """The students among ``names``: models with an encoder shallower than the teacher's."""
    teacher_depth = ctx.models[ctx.teacher].num_layers if ctx.teacher else None
    return [name for name in names if teacher_depth and 0 < (ctx.models[name].num_layers or 0) < teacher_depth]


def ranking_sentence(ctx: ReportContext) -> str:
    """Which half-depth route loses least at default settings and at equal budget, and whether that changed."""
    at_default, at_budget = (_half_depth(ctx, names) for names in leaderboards(ctx))
    if not at_default:
        return "The run has no half-depth student, so the half-depth question does not arise."
    before, after = at_default[0], at_budget[0]
    base = ctx.models[after].details.get(TUNED_FROM, after)
    verdict = "unchanged" if base == before else f"changed: {base} now loses least instead of {before}"
    return (f"Which half-depth route loses least: at default settings {before} ({fmt.num(ctx.test_f1(before))} "
            f"test macro-F1); at equal budget {after} ({fmt.num(ctx.test_f1(after))}) — the answer is {verdict}.")


def distillation_sentence(ctx: ReportContext) -> str | None:
    """Whether distillation still adds or subtracts against the labels-only student when both are tuned."""
    tuned = next((c for c in ctx.statistics.comparisons if c.kind == TUNED_ABLATION), None)
    if tuned is None:
        return None
    default = ctx.comparison(ctx.models[tuned.a].details[TUNED_FROM], ctx.models[tuned.b].details[TUNED_FROM])
    def words(c: Comparison) -> str:
        sign = "adds" if c.macro_f1_difference.estimate > 0 else "subtracts"
        verdict = "significant" if c.difference_significant else "the CI contains 0"
        return f"{c.a} − {c.b} = {fmt.signed_ci(c.macro_f1_difference)} ({sign}; {verdict})"
    before = f"; at default settings {words(default)}" if default else ""
    return f"Distillation against the labels-only student, both tuned at equal budget: {words(tuned)}{before}."


def budget_sentence(tuning: dict[str, TunedRoute]) -> str:
    budgets = {record.route: record.trials for record in tuning.values()}
    if len(set(budgets.values())) == 1:
        return (f"Budget: {next(iter(budgets.values()))} trials per route, pruned and failed trials counted, the "
                f"same sampler seed for every route ({len(budgets)} route(s)).")
    listed = ", ".join(f"{route} {trials}" for route, trials in budgets.items())
    return f"Warning: the routes were not tuned at one budget ({listed} trials), so the comparison is not at equal " \
           f"budget; run `distilora tune` again with one --trials for all of them."


def settings_bullets(tuning: dict[str, TunedRoute]) -> Bullets:
    def line(record: TunedRoute) -> str:
        settings = ", ".join(f"{key} = {_setting(value)}" for key, value in record.best_settings.items())
        return f"{record.route}: trial {record.best_trial} — {settings or 'none'}"
    return Bullets([line(record) for record in tuning.values()])


def _setting(value: object) -> str:
    if isinstance(value, list | tuple):
        return ",".join(_setting(item) for item in value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def importance_table(tuning: dict[str, TunedRoute]) -> Table:
    rows = [[record.route, ", ".join(f"{name} {share:.2f}" for name, share in
                                     sorted(record.importances.items(), key=lambda item: -item[1]))
             or (record.importance_note or fmt.DASH)] for record in tuning.values()]
    return Table(["route", "parameter importance for validation macro-F1 (fANOVA, summing to 1)"], rows,
                 numeric=[False, False], caption="optuna.importance over each study's finished trials")


def trial_history_plot(record: TunedRoute, path: Path) -> Path:
    """Each trial's validation macro-F1 by state, the best so far, and the default trial's value."""
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for state, style in STATE_STYLES.items():
        points = [p for p in record.history if p.state == state and p.macro_f1 is not None]
        if points:
            ax.scatter([p.number for p in points], [p.macro_f1 for p in points], label=state, **style)
    best = _best_so_far(record.history)
    if best:
        ax.step([n for n, _ in best], [v for _, v in best], where="post", color="black", label="best so far")
    if record.default_macro_f1 is not None:
        ax.axhline(record.default_macro_f1, color="grey", linestyle="--", label="default settings")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation macro-F1")
    ax.set_title(f"Trials of {record.route} ({record.trials}: {record.pruned} pruned)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _best_so_far(history: Sequence[TrialPoint]) -> list[tuple[int, float]]:
    points, best = [], None
    for point in history:
        if point.state == "complete" and point.macro_f1 is not None:
            best = point.macro_f1 if best is None else max(best, point.macro_f1)
        if best is not None:
            points.append((point.number, best))
    return points


def tuning_plots(ctx: ReportContext, out: Path) -> dict[str, Path]:
    return {f"tuning:{route}": trial_history_plot(record, out / f"tuning_{file_stem(route)}.png")
            for route, record in ctx.tuning.items() if record.history}


def tuning_section(ctx: ReportContext, figures: dict[str, Path]) -> Section | None:
    """The section, or None when the run has no ``tune.json``."""
    if not ctx.tuning:
        return None
    blocks: list[Block] = [budget_sentence(ctx.tuning), default_vs_tuned_table(ctx), ranking_sentence(ctx),
                           *filter(None, [distillation_sentence(ctx)]), leaderboard_table(ctx),
                           "Best settings found:", settings_bullets(ctx.tuning), importance_table(ctx.tuning)]
    blocks += [Image(figures[f"tuning:{route}"], f"Trial history of {route}",
                     "Points: each trial's validation macro-F1 (pruned: its last evaluation); line: the best "
                     "finished trial so far; dashed: the default settings.")
               for route in ctx.tuning if f"tuning:{route}" in figures]
    return Section("Tuned at equal budget", blocks)
