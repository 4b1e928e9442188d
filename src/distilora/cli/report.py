"""``distilora report``: statistics, plots and findings for a finished run (report.html, report.md, plots/)."""

from __future__ import annotations

import argparse

HELP = "write report.html, report.md and plots/ for a run, and add statistics to its results.json"


def _resamples(text: str) -> int:
    value = int(text)
    if value < 1000:
        raise argparse.ArgumentTypeError(f"use at least 1000 bootstrap resamples, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from distilora.evaluation.statistics import RESAMPLES, SEED

    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by distilora run")
    parser.add_argument("--resamples", type=_resamples, default=RESAMPLES, help="bootstrap resamples of the test set")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the bootstrap")


def main(args: argparse.Namespace) -> int:
    from distilora.report import rebuild_report
    from distilora.run_dir import RunLayout

    run = RunLayout(args.run_dir)
    report = rebuild_report(run, n_resamples=args.resamples, seed=args.seed)
    for key in ("report.html", "report.md"):
        print(f"Wrote {report.files[key]}")
    print(f"Wrote {sum(1 for k in report.files if k.startswith('plots/'))} plots under {run.plots_dir}")
    return 0
