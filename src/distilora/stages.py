"""Stage bookkeeping: a stage's model directory appears only when the stage is complete.

Each stage trains into ``<name>.partial/``, writes ``stage.json`` (its training record) and then
``manifest.json`` (checksums), and only then is renamed into place. A directory whose manifest verifies
and whose fingerprint matches is reused; anything else is trained again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distilora.artifacts import ArtifactError, verify_manifest, write_manifest

STAGE_FILE = "stage.json"
logger = logging.getLogger(__name__)


def fingerprint(*parts: Any) -> str:
    """Stable hash of JSON-able parts (configs, hashes, names)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class StageRecord:
    """What training a model produced, kept beside its weights."""

    name: str
    route: str
    fingerprint: str
    layers: list[int] | None = None
    seed: int | None = None
    train_loss: float | None = None
    train_loss_mean: float | None = None
    train_seconds: float | None = None
    trainable_params: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best_validation_macro_f1(self) -> float | None:
        scores = [entry["eval_macro_f1"] for entry in self.history if "eval_macro_f1" in entry]
        return max(scores) if scores else None


def completed(stage_dir: Path, expected_fingerprint: str) -> StageRecord | None:
    """The record of a finished, intact stage with this fingerprint, or None."""
    if not (stage_dir / STAGE_FILE).exists():
        return None
    try:
        verify_manifest(stage_dir)
    except ArtifactError as error:
        logger.warning("%s; training this stage again", error)
        return None
    record = StageRecord(**json.loads((stage_dir / STAGE_FILE).read_text()))
    return record if record.fingerprint == expected_fingerprint else None


def partial_dir(stage_dir: Path) -> Path:
    path = stage_dir.with_name(stage_dir.name + ".partial")
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def finish(partial: Path, stage_dir: Path, record: StageRecord, data_fingerprint: str) -> None:
    """Write the record and the manifest, then swap the finished directory into place."""
    (partial / STAGE_FILE).write_text(json.dumps(asdict(record), indent=1))
    write_manifest(partial, {
        "stage": record.name, "route": record.route, "fingerprint": record.fingerprint, "seed": record.seed,
        "data_fingerprint": data_fingerprint, "layers": record.layers,
        "metrics": {"train_loss": record.train_loss, "best_validation_macro_f1": record.best_validation_macro_f1},
    })
    old = stage_dir.with_name(stage_dir.name + ".old")
    if stage_dir.exists():
        if old.exists():
            shutil.rmtree(old)
        stage_dir.rename(old)
    partial.rename(stage_dir)
    shutil.rmtree(old, ignore_errors=True)
