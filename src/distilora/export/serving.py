"""What ``distilora serve --backend onnx`` serves: a run's exports that passed their parity gate, each described by
its source model's entry in results.json with the export's own scores (at the argmax and at its threshold), size and
agreement, and whether it is stale.

An export serves the decision it was gated at: the calibration.json copied into it when it was made. It records
the checksums of its model's weights and calibration.json (parity.json's ``source``); when the run's model was
retrained, or its calibration refitted to another decision (``distilora run --target-precision …``), since then,
the export is *stale*: it is still served, as it was gated, and the log and ``/api/v1/models`` (``stale``,
``stale_reason``) say so and how to make it current (export it again).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distilora.artifacts import ArtifactError, read_manifest
from distilora.evaluation.calibration import Calibration
from distilora.export.files import RunExports
from distilora.inference.registry import read_calibration
from distilora.results import ModelResult, RunResults, SplitMetrics
from distilora.run_dir import CALIBRATION_FILE, PARITY_FILE, RunLayout, StageStore

logger = logging.getLogger(__name__)

BACKEND = "onnxruntime"


def _parity(path: Path) -> dict[str, Any]:
    try:
        parity = json.loads((path / PARITY_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return parity if isinstance(parity, dict) else {}


@dataclass
class ExportStatus:
    """Whether an export still matches the run's model it was made from, and if not, why."""

    reasons: list[str] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        return bool(self.reasons)

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) or None


def _describe(calibration: Calibration | None) -> str:
    return calibration.describe() if calibration is not None else "the argmax of the raw softmax (not calibrated)"


def export_status(run: RunLayout, path: Path, parity: dict[str, Any]) -> ExportStatus:
    """Compare the export at ``path`` with the run's current model of its name: its weights, and the decision of its
    calibration.json against the one the export serves."""
    model, source = str(parity.get("model")), parity.get("source") or {}
    status = ExportStatus()
    model_dir = run.model_dir(model)
    try:
        weights = StageStore.weights_hash(model_dir)
        calibration_sum = read_manifest(model_dir)["files"].get(CALIBRATION_FILE)
    except (ArtifactError, OSError) as error:
        status.reasons.append(f"the run's {model} cannot be compared with it ({error})")
        return status
    if source.get("weights") and weights != source["weights"]:
        status.reasons.append(f"the run's {model} was retrained after this export")
    if "calibration" in source and calibration_sum == source["calibration"]:
        return status
    labels = parity.get("labels") or []
    try:
        current, served = read_calibration(model_dir, labels), read_calibration(path, labels)
    except ValueError as error:
        status.reasons.append(f"its decision cannot be compared with the run's {model} ({error})")
        return status
    current_rule = current.decision() if current is not None else None
    if current_rule != (served.decision() if served is not None else None):
        status.reasons.append(f"the run's calibration of {model} was refitted: it decides {_describe(current)}; this "
                              f"export decides {_describe(served)}, as it was gated")
    return status


@dataclass
class ServedExport:
    """What a served export adds to its model's entry in ``GET /api/v1/models``."""

    backend: str = BACKEND
    quantization: str | None = None
    parity: dict[str, float] | None = None
    """Label agreement with the PyTorch model at the argmax, per split."""
    decision_parity: dict[str, float] | None = None
    """Label agreement with the PyTorch model at the served decision, per split (None: gated at the argmax only)."""
    stale: bool = False
    stale_reason: str | None = None


def _agreements(parity: dict[str, Any], key: str) -> dict[str, float] | None:
    """``{split: parity[split][key]}`` for the splits that have it (None: an export made before it was recorded)."""
    found = {split: parity[split][key] for split in ("validation", "test")
             if isinstance(parity.get(split), dict) and key in parity[split]}
    return found or None


def _scores(metrics: dict[str, Any] | None) -> dict[str, SplitMetrics] | None:
    """parity.json's ``metrics`` or ``metrics_at_threshold`` (the export's own scores) as records."""
    if metrics is None:
        return None
    return {split: SplitMetrics.from_json(values, f"{PARITY_FILE} {split}") for split, values in metrics.items()}


def export_entry(source: ModelResult, parity: dict[str, Any], quantization: str | None) -> ModelResult:
    """The results entry of an export: its model's, with the export's own scores and size, less what describes the
    PyTorch model only (adapter, path, history, calibration, intervals)."""
    described = f": {source.description}" if source.description else ""
    return dataclasses.replace(
        source, description=f"ONNX export{f' ({quantization})' if quantization else ''} of {parity.get('model')}"
                            f"{described}",
        metrics=_scores(parity.get("metrics", {})), metrics_at_threshold=_scores(parity.get("metrics_at_threshold")),
        size_mb=parity.get("size_mb"), adapter_size_mb=None, path=None, history=[], calibration=None, intervals={})


def export_sources(run: RunLayout, results: RunResults
                   ) -> tuple[dict[str, Path], RunResults, dict[str, ServedExport]]:
    """``{export name: directory}`` of the servable exports, ``results`` with their entries as its models, and what
    each export adds to its entry.

    An export without a readable parity.json, or one that failed its gate, is logged and left out; none left is a
    :class:`FileNotFoundError` saying how to make one.
    """
    sources: dict[str, Path] = {}
    models: dict[str, ModelResult] = {}
    exports: dict[str, ServedExport] = {}
    files = RunExports(run)
    for name, path in files.finished().items():
        parity = _parity(path)
        if parity.get("passed") is not True:
            logger.warning("%s: %s; not served", path, "failed its parity gate" if parity else f"no {PARITY_FILE}")
            continue
        quantization = (parity.get("settings", {}).get("quantization") or {}).get("type")
        if _agreements(parity, "decision_agreement") is None:
            logger.warning("%s was gated on its labels at the argmax only, not on the labels it serves at its "
                           "threshold; export it again to gate both", path)
        status = export_status(run, path, parity)
        if status.stale:
            logger.warning("%s is stale (%s); it is served as it was gated: export it again to serve the run's model "
                           "(distilora export --run %s --model %s%s)", path, status.reason, run.root,
                           parity.get("model"), f" --quantize {quantization}" if quantization else "")
        sources[name] = path
        models[name] = export_entry(results.models.get(parity.get("model")) or ModelResult(), parity, quantization)
        exports[name] = ServedExport(quantization=quantization, parity=_agreements(parity, "agreement"),
                                     decision_parity=_agreements(parity, "decision_agreement"), stale=status.stale,
                                     stale_reason=status.reason)
    if not sources:
        raise FileNotFoundError(f"{files.directory}: no ONNX export that passed its parity gate; make one with "
                                f"`distilora export --run {run.root} --model NAME`")
    return sources, dataclasses.replace(results, models=models), exports
