"""distilora: compress a BERT toxicity classifier by layer-selected distillation and by LoRA, and compare."""

__version__ = "0.1.0"

from distilora.config import (  # noqa: E402
    DataConfig,
    DistillationConfig,
    ExperimentConfig,
    LoraSettings,
    TrainConfig,
)
from distilora.inference import Classifier, Prediction  # noqa: E402


def run_experiment(config: ExperimentConfig | None = None) -> dict:
    """Run the full comparison (see :mod:`distilora.experiment`)."""
    from distilora.experiment import run_experiment as _run

    return _run(config)


__all__ = [
    "Classifier",
    "DataConfig",
    "DistillationConfig",
    "ExperimentConfig",
    "LoraSettings",
    "Prediction",
    "TrainConfig",
    "run_experiment",
]
