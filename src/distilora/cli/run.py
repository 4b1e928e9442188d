"""``distilora run``: teacher → students → LoRA → evaluation → comparison table and report."""

from __future__ import annotations

import argparse

from distilora.cli.options import add_dataclass_arguments, dataclass_from_args
from distilora.config import PRESETS, ExperimentConfig
from distilora.config_options import positive
from distilora.routes import registered_routes, route_groups, routes_tagged
from distilora.routes.lora import VARIANT_TAG

HELP = "fine-tune the teacher, train the selected routes (students, LoRA, hybrids, baselines), evaluate all"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of :class:`ExperimentConfig`, and those that set several of its fields at once."""
    added = add_dataclass_arguments(parser, ExperimentConfig, title="run")
    groups = "; ".join(f"{name}: {', '.join(members)}" for name, members in route_groups().items())
    added.actions[("routes",)].help += f". Groups: {groups}. Routes: {', '.join(registered_routes())}"
    defaults = ExperimentConfig()
    run = added.groups["run"]
    variants = tuple(routes_tagged(VARIANT_TAG))
    run.add_argument("--lora-variant", action="append", default=None, choices=variants, metavar="VARIANT",
                     help=f"also train this LoRA variant, named lora-VARIANT ({', '.join(variants)}; repeatable)")
    run.add_argument("--preset", choices=tuple(PRESETS), default=next(iter(PRESETS)),
                     help="cpu: tuned for minutes on 2 cores; gpu: more epochs (explicit options still win)")
    epochs = ", ".join(f"{name} {training.epochs:g}" for name, training in
                       (("teacher", defaults.teacher_training), ("students", defaults.student_training),
                        ("LoRA", defaults.lora_training)))
    run.add_argument("--epochs", type=positive(float), default=None,
                     help=f"epochs for every route (default: {epochs})")
    run.add_argument("--batch-size", type=positive(int), default=None,
                     help=f"training batch size for every route (default: {defaults.student_training.batch_size})")


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    variant_routes = routes_tagged(VARIANT_TAG)
    routes = (*args.routes, *(variant_routes[variant] for variant in args.lora_variant or ()))
    config = dataclass_from_args(ExperimentConfig, args, {"routes": routes})
    config.apply_preset(args.preset)
    for training in config.trainings():
        if args.epochs is not None:
            training.epochs = args.epochs
        if args.batch_size is not None:
            training.batch_size = args.batch_size
    return config


def main(args: argparse.Namespace) -> int:
    from distilora import distributed, run_experiment
    from distilora.evaluation import results_markdown

    config = config_from_args(args)
    results = run_experiment(config)
    if not distributed.is_main_process():  # torchrun: the main process evaluates, writes and prints
        return 0
    print(results_markdown(results))
    print(f"Saved to {config.resolved_output_dir()}")
    return 0
