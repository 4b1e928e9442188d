"""``distilora tune``: every route of a finished run tuned with Optuna at the same budget, on the run's own data and
teacher; ``<run>/tune.json`` and each route's best model under ``<run>/.tune/``."""

from __future__ import annotations

import argparse

from distilora.cli.options import add_dataclass_arguments, dataclass_from_args
from distilora.config import TuneConfig

HELP = "tune each route's settings at the same budget (Optuna, TPE) on a finished run's data and teacher"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", "--run-dir", dest="run", required=True, metavar="RUN_DIR",
                        help="a run directory made by distilora run (under torchrun write --run-dir: torchrun reads "
                             "--run as its own --run-path)")
    add_dataclass_arguments(parser, TuneConfig, title="tune")


def main(args: argparse.Namespace) -> int:
    from distilora import run_experiment
    from distilora.models import resolve_checkpoint
    from distilora.models.architectures import encoder_depth
    from distilora.tune.run_tuning import open_run_storage, plan_tuning, read_run_config, run_tuning, tuned_routes

    tune = dataclass_from_args(TuneConfig, args)
    config = read_run_config(args.run)
    from transformers import AutoConfig

    depth = encoder_depth(AutoConfig.from_pretrained(resolve_checkpoint(config.teacher)))
    plan = plan_tuning(args.run, tune, depth)
    storage = open_run_storage(plan)
    tunings = run_tuning(plan, storage, progress=not args.quiet)
    for t in tunings:  # none on the other processes under torchrun
        default = "—" if t.default_macro_f1 is None else f"{t.default_macro_f1:.4f}"
        best = "—" if t.best_macro_f1 is None else f"{t.best_macro_f1:.4f}"
        print(f"{t.route}: validation macro-F1 {default} (default) → {best} (tuned, trial {t.best_number}); "
              f"{t.trials} trials, {t.pruned} pruned, {t.failed} failed, {t.seconds:.1f} s")
    if tunings:
        print(f"Wrote {plan.run_dir / 'tune.json'}")
    tuned = [name for name in tuned_routes(plan.run_dir) if name not in config.routes]
    if tuned:  # the tuned models evaluated once on test, calibrated and reported with the run's others
        config.routes = (*config.routes, *tuned)
        run_experiment(config)  # under torchrun by every process, as `distilora run` is
        if tunings:
            print(f"Evaluated {', '.join(tuned)} into {plan.run_dir / 'results.json'} and the report")
    return 0
