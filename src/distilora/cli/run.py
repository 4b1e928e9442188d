"""``distilora run``: teacher → odd → even → LoRA → evaluation → comparison table."""

from __future__ import annotations

import argparse

from distilora.config import (
    DEFAULT_DATASET,
    DEFAULT_TEACHER,
    DataConfig,
    DistillationConfig,
    ExperimentConfig,
)

HELP = "fine-tune the teacher, distil the students, train LoRA, evaluate all on the same test set"


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=DEFAULT_DATASET,
                      help="directory with train/validation/test as CSV, JSON Lines or Parquet, or a hub id")
    data.add_argument("--dataset-config", default=None, help="hub dataset configuration name")
    data.add_argument("--text-column", default="text")
    data.add_argument("--label-column", default="label")
    data.add_argument("--max-train-samples", type=_positive(int), default=None, help="use a seeded subset of train")
    data.add_argument("--max-eval-samples", type=_positive(int), default=None,
                      help="use a seeded subset of validation and test (quick runs only)")
    data.add_argument("--max-length", type=_positive(int), default=DataConfig.max_length, help="tokens per text")

    run = parser.add_argument_group("run")
    run.add_argument("--teacher", default=DEFAULT_TEACHER,
                     help="pretrained checkpoint: the packaged MiniLM, a local model directory, or a hub id")
    run.add_argument("--output-dir", default=None, help="default: runs/<dataset name>")
    run.add_argument("--layers", action="append", default=None, metavar="SPEC",
                     help="student layers: odd, even or 1-based teacher layers like 1,3,5 (repeatable; "
                          "default: odd and even)")
    run.add_argument("--no-lora", action="store_true", help="skip the LoRA model")
    run.add_argument("--no-report", action="store_true", help="skip report.html / report.md / plots")
    run.add_argument("--no-speed", action="store_true", help="report without timing the models")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--seeds", type=_positive(int), default=1,
                     help="train students and LoRA with this many seeds (seed, seed+1, …) for mean ± std")
    run.add_argument("--preset", choices=("cpu", "gpu"), default="cpu",
                     help="cpu: tuned for minutes on 2 cores; gpu: more epochs (explicit options still win)")
    run.add_argument("--epochs", type=_positive(float), default=None,
                     help="epochs for every route (default: teacher 1, students 2, LoRA 2)")
    run.add_argument("--batch-size", type=_positive(int), default=None)

    distil = parser.add_argument_group("distillation: L = w_ce·CE + w_kd·T²·KL + w_cos·(1 − cos)")
    defaults = DistillationConfig()
    distil.add_argument("--w-ce", type=float, default=defaults.w_ce)
    distil.add_argument("--w-kd", type=float, default=defaults.w_kd)
    distil.add_argument("--w-cos", type=float, default=defaults.w_cos)
    distil.add_argument("--temperature", type=_positive(float), default=defaults.temperature)

    lora = parser.add_argument_group("LoRA")
    lora.add_argument("--lora-r", type=_positive(int), default=16)
    lora.add_argument("--lora-alpha", type=_positive(int), default=32)
    lora.add_argument("--lora-dropout", type=float, default=0.1)
    lora.add_argument("--lora-targets", default="query,value", help="comma-separated module names")


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    config = ExperimentConfig(
        data=DataConfig(
            dataset=args.dataset,
            dataset_config=args.dataset_config,
            text_column=args.text_column,
            label_column=args.label_column,
            max_train_samples=args.max_train_samples,
            max_eval_samples=args.max_eval_samples,
            max_length=args.max_length,
        ),
        teacher=args.teacher,
        output_dir=args.output_dir,
        seed=args.seed,
        num_seeds=args.seeds,
        students=tuple(args.layers) if args.layers else ("odd", "even"),
        run_lora=not args.no_lora,
        report=not args.no_report,
        measure_speed=not args.no_speed,
        distillation=DistillationConfig(args.w_ce, args.w_kd, args.w_cos, args.temperature),
    )
    config.apply_preset(args.preset)
    if args.epochs is not None:
        config.set_epochs(args.epochs)
    if args.batch_size is not None:
        for training in (config.teacher_training, config.student_training, config.lora_training):
            training.batch_size = args.batch_size
    config.lora.r, config.lora.alpha, config.lora.dropout = args.lora_r, args.lora_alpha, args.lora_dropout
    config.lora.target_modules = tuple(t.strip() for t in args.lora_targets.split(",") if t.strip())
    return config


def main(args: argparse.Namespace) -> int:
    from distilora.evaluation.results_table import results_markdown
    from distilora.experiment import Experiment

    config = config_from_args(args)
    results = Experiment(config).run()
    print(results_markdown(results))
    print(f"Saved to {config.resolved_output_dir()}")
    return 0
