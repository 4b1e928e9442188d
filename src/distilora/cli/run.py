"""``distilora run``: teacher → students → LoRA → evaluation → comparison table and report."""

from __future__ import annotations

import argparse

from distilora.config import (
    CLASS_WEIGHTS,
    PRECISIONS,
    PRESETS,
    CalibrationConfig,
    DataConfig,
    DistillationConfig,
    ExperimentConfig,
    LoraConfig,
)
from distilora.routes import registered_routes, route_groups
from distilora.routes.lora import VARIANTS

HELP = "fine-tune the teacher, train the selected routes (students, LoRA, hybrids, baselines), evaluate all"


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ExperimentConfig()
    d, lora, distillation = defaults.data, defaults.lora, defaults.distillation
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=d.dataset,
                      help="directory with train/validation/test as CSV, JSON Lines or Parquet, or a hub id")
    data.add_argument("--dataset-config", default=d.dataset_config, help="hub dataset configuration name")
    data.add_argument("--text-column", default=d.text_column, help="column holding the text")
    data.add_argument("--label-column", default=d.label_column, help="column holding the label")
    data.add_argument("--max-train-samples", type=_positive(int), default=d.max_train_samples,
                      help="use a seeded subset of train")
    data.add_argument("--max-eval-samples", type=_positive(int), default=d.max_eval_samples,
                      help="use a seeded subset of validation and test (quick runs only)")
    data.add_argument("--max-length", type=_positive(int), default=d.max_length, help="tokens per text")

    run = parser.add_argument_group("run")
    run.add_argument("--teacher", default=defaults.teacher,
                     help="pretrained checkpoint: the packaged MiniLM, a local model directory, or a hub id")
    run.add_argument("--output-dir", default=None, help="default: runs/<dataset name>")
    groups = "; ".join(f"{name}: {', '.join(members)}" for name, members in route_groups().items())
    run.add_argument("--routes", default=",".join(defaults.routes), metavar="NAME,NAME,…",
                     help=f"routes or groups to train (the teacher always is). Groups: {groups}. "
                          f"Routes: {', '.join(registered_routes())}")
    run.add_argument("--layers", action="append", default=None, metavar="SPEC",
                     help="also distil a student: a strategy (odd, even, first, last, importance) or 1-based teacher "
                          "layers like 1,3,5 (repeatable)")
    run.add_argument("--student-depth", type=int, default=defaults.student_depth,
                     help="layers of the first / last / importance students (default: half the teacher's)")
    run.add_argument("--lora-variant", action="append", default=None, choices=VARIANTS, metavar="VARIANT",
                     help=f"also train this LoRA variant, named lora-VARIANT ({', '.join(VARIANTS)}; repeatable)")
    run.add_argument("--class-weight", choices=CLASS_WEIGHTS, default=defaults.class_weight,
                     help="balanced: weight each class's cross-entropy (every route) by the inverse of its "
                          "training frequency")
    run.add_argument("--no-report", action="store_true", help="skip report.html / report.md / plots")
    run.add_argument("--no-speed", action="store_true", help="do not time the models during the evaluation")
    run.add_argument("--seed", type=int, default=defaults.seed, help="seed of data sampling, initialisation and order")
    run.add_argument("--seeds", type=_positive(int), default=defaults.num_seeds,
                     help="train students and LoRA with this many seeds (seed, seed+1, …) for mean ± std")
    run.add_argument("--preset", choices=tuple(PRESETS), default=next(iter(PRESETS)),
                     help="cpu: tuned for minutes on 2 cores; gpu: more epochs (explicit options still win)")
    run.add_argument("--precision", choices=PRECISIONS, default=None,
                     help=f"training and inference precision; bf16: autocast around the forward pass with fp32 "
                          f"weights, refused where the CPU / GPU has no native bf16; auto: bf16 exactly where it is "
                          f"native, else fp32 (default: {defaults.precision})"),
    epochs = ", ".join(f"{name} {training.epochs:g}" for name, training in
                       (("teacher", defaults.teacher_training), ("students", defaults.student_training),
                        ("LoRA", defaults.lora_training)))
    run.add_argument("--epochs", type=_positive(float), default=None,
                     help=f"epochs for every route (default: {epochs})")
    run.add_argument("--batch-size", type=_positive(int), default=None,
                     help=f"training batch size for every route (default: {defaults.student_training.batch_size})")

    distil = parser.add_argument_group("distillation: L = w_ce·CE + w_kd·T²·KL + w_cos·(1 − cos) + w_hidden·hidden")
    distil.add_argument("--w-ce", type=float, default=distillation.w_ce, help="weight of CE with the labels")
    distil.add_argument("--w-kd", type=float, default=distillation.w_kd, help="weight of the KL to the teacher")
    distil.add_argument("--w-cos", type=float, default=distillation.w_cos,
                        help="weight of 1 − cosine to the teacher's [CLS] state")
    distil.add_argument("--temperature", type=_positive(float), default=distillation.temperature,
                        help="softmax temperature T of the KL term")
    distil.add_argument("--w-hidden", type=float, default=distillation.w_hidden,
                        help="weight of matching each student layer's [CLS] state to the teacher layer it was copied "
                             "from (patient KD; mean squared distance of the unit vectors)")

    operating = parser.add_argument_group(
        "operating point (binary tasks; fitted on validation after training, so changing it never retrains)")
    targets = operating.add_mutually_exclusive_group()
    targets.add_argument("--target-precision", type=_share, default=None, metavar="P",
                         help="decision threshold: the highest validation recall whose precision for the positive "
                              "class (label 1) is at least P (default: the threshold maximising validation macro-F1)")
    targets.add_argument("--target-recall", type=_share, default=None, metavar="R",
                         help="decision threshold: the highest validation precision whose recall for the positive "
                              "class (label 1) is at least R")

    adapters = parser.add_argument_group("LoRA")
    adapters.add_argument("--lora-r", type=_positive(int), default=lora.r, help="adapter rank")
    adapters.add_argument("--lora-alpha", type=_positive(int), default=lora.alpha, help="adapter scaling numerator")
    adapters.add_argument("--lora-dropout", type=float, default=lora.dropout, help="dropout on the adapter input")
    adapters.add_argument("--lora-targets", default=",".join(lora.target_modules),
                          help="comma-separated module names")


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


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
        routes=(*_names(args.routes), *(f"lora-{v}" if v != "lora" else "lora" for v in args.lora_variant or ())),
        students=tuple(args.layers or ()),
        student_depth=args.student_depth,
        class_weight=args.class_weight,
        report=not args.no_report,
        measure_speed=not args.no_speed,
        distillation=DistillationConfig(args.w_ce, args.w_kd, args.w_cos, args.temperature, args.w_hidden),
        lora=LoraConfig(r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout,
                        target_modules=tuple(t.strip() for t in args.lora_targets.split(",") if t.strip())),
        calibration=CalibrationConfig(target_precision=args.target_precision, target_recall=args.target_recall),
    )
    config.apply_preset(args.preset)
    if args.precision is not None:
        config.precision = args.precision
    for training in config.trainings():
        if args.epochs is not None:
            training.epochs = args.epochs
        if args.batch_size is not None:
            training.batch_size = args.batch_size
    return config


def main(args: argparse.Namespace) -> int:
    from distilora import distributed
    from distilora.evaluation import results_markdown
    from distilora.experiment import Experiment

    config = config_from_args(args)
    results = Experiment(config).run()
    if not distributed.is_main_process():  # torchrun: the main process evaluates, writes and prints
        return 0
    print(results_markdown(results))
    print(f"Saved to {config.resolved_output_dir()}")
    return 0
