"""``export_model``: one model of a run as ONNX (fp32 or int8) in ``RUN/export/NAME[-int8]/``, compared with the
PyTorch model on the run's own validation and test items before it is installed.

The comparison is made on the labels at the argmax *and* on the labels the export is served with (its model's
calibration.json: temperature and threshold, copied into the export); the gate requires both. Beside
``parity.json`` goes a model card (``README.md``) saying what the export is and how far it is from its model.
The export is written into ``export/NAME[-int8].partial/`` and renamed into place only once ``parity.json`` and the
manifest are written; any error (or Ctrl-C) removes the partial directory, so ``export/`` never holds half an
export. An export below ``min_agreement`` is installed *marked failed* (``parity.json``: ``"passed": false``): its
numbers are there to read, distilora refuses to load or serve it, and :class:`ParityGateFailed` is raised. It never
replaces a passing export of its name (:mod:`.install`: it goes beside it, as ``NAME.rejected-<time>``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from distilora.artifacts import read_manifest
from distilora.config import DataConfig, ExportConfig
from distilora.data import load_task_data
from distilora.evaluation.calibration import ARGMAX_DECISION, Calibration
from distilora.evaluation.metrics import classification_metrics
from distilora.export.files import PARITY_LABELS_FILE, RunExports
from distilora.export.install import install_location, set_aside_foreign
from distilora.export.onnx import EXPORTER, choose_int8, export_onnx, quantize_int8
from distilora.export.parity import (
    EXPORTED,
    REFERENCE,
    ParityGate,
    agreement,
    decided_labels,
    decision_agreement,
    label_agreements,
    label_decisions,
    label_probability_deltas,
    label_thresholds,
    labels_of,
    probability_deltas,
    split_parity,
)
from distilora.inference import OnnxClassifier, TorchClassifier, load_classifier
from distilora.model_card import render_model_card
from distilora.models.text_baselines import is_text_baseline
from distilora.precision import cpu_name, recorded_cpu_flags
from distilora.results import RunResults
from distilora.routes import is_route_name
from distilora.run_dir import (
    CALIBRATION_FILE,
    MODEL_CARD,
    ONNX_FILE,
    PARITY_FILE,
    RunLayout,
    RunLock,
    StageStore,
    read_results,
)
from distilora.versions import library_versions

logger = logging.getLogger(__name__)

SPLITS = ("validation", "test")


class ParityGateFailed(Exception):
    """The export's labels agree with the PyTorch model's less than ``min_agreement`` (its numbers are written)."""

    def __init__(self, message: str, path: Path, parity: dict[str, Any]):
        super().__init__(message)
        self.path, self.parity = path, parity


def exportable_dir(run_dir: RunLayout, results: RunResults, name: str) -> Path:
    """The model directory of ``name``, or a one-line error saying why it cannot be exported."""
    models = list(results.models)
    if name not in models:
        what = f"the run has no model {name!r}" if is_route_name(name) else f"unknown model {name!r}"
        raise ValueError(f"--model: {what} (models of {run_dir.root}: {', '.join(models) or 'none'})")
    model_dir = run_dir.model_dir(name)
    if is_text_baseline(model_dir):
        tokenized = [m for m in models if not is_text_baseline(run_dir.model_dir(m))]
        raise ValueError(f"--model {name}: a TF-IDF / majority-class baseline (numpy, not a transformers model) is "
                         f"not exportable to ONNX; exportable models of this run: {', '.join(tokenized) or 'none'}")
    return model_dir


def run_splits(results: RunResults | dict[str, Any],
               dataset: str | None = None) -> dict[str, tuple[list[str], list[int]]]:
    """The validation and test items the run was evaluated on (``results``: the record, or results.json as read),
    read again with its data settings (``dataset``: where the data is now, if it moved); refused unless their
    content hash is the run's."""
    results = RunResults.of(results)
    recorded = results.config.get("data") or {}
    known = {f.name for f in dataclasses.fields(DataConfig)}
    data_config = DataConfig(**{k: v for k, v in recorded.items() if k in known})
    if dataset:
        data_config.dataset = dataset
    seed = results.config.get("seed", results.seed if results.seed is not None else 42)
    data = load_task_data(data_config, seed)
    if results.data_fingerprint not in (None, data.fingerprint) or data.labels != results.labels:
        raise ValueError(f"{data_config.dataset}: not the data this run was trained and evaluated on (its content "
                         "hash or labels differ); pass --dataset with the run's data")
    return {split: (list(data.splits[split]["text"]), list(data.splits[split]["label"])) for split in SPLITS}


def source_fingerprints(model_dir: Path) -> dict[str, str | None]:
    """What an export records of its model's directory: the hash of its weights and the checksum of its
    calibration.json (None without one), so that a retrained model or a refitted calibration can be told apart."""
    weights = StageStore.weights_hash(model_dir)  # verifies the manifest
    return {"weights": weights, "calibration": read_manifest(model_dir)["files"].get(CALIBRATION_FILE)}


def export_model(run: str | Path, name: str, config: ExportConfig | None = None,
                 dataset: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Export ``name`` of the run ``run``; the export directory and its parity numbers.

    Raises :class:`ParityGateFailed` (after installing the export, marked failed: in its name, or beside a passing
    export of that name as ``NAME.rejected-<time>``) when the label agreement at the argmax or at the served decision,
    on validation or on test, is below ``config.min_agreement``.
    """
    config = config or ExportConfig()
    run_dir = RunLayout(run)
    exports = RunExports(run_dir)
    results = RunResults.of(read_results(run_dir))
    model_dir = exportable_dir(run_dir, results, name)
    target = exports.path(name, config.quantize)
    with RunLock(run_dir):
        splits = run_splits(results, dataset)
        reference = load_classifier(model_dir)
        if not isinstance(reference, TorchClassifier):
            raise ValueError(f"--model {name}: a {reference.backend} model; only PyTorch models export to ONNX")
        reference.batch_size = config.batch_size
        partial = StageStore.start(target)
        try:
            parity = _write_export(partial, reference, splits, list(results.labels), config, name)
            parity["source"].update(source_fingerprints(model_dir))
            _write_json(partial / PARITY_FILE, parity)
            (partial / MODEL_CARD).write_text(render_model_card(name, results.models[name], results, parity),
                                              encoding="utf-8")
            installed = install_location(target, parity["passed"])
            if installed == target:
                set_aside_foreign(target)
            StageStore.finish(partial, installed, {"export": target.name, "model": name,
                                                   "quantize": config.quantize, "passed": parity["passed"]})
        except BaseException:
            exports.abandon(partial)
            raise
    gate = ParityGate(**parity["gate"])
    logger.info("Wrote %s (label agreement %.4f at the argmax, %.4f at the served decision; gate %s)", installed,
                gate.argmax_agreement, gate.decision_agreement, "passed" if gate.passed else "FAILED")
    if not gate.passed:
        kept = f"; the passing {target} is kept and still served" if installed != target else ""
        where = (("at 0.5 on every label" if parity.get("multi_label") else "at the argmax") if gate.labels == "argmax"
                 else "at the served decision")
        raise ParityGateFailed(
            f"{target.name}: label agreement {gate.agreement:.4f} {where} on {gate.split} is below --min-agreement "
            f"{config.min_agreement}; the numbers are in {installed / PARITY_FILE} and the export is marked failed "
            f"(not loaded or served){kept}", installed, parity)
    return installed, parity


@dataclass
class _Comparison:
    """Both models' logits on the run's validation and test items, and the decision the export is served with."""

    splits: dict[str, tuple[list[str], list[int]]]
    labels: list[str]
    calibration: Calibration | None
    reference: dict[str, np.ndarray]
    exported: dict[str, np.ndarray] = field(default_factory=dict)
    multi_label: bool = False

    def per_split(self, resamples: int) -> dict[str, dict[str, Any]]:
        return {split: split_parity(y_true, self.reference[split], self.exported[split], len(self.labels), resamples,
                                    calibration=self.calibration, labels=self.labels)
                for split, (_, y_true) in self.splits.items()}

    def metrics(self) -> dict[str, Any]:
        """The export's own scores at the argmax (as results.json's ``metrics``)."""
        return {split: classification_metrics(y_true, self.exported[split], self.labels)
                for split, (_, y_true) in self.splits.items()}

    def metrics_at_threshold(self) -> dict[str, Any] | None:
        """The export's own scores at its threshold (as results.json's ``metrics_at_threshold``); None: argmax."""
        calibration = self.calibration
        if self.multi_label and calibration is not None:
            temperatures = np.asarray(getattr(calibration, "temperatures", None) or calibration.temperature)
            return {split: classification_metrics(y_true, self.exported[split] / temperatures, self.labels,
                                                  y_pred=label_decisions(self.exported[split], calibration))
                    for split, (_, y_true) in self.splits.items()}
        if calibration is None or calibration.threshold is None:
            return None
        return {split: classification_metrics(y_true, self.exported[split] / calibration.temperature, self.labels,
                                              y_pred=decided_labels(self.exported[split], calibration))
                for split, (_, y_true) in self.splits.items()}

    def labels_record(self) -> dict[str, Any]:
        """parity_labels.json: per item, the true label and both models' labels at the argmax and as decided."""
        record: dict[str, Any] = {"labels": self.labels}
        if self.multi_label:
            return {**record, **self._label_rows_record()}
        for split, (_, y_true) in self.splits.items():
            record[split] = {
                "y_true": list(map(int, y_true)),
                REFERENCE: labels_of(self.reference[split]).tolist(),
                EXPORTED: labels_of(self.exported[split]).tolist(),
                f"{REFERENCE}_decision": decided_labels(self.reference[split], self.calibration).tolist(),
                f"{EXPORTED}_decision": decided_labels(self.exported[split], self.calibration).tolist()}
        return record

    def _label_rows_record(self) -> dict[str, Any]:
        """A multi-label model's items: the gold 0/1 rows and both models' rows at 0.5 and as decided."""
        return {split: {"y_true": np.asarray(y_true, dtype=np.int64).tolist(),
                        REFERENCE: label_decisions(self.reference[split]).tolist(),
                        EXPORTED: label_decisions(self.exported[split]).tolist(),
                        f"{REFERENCE}_decision": label_decisions(self.reference[split], self.calibration).tolist(),
                        f"{EXPORTED}_decision": label_decisions(self.exported[split], self.calibration).tolist()}
                for split, (_, y_true) in self.splits.items()}


def _write_export(partial: Path, reference: TorchClassifier, splits: dict[str, tuple[list[str], list[int]]],
                  labels: list[str], config: ExportConfig, name: str) -> dict[str, Any]:
    """model.onnx, tokenizer, config, calibration.json and parity_labels.json into ``partial``; the parity numbers."""
    reference.tokenizer.save_pretrained(partial)
    reference.model.config.save_pretrained(partial)
    if reference.calibration is not None:  # the export decides like its model: same temperature and threshold
        (partial / CALIBRATION_FILE).write_text(reference.calibration.to_json(), encoding="utf-8")
    logger.info("[%s] PyTorch logits on validation and test", name)
    compared = _Comparison(splits, labels, reference.calibration,
                           {split: reference.logits(texts) for split, (texts, _) in splits.items()},
                           multi_label=reference.multi_label)
    variants: dict[str, Any] = {}
    quantization = None
    with tempfile.TemporaryDirectory(prefix="distilora-export-") as work:
        fp32 = (Path(work) / ONNX_FILE) if config.quantize else (partial / ONNX_FILE)
        logger.info("[%s] exporting to ONNX (opset %d)", name, config.opset)
        inputs = _export(reference, fp32, config.opset, name)
        if config.quantize:
            quantization, variants = _choose_int8(fp32, Path(work), reference, splits["validation"][0],
                                                  compared.reference["validation"], config, name)
            shutil.move(Path(work) / f"{quantization['variant']}.onnx", partial / ONNX_FILE)
    exported = OnnxClassifier.from_directory(partial, name=name, require_passed=False)
    exported.batch_size = config.batch_size
    logger.info("[%s] ONNX logits on validation and test", name)
    compared.exported = {split: exported.logits(texts) for split, (texts, _) in splits.items()}
    per_split = compared.per_split(config.bootstrap_resamples)
    gate = ParityGate.of(per_split, config.min_agreement)
    _write_json(partial / PARITY_LABELS_FILE, compared.labels_record())
    import onnx
    import onnxruntime

    return {
        "model": name,
        "export": partial.name.removesuffix(".partial"),
        "passed": gate.passed,
        "gate": gate.to_dict(),
        "decision": reference.calibration.decision() if reference.calibration is not None else dict(ARGMAX_DECISION),
        **per_split,
        "metrics": compared.metrics(),
        "metrics_at_threshold": compared.metrics_at_threshold(),
        "labels": labels,
        "size_mb": round((partial / ONNX_FILE).stat().st_size / 2**20, 3),
        "settings": {"exporter": EXPORTER, "opset": config.opset, "inputs": inputs, "output": "logits",
                     "dynamic_axes": ["batch", "sequence"], "quantization": quantization,
                     "batch_size": config.batch_size, "max_length": reference.max_length,
                     "versions": {**library_versions(), "onnx": onnx.__version__,
                                  "onnxruntime": onnxruntime.__version__},
                     "cpu": {"model": cpu_name(), "flags": recorded_cpu_flags()}},
        "int8_variants": variants or None,
        "source": {"model": name, "path": name},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **({"multi_label": True, "thresholds": dict(zip(labels, label_thresholds(reference.calibration, len(labels)),
                                                        strict=True))} if reference.multi_label else {}),
    }


def _export(reference: TorchClassifier, path: Path, opset: int, name: str) -> list[str]:
    try:
        return export_onnx(reference.model, reference.tokenizer, path, opset)
    except Exception as error:  # the exporter's errors are long; one line says what failed
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(f"--model {name}: the ONNX export failed ({type(error).__name__}: {message[:300]})") from error


def _choose_int8(fp32: Path, work: Path, reference: TorchClassifier, texts: list[str], reference_logits: np.ndarray,
                 config: ExportConfig, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Quantize with every configured variant and keep one by :func:`choose_int8` on its validation agreement (the
    lower of the argmax and the served decision's: the variant kept must pass both)."""
    tried: dict[str, Any] = {}
    settings: dict[str, dict[str, Any]] = {}
    for variant in config.int8_variants:
        logger.info("[%s] int8 (%s): agreement on validation", name, variant)
        settings[variant] = quantize_int8(fp32, work / f"{variant}.onnx", variant)
        candidate = OnnxClassifier.from_file(work / f"{variant}.onnx", reference.tokenizer, reference.model.config)
        candidate.batch_size = config.batch_size
        logits = candidate.logits(texts)
        if reference.multi_label:
            delta = label_probability_deltas(reference_logits, logits)
            agreed = label_agreements(reference_logits, logits, reference.calibration)
        else:
            delta = probability_deltas(reference_logits, logits)
            agreed = (agreement(reference_logits, logits),
                      decision_agreement(reference_logits, logits, reference.calibration))
        tried[variant] = {"validation_agreement": agreed[0], "validation_decision_agreement": agreed[1],
                          "validation_max_abs_dp": float(delta.max()) if delta.size else 0.0,
                          "quantized_weight_share": settings[variant]["quantized_weight_share"],
                          "size_mb": round((work / f"{variant}.onnx").stat().st_size / 2**20, 3)}
    best = choose_int8({v: {"agreement": min(t["validation_agreement"], t["validation_decision_agreement"]),
                            "max_abs_dp": t["validation_max_abs_dp"],
                            "quantized_weight_share": t["quantized_weight_share"]} for v, t in tried.items()},
                       config.min_agreement)
    return {**settings[best], "chosen_on": "validation: of the variants passing the gate (argmax and decision "
                                           "agreement) the largest quantized share, else the most agreement"}, tried


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1))
