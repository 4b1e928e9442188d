"""The models a server answers with: loaded once, at start-up, from one run directory; looked up only by name."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distilora.config import ServeConfig
from distilora.inference import Classifier, load_classifier
from distilora.results import ModelResult, RunResults, SplitMetrics
from distilora.routes.kinds import RouteKind
from distilora.run_dir import RunLayout, read_results
from distilora.serve.decisions import served_decision
from distilora.serve.model_process import ModelProcess, Readiness

if TYPE_CHECKING:  # loaded with --backend onnx only
    from distilora.export.serving import ServedExport

logger = logging.getLogger(__name__)

METRIC_KEYS = ("n", "loss", "accuracy", "macro_f1", "precision", "recall", "f1_per_class", "confusion_matrix",
               "micro_f1", "hamming_loss")
"""What the API states of each split's metrics."""


class UnknownModel(LookupError):
    """A request named a model that is not loaded."""

    def __init__(self, name: str, available: list[str]):
        self.name = name
        self.available = available
        shown = name if len(name) <= 64 else name[:61] + "..."
        super().__init__(f"unknown model {shown!r}; available: {', '.join(available)}")


def _finite(value: Any) -> Any:
    """JSON has no NaN / infinity: those become None (recursively)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _dataset_name(dataset: Any) -> str | None:
    """The dataset's name only: a local path says nothing useful to a client."""
    return Path(str(dataset).rstrip("/")).name or None if dataset else None


def _metric_subset(metrics: dict[str, SplitMetrics] | None) -> dict[str, Any]:
    """The API's metric keys of each split."""
    return {split: {k: v for k, v in values.to_json().items() if k in METRIC_KEYS}
            for split, values in (metrics or {}).items()}


@dataclass
class ModelRegistry:
    """Name → loaded :class:`Classifier`, plus each model's entry from results.json."""

    run_dir: Path
    classifiers: dict[str, Classifier]
    results: RunResults = field(default_factory=RunResults)
    process: ModelProcess | None = None
    """The supervised child process holding the models, if they run in one."""
    exports: dict[str, ServedExport] = field(default_factory=dict)
    """What the served ONNX exports add to their models' entries (``--backend onnx``), by name."""

    def __post_init__(self) -> None:
        self.results = RunResults.of(self.results)

    def close(self) -> None:
        if self.process is not None:
            self.process.close()

    def readiness(self) -> Readiness:
        """Whether the models answer (loaded in this process: always)."""
        return self.process.readiness() if self.process is not None else Readiness(True)

    @classmethod
    def load(cls, run_dir: str | Path, process: ServeConfig | None = None, backend: str = "pytorch",
             precision: str = "fp32", extra_models: dict[str, Path] | None = None) -> ModelRegistry:
        """Load every model listed in the run's results (teacher, odd, even, lora, …), in the run's order; with
        ``backend="onnx"``, the run's ONNX exports that passed their parity gate (``export/NAME[-int8]``) instead.

        ``process`` (the server's settings) loads them in a supervised child process (:mod:`.model_process`).
        ``precision``: the models' inference precision (``fp32``, ``bf16``, ``auto``).
        ``extra_models``: name → model directory of models from other runs, loaded too (no results entry).
        """
        run = RunLayout(run_dir)
        results = RunResults.of(read_results(run))
        exports: dict[str, ServedExport] = {}
        if backend == "onnx":
            from distilora.export.serving import export_sources

            sources, results, exports = export_sources(run, results)
        else:
            sources = {name: run.model_dir(name) for name in results.models}
        if not sources:
            raise ValueError(f"{run.root}: its results list no models; re-run `distilora run`")
        sources.update(extra_models or {})
        names = list(sources)
        if process is not None:
            logger.info("loading %s from %s in a model process", ", ".join(names), run.root)
            models = ModelProcess(sources, process, precision=precision)
            return cls(run.root, {name: models.predictor(name) for name in names}, results, models, exports)
        classifiers = {}
        for name in names:
            logger.info("loading model %s from %s", name, sources[name])
            classifiers[name] = load_classifier(sources[name], precision=precision)
            classifiers[name].predict(["warm-up"])  # first-call costs are paid here, not by the first request
        return cls(run.root, classifiers, results, exports=exports)

    @property
    def names(self) -> list[str]:
        return list(self.classifiers)

    @property
    def labels(self) -> list[str]:
        return list(self.results.labels or next(iter(self.classifiers.values())).labels)

    def get(self, name: str) -> Classifier:
        """The loaded model called ``name``; :class:`UnknownModel` otherwise (never a path lookup)."""
        classifier = self.classifiers.get(name)
        if classifier is None:
            raise UnknownModel(name, self.names)
        return classifier

    def decision(self, name: str) -> dict[str, Any]:
        """How model ``name`` picks labels (its calibration.json; a multi-label model's threshold per label), as
        responses state it."""
        return _finite(served_decision(self.get(name)))

    def entry(self, name: str) -> ModelResult:
        """The model's results entry (an empty one for a model loaded from another run)."""
        return self.results.models.get(name) or ModelResult()

    @property
    def default_model(self) -> str:
        """The best student (route ``distil``) by validation macro-F1; without students, the first model."""
        students = [n for n in self.results.names_of_route(RouteKind.DISTIL) if n in self.classifiers]
        if not students:
            return self.names[0]

        def score(name: str) -> float:
            validation = self.entry(name).metrics.get("validation")
            value = validation.macro_f1 if validation is not None else None
            return value if isinstance(value, int | float) and math.isfinite(value) else -math.inf

        return max(students, key=score)  # max keeps the first of equal scores

    def describe(self, name: str) -> dict[str, Any]:
        """What ``GET /api/v1/models`` says about one model."""
        classifier = self.classifiers[name]
        entry = self.entry(name)
        export = self.exports.get(name)
        metrics = _metric_subset(entry.metrics)
        at_threshold = _metric_subset(entry.metrics_at_threshold) or None
        return _finite({
            "name": name,
            "route": entry.route,
            "description": entry.description,
            "collapsed": entry.collapsed,
            "layers": entry.layers if name in self.results.models else classifier.layers,
            "num_layers": entry.num_layers,
            "labels": classifier.labels,
            "multi_label": True if getattr(classifier, "multi_label", False) else None,
            "max_length": classifier.max_length,
            "params": entry.params,
            "trainable_params": entry.trainable_params,
            "size_mb": entry.size_mb,
            "adapter_size_mb": entry.adapter_size_mb,
            "backend": export.backend if export else getattr(classifier, "backend", None),
            "quantization": export.quantization if export else None,
            "precision": getattr(classifier, "precision", None),
            "parity": export.parity if export else None,
            "decision_parity": export.decision_parity if export else None,
            "stale": export.stale if export else None,
            "stale_reason": export.stale_reason if export else None,
            "metrics": metrics,
            "decision": self.decision(name),
            "metrics_at_threshold": at_threshold,
        })

    def describe_all(self) -> dict[str, Any]:
        return {
            "default_model": self.default_model,
            "labels": self.labels,
            "dataset": _dataset_name(self.results.dataset),
            "models": [self.describe(n) for n in self.names],
        }
