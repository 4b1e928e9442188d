"""A check's bias block as tables: every model's identity AUCs and final bias metric, and what compression did to
each identity against the teacher. Built from the check's JSON only."""

from __future__ import annotations

from collections.abc import Mapping

from distilora.render import formatting as fmt
from distilora.render.document import Table

METRIC_NAMES = {"overall": "overall AUC", "subgroup": "subgroup AUC", "bpsn": "BPSN AUC", "bnsp": "BNSP AUC"}


def _with_interval(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return fmt.DASH
    return f"{value:.3f}" if low is None or high is None else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _signed_interval(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return fmt.DASH
    return fmt.signed(value) if low is None or high is None else f"{value:+.3f} [{low:+.3f}, {high:+.3f}]"


def lead(check: Mapping) -> str:
    """What the bias metrics are, over which column, and how their intervals were made."""
    bias = check["bias"]
    return (f"Bias metrics of check '{check['name']}' by {bias['identity_column']} (score: the probability of "
            f"{bias['positive_label']!r}): subgroup AUC over the cases mentioning an identity, BPSN over the "
            f"{bias['positive_label']} cases not mentioning it plus the other cases mentioning it, BNSP over the "
            f"reverse; the final bias metric is 0.25 × overall AUC + 0.25 × the power mean (p = {bias['power']:g}) "
            f"over identities of each of the three. Intervals: {bias['interval']}.")


def bias_table(check: Mapping) -> Table:
    """Rows: each identity's three AUCs with n, the overall AUC, the power means and the final metric; a column per
    model."""
    bias = check["bias"]
    models = list(bias["models"])
    first = bias["models"][models[0]]
    rows = []
    if first["overall"] is not None:
        rows.append(["(all cases)", METRIC_NAMES["overall"], str(first["overall"]["n"])]
                    + [_with_interval(*(bias["models"][m]["overall"][k] for k in ("auc", "low", "high")))
                       for m in models])
    for i, auc in enumerate(first["aucs"]):
        rows.append([auc["identity"], METRIC_NAMES[auc["metric"]], str(auc["n"])]
                    + [_with_interval(*(bias["models"][m]["aucs"][i][k] for k in ("auc", "low", "high")))
                       for m in models])
    for metric in ("subgroup", "bpsn", "bnsp"):
        rows.append([f"power mean (p = {bias['power']:g})", METRIC_NAMES[metric], ""]
                    + [fmt.num(bias["models"][m]["power_means"][metric]) for m in models])
    rows.append(["final bias metric", "", ""]
                + [_with_interval(*(bias["models"][m]["final"][k] for k in ("estimate", "low", "high")))
                   for m in models])
    return Table(["identity", "metric", "n"] + models, rows,
                 caption=f"Check '{check['name']}': bias metrics by {bias['identity_column']} (AUC [interval])",
                 numeric=[False, False] + [True] * (1 + len(models)))


CHANGE_HEADERS = ["model", "identity", "metric", "teacher AUC", "model AUC", "change [interval]", "bootstrap p",
                  "Holm p"]


def change_rows(check: Mapping, limit: int | None = None) -> list[list[str]]:
    """Per compressed model: the final metric's change, then the identity AUCs that fell (largest first)."""
    rows = []
    for model, change in check["bias"]["changes"].items():
        final = change["final"]
        rows.append([model, "(all)", "final bias metric", "", "",
                     _signed_interval(final["estimate"], final["low"], final["high"]), "", ""])
        fell = [r for r in change["rows"] if r["change"] < 0][:limit]
        for r in fell:
            rows.append([model, r["identity"], METRIC_NAMES[r["metric"]], fmt.num(r["teacher_auc"]),
                         fmt.num(r["model_auc"]), _signed_interval(r["change"], r["low"], r["high"]),
                         fmt.p_value(r["p_value"]), fmt.p_value(r["p_holm"])])
        if not fell:
            rows.append([model, "(no identity AUC fell)", "", "", "", "", "", ""])
    return rows


def change_table(check: Mapping, limit: int | None = None) -> Table:
    return Table(CHANGE_HEADERS, change_rows(check, limit),
                 caption=f"Check '{check['name']}': which identity got worse against the teacher "
                         f"'{check['teacher']}' — identity AUCs that fell, largest fall first (paired bootstrap: the "
                         "same resampled cases for both models; Holm across one model's identity AUCs)",
                 numeric=[False, False, False] + [True] * 5)


def bias_tables(check: Mapping, limit: int | None = None) -> list[Table]:
    """The bias tables of a check (none when it has no bias block)."""
    if not check.get("bias"):
        return []
    tables = [bias_table(check)]
    if check["bias"]["changes"]:
        tables.append(change_table(check, limit))
    return tables
