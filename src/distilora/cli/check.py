"""``distilora check``: run a run's models on a behavioural test suite and write ``checks/NAME.json``."""

from __future__ import annotations

import argparse

from distilora.config import CheckConfig

HELP = "run every model of a run on a behavioural test suite (CSV / JSONL / Parquet, e.g. HateCheck's format)"


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = CheckConfig()
    parser.add_argument("--run", required=True, help="a run directory made by distilora run")
    parser.add_argument("--suite", required=True, help="the suite file (.csv, .jsonl or .parquet)")
    parser.add_argument("--name", default=None, help="the check's name (checks/NAME.json); default: the suite's stem")
    parser.add_argument("--models", type=_names, default=None,
                        help="comma-separated models to check (the teacher is always added as the reference); "
                             "default: every model of the run")
    parser.add_argument("--text-column", default=defaults.text_column,
                        help="column with the texts (a HateCheck file's test_case when absent)")
    parser.add_argument("--label-column", default=defaults.label_column,
                        help="column with the gold labels (a HateCheck file's label_gold when absent)")
    parser.add_argument("--group-columns", type=_names, default=defaults.group_columns,
                        help="comma-separated columns to group by; default: HateCheck's functionality,target_ident, "
                             "else one group")
    parser.add_argument("--label-map", default=None,
                        help="gold=run label pairs, e.g. hateful=hate,non-hateful=not-hate; default: HateCheck's "
                             "hateful/non-hateful → class 1/0 of a binary run, else gold labels that are run label "
                             "names or class ids")
    parser.add_argument("--worst", type=int, default=defaults.worst_groups,
                        help="groups with the largest accuracy fall shown per model, with example cases")


def main(args: argparse.Namespace) -> int:
    from distilora.checks.render import terminal_summary
    from distilora.checks.run import run_check
    from distilora.checks.suite import parse_label_map
    from distilora.run_dir import RunDirectory

    config = CheckConfig(text_column=args.text_column, label_column=args.label_column,
                         group_columns=args.group_columns, worst_groups=args.worst)
    path, check = run_check(RunDirectory(args.run), args.suite, name=args.name, models=args.models, config=config,
                            label_map=parse_label_map(args.label_map))
    print(terminal_summary(check, config.worst_groups))
    print(f"\nWrote {path}; `distilora report {args.run}` adds it to the report, `distilora serve` to the page.")
    return 0
