"""Checks as text: the report's "Behavioural checks" section and the compact tables ``distilora check`` prints.

Built from the checks' JSON only (the report never runs a model).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from distilora.checks.bias_render import bias_tables
from distilora.checks.bias_render import lead as bias_lead
from distilora.checks.files import RunChecks
from distilora.checks.plots import accuracy_heatmap
from distilora.render import formatting as fmt
from distilora.render.document import Block, Bullets, Image, Section, Table
from distilora.run_dir import RunLayout

SECTION_TITLE = "Behavioural checks"


def _acc(row: Mapping) -> str:
    if row["accuracy"] is None:
        return f"{fmt.DASH} (n=0)"
    return f"{row['accuracy']:.2f} [{row['low']:.2f}, {row['high']:.2f}]"


def summary_line(check: Mapping) -> str:
    """Where the cases came from, how labels map, and the threshold."""
    suite = check["suite"]
    mapping = ", ".join(f"{gold} → {run}" for gold, run in check["label_mapping"].items())
    return (f"Check '{check['name']}': {suite['used']} cases from {Path(suite['file']).name} ({suite['format']} "
            f"format; {suite['dropped_blank_text']} dropped for a blank text); gold labels {mapping} "
            f"({check['label_mapping_source']}); threshold: {check['threshold']} (as in the run's metrics; tuned "
            f"thresholds not applied); intervals: {check['interval']}.")


def overall_table(check: Mapping) -> Table:
    """Accuracy, macro-F1 and cases per model; a multi-label check adds each label's F1 (accuracy: all labels
    right)."""
    per_label = [label for label in check["labels"] if all("per_label_f1" in o for o in check["overall"].values())]
    rows = [[name, fmt.num(o["accuracy"]), fmt.num(o["macro_f1"]), str(o["n"])]
            + [fmt.num(o["per_label_f1"][label]) for label in per_label] for name, o in check["overall"].items()]
    headers = ["model", "accuracy (all labels right)" if per_label else "accuracy", "macro-F1", "cases"]
    return Table(headers + [f"F1 {label}" for label in per_label], rows,
                 caption=f"Check '{check['name']}': whole suite")


def accuracy_table(check: Mapping, grouping: Mapping) -> Table:
    """One row per group: n, dropped, and each model's accuracy with its Wilson interval."""
    models = list(check["models"])
    rows = []
    for i, group in enumerate(grouping["groups"]):
        rows.append([group["group"], str(group["n"]), str(group["dropped"])]
                    + [_acc(grouping["accuracy"][m][i]) for m in models])
    return Table(["group", "n", "dropped"] + models, rows,
                 caption=f"Check '{check['name']}': accuracy by {grouping['column']} [{check['interval']}]")


def broke_rows(check: Mapping, grouping: Mapping, limit: int | None = None) -> list[list[str]]:
    """Per model, the groups whose accuracy fell against the teacher (largest fall first; ``limit`` per model)."""
    rows = []
    for model, entries in grouping["broke"].items():
        fell = [e for e in entries if e["change"] < 0][:limit]
        for e in fell:
            rows.append([model, e["group"], str(e["n"]), fmt.num(e["teacher_accuracy"], 2),
                         fmt.num(e["model_accuracy"], 2), fmt.signed(e["change"], 2), str(e["teacher_only_correct"]),
                         str(e["model_only_correct"]), fmt.p_value(e["p_value"]), fmt.p_value(e["p_holm"])])
        if not fell:
            rows.append([model, "(no group fell)", "", "", "", "", "", "", "", ""])
    return rows


BROKE_HEADERS = ["model", "group", "n", "teacher acc", "model acc", "change", "teacher right / model wrong",
                 "model right / teacher wrong", "McNemar p", "Holm p"]


def broke_table(check: Mapping, grouping: Mapping) -> Table:
    return Table(BROKE_HEADERS, broke_rows(check, grouping),
                 caption=f"Check '{check['name']}': what compression broke, by {grouping['column']} — groups whose "
                         f"accuracy fell against the fine-tuned teacher '{check['teacher']}'; McNemar's exact test per "
                         "group, Holm-adjusted across the groups",
                 numeric=[False, False] + [True] * 8)


def examples(check: Mapping, grouping: Mapping) -> list[str]:
    """'model, group: "text" (gold …, teacher …, model …)' for the worst groups' example cases."""
    items = []
    for model, entries in grouping["broke"].items():
        for e in entries:
            for case in e.get("examples", []):
                items.append(f"{model}, {e['group']}: \"{case['text']}\" (gold {case['gold']}; teacher "
                             f"{case['teacher']}; {model} {case['model']})")
    return items


def check_section(run_dir: RunLayout, checks: Mapping[str, Mapping]) -> tuple[Section, list[Path]]:
    """The report's section for every check (tables and re-drawn heat-maps), and the plot files it wrote."""
    blocks: list[Block] = []
    written = []
    for name, check in checks.items():
        blocks += [summary_line(check), overall_table(check)]
        for grouping in check["groupings"]:
            path = accuracy_heatmap(check, grouping, RunChecks(run_dir).plot(name, grouping["column"]))
            written.append(path)
            blocks += [accuracy_table(check, grouping),
                       Image(path, f"Accuracy by {grouping['column']} and model",
                             "Accuracy per group (rows) and model (columns); grey: no cases left.")]
            if grouping["broke"]:
                blocks.append(broke_table(check, grouping))
                cases = examples(check, grouping)
                if cases:
                    blocks += ["Example cases the teacher got right and the model got wrong (from the suite file):",
                               Bullets(cases)]
        if check.get("bias"):
            blocks += [bias_lead(check), *bias_tables(check)]
        if check.get("notes"):
            blocks.append(Bullets([f"Note: {note}" for note in check["notes"]]))
    return Section(SECTION_TITLE, blocks), written


def text_table(table: Table) -> str:
    """A fixed-width table for the terminal."""
    cells = [table.headers, *table.rows]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(table.headers))]

    def line(row: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if table.is_numeric(i) and row is not table.headers else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([table.caption, line(table.headers), rule, *map(line, table.rows)])


def terminal_summary(check: Mapping, worst: int) -> str:
    """What ``distilora check`` prints: the mapping, overall scores, the first grouping's accuracies, what broke."""
    parts = [summary_line(check), text_table(overall_table(check))]
    for grouping in check["groupings"][:1]:
        parts.append(text_table(accuracy_table(check, grouping)))
        if grouping["broke"]:
            parts.append(text_table(Table(BROKE_HEADERS, broke_rows(check, grouping, worst),
                                          caption=f"What compression broke: the {worst} largest falls per model "
                                                  f"against the teacher '{check['teacher']}'",
                                          numeric=[False, False] + [True] * 8)))
    parts += [text_table(table) for table in bias_tables(check, worst)]
    parts += [f"Note: {note}" for note in check.get("notes", [])]
    return "\n\n".join(parts)
