"""distilora: compress a BERT toxicity classifier by layer-selected distillation and by LoRA, and compare."""

import importlib
from typing import TYPE_CHECKING, Any

from distilora.config import (
    DataConfig,
    DistillationConfig,
    ExperimentConfig,
    LoraConfig,
    ScoreConfig,
    ServeConfig,
    TrainConfig,
)
from distilora.versions import __version__

if TYPE_CHECKING:
    from distilora.inference import Classifier, Prediction, load_classifier, register_backend
    from distilora.scoring import Scorer, score_file

_LAZY = {"Classifier": "inference", "Prediction": "inference", "load_classifier": "inference",
         "register_backend": "inference", "Scorer": "scoring", "score_file": "scoring"}


def __getattr__(name: str) -> Any:
    """The inference and scoring API, imported (with torch) when first asked for: ``distilora.config`` and
    ``distilora.routes.kinds`` stay light."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def run_experiment(config: ExperimentConfig | None = None) -> dict:
    """Run the full comparison (see :mod:`distilora.experiment`), then write its report unless ``config.report`` is
    off; the contents of ``results.json``."""
    from distilora.experiment import run_experiment as _run
    from distilora.report import report_run

    config = config or ExperimentConfig()
    return _run(config, finish=report_run if config.report else None)


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
