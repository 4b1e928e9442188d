"""``distilora check``: run a run's models on a behavioural test suite and write ``checks/NAME.json``."""

from __future__ import annotations

import argparse

from distilora.cli.options import add_dataclass_arguments, dataclass_from_args
from distilora.config import CheckConfig
from distilora.config_options import names

HELP = "run every model of a run on a behavioural test suite (CSV / JSONL / Parquet, e.g. HateCheck's format)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="a run directory made by distilora run")
    parser.add_argument("--suite", required=True, help="the suite file (.csv, .jsonl or .parquet)")
    parser.add_argument("--name", default=None, help="the check's name (checks/NAME.json); default: the suite's stem")
    parser.add_argument("--models", type=names, default=None,
                        help="comma-separated models to check (the teacher is always added as the reference); "
                             "default: every model of the run")
    parser.add_argument("--label-map", default=None,
                        help="gold=run label pairs, e.g. hateful=hate,non-hateful=not-hate; default: HateCheck's "
                             "hateful/non-hateful → class 1/0 of a binary run, else gold labels that are run label "
                             "names or class ids")
    add_dataclass_arguments(parser, CheckConfig)


def main(args: argparse.Namespace) -> int:
    from distilora.checks.render import terminal_summary
    from distilora.checks.run import run_check
    from distilora.checks.suite import parse_label_map
    from distilora.run_dir import RunLayout

    config = dataclass_from_args(CheckConfig, args)
    path, check = run_check(RunLayout(args.run), args.suite, name=args.name, models=args.models, config=config,
                            label_map=parse_label_map(args.label_map))
    print(terminal_summary(check, config.worst_groups))
    print(f"\nWrote {path}; `distilora report {args.run}` adds it to the report, `distilora serve` to the page.")
    return 0
