"""Stage bookkeeping: a stage's model directory appears only when the stage is complete.

Each stage trains into ``<name>.partial/`` and is renamed into place after its ``stage.json``
(fingerprint, training record) is written; a directory whose fingerprint matches is reused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STAGE_FILE = "stage.json"


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
    train_loss: float | None = None
    train_loss_mean: float | None = None
    train_seconds: float | None = None
    trainable_params: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def completed(stage_dir: Path, expected_fingerprint: str) -> StageRecord | None:
    """The record of a finished stage with this fingerprint, or None."""
    file = stage_dir / STAGE_FILE
    if not file.exists():
        return None
    record = StageRecord(**json.loads(file.read_text()))
    return record if record.fingerprint == expected_fingerprint else None


def partial_dir(stage_dir: Path) -> Path:
    path = stage_dir.with_name(stage_dir.name + ".partial")
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def finish(partial: Path, stage_dir: Path, record: StageRecord) -> None:
    """Write the record, then swap the finished directory into place."""
    (partial / STAGE_FILE).write_text(json.dumps(asdict(record), indent=1))
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    partial.rename(stage_dir)
