"""What ``distilora serve --backend onnx`` serves: a run's exports that passed their parity gate, each described by
its source model's entry in results.json with the export's own scores, size and agreement."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from distilora.artifacts import ArtifactError
from distilora.run_dir import PARITY_FILE, RunDirectory

logger = logging.getLogger(__name__)

BACKEND = "onnxruntime"


def _parity(path: Path) -> dict[str, Any]:
    try:
        parity = json.loads((path / PARITY_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return parity if isinstance(parity, dict) else {}


def _warn_if_stale(run: RunDirectory, path: Path, parity: dict[str, Any]) -> None:
    """Log when the run's model was retrained after it was exported (the export is still served, as it is)."""
    model, weights = parity.get("model"), parity.get("source", {}).get("weights")
    try:
        current = RunDirectory.weights_hash(run.model_dir(str(model)))
    except (ArtifactError, OSError):
        current = None
    if weights and current != weights:
        logger.warning("%s: exported from an earlier %s than the run holds now; export it again to serve the "
                       "current one", path, model)


def export_sources(run: RunDirectory, results: dict[str, Any]) -> tuple[dict[str, Path], dict[str, Any]]:
    """``{export name: directory}`` of the servable exports, and ``results`` with their entries as its models.

    An export without a readable parity.json, or one that failed its gate, is logged and left out; none left is a
    :class:`FileNotFoundError` saying how to make one.
    """
    sources: dict[str, Path] = {}
    models: dict[str, Any] = {}
    for name, path in run.exports().items():
        parity = _parity(path)
        if parity.get("passed") is not True:
            logger.warning("%s: %s; not served", path, "failed its parity gate" if parity else f"no {PARITY_FILE}")
            continue
        _warn_if_stale(run, path, parity)
        source = dict(results.get("models", {}).get(parity.get("model"), {}))
        quantization = (parity.get("settings", {}).get("quantization") or {}).get("type")
        sources[name] = path
        models[name] = {
            **{k: v for k, v in source.items() if k not in ("adapter_size_mb", "path", "history")},
            "description": f"ONNX export{f' ({quantization})' if quantization else ''} of {parity.get('model')}"
                           + (f": {source['description']}" if source.get("description") else ""),
            "metrics": parity.get("metrics", {}),
            "size_mb": parity.get("size_mb"),
            "backend": BACKEND,
            "quantization": quantization,
            "parity": {split: parity[split]["agreement"] for split in ("validation", "test") if split in parity},
        }
    if not sources:
        raise FileNotFoundError(f"{run.exports_dir}: no ONNX export that passed its parity gate; make one with "
                                f"`distilora export --run {run.root} --model NAME`")
    return sources, {**results, "models": models}
