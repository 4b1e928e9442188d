"""Where a run keeps its behavioural checks: ``checks/<name>.json`` and their heat-maps under ``plots/``."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from distilora.artifacts import write_atomic
from distilora.run_dir import RunLayout, check_safe_name

logger = logging.getLogger(__name__)

CHECKS_DIR = "checks"


class RunChecks:
    """The checks of one run, by name."""

    def __init__(self, run: RunLayout):
        self.run = run

    @property
    def directory(self) -> Path:
        return self.run.root / CHECKS_DIR

    def file(self, name: str) -> Path:
        """``checks/<name>.json``; ``name`` must be a plain file name (letters, digits, ``_ . -``)."""
        return self.directory / f"{check_safe_name(name, 'check name')}.json"

    def plot(self, name: str, column: str) -> Path:
        """The heat-map of one check's grouping column under ``plots/``."""
        return self.run.plots_dir / f"checks_{name}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', column)}.png"

    def write(self, name: str, check: dict[str, Any]) -> Path:
        path = self.file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(check, indent=1))
        return path

    def read_all(self) -> dict[str, dict[str, Any]]:
        """Every ``checks/*.json`` of the run by name (sorted); a file that is not valid JSON is logged, left out."""
        checks = {}
        for path in sorted(self.directory.glob("*.json")):
            try:
                checks[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                logger.warning("%s: cannot be read (%s); left out", path, error)
        return checks
