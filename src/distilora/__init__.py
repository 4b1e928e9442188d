"""distilora: compress a BERT toxicity classifier by layer-selected distillation and by LoRA, and compare."""

from distilora.config import (
    DataConfig,
    DistillationConfig,
    ExperimentConfig,
    LoraConfig,
    ScoreConfig,
    ServeConfig,
    TrainConfig,
)
from distilora.inference import Classifier, Prediction, load_classifier, register_backend
from distilora.scoring import Scorer, score_file
from distilora.versions import __version__


def run_experiment(config: ExperimentConfig | None = None) -> dict:
    """Run the full comparison (see :mod:`distilora.experiment`)."""
    from distilora.experiment import run_experiment as _run

    return _run(config)


__all__ = [
    "Classifier",
    "DataConfig",
    "DistillationConfig",
    "ExperimentConfig",
    "LoraConfig",
    "Prediction",
    "ScoreConfig",
    "Scorer",
    "ServeConfig",
    "TrainConfig",
    "__version__",
    "load_classifier",
    "register_backend",
    "run_experiment",
    "score_file",
]
