"""Where a run keeps each kind of artifact (the layout is drawn in :mod:`distilora.run_dir`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

RESULTS = "results.json"
TUNE_FILE = "tune.json"
"""``{"routes": {route: TunedRoute}}``, written by ``distilora tune``."""
RESULTS_TABLE = "results.md"
CALIBRATION_FILE = "calibration.json"
MODEL_CARD = "README.md"
REPORT_FILES = ("report.html", "report.md")
ONNX_FILE = "model.onnx"
PARITY_FILE = "parity.json"
"""An ONNX export's model and its parity numbers (read wherever an export is loaded)."""
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_safe_name(name: str, what: str) -> str:
    """``name`` if it is a plain file name (letters, digits, ``_ . -``); a ValueError naming ``what`` otherwise."""
    if not SAFE_NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r}: use letters, digits, '_', '.' and '-' only")
    return name


class RunLayout:
    """The paths of one run. ``main_seed`` decides which seed's models sit at the top level."""

    def __init__(self, root: str | Path, main_seed: int | None = None):
        self.root = Path(root)
        self.main_seed = main_seed

    def model_dir(self, name: str, seed: int | None = None) -> Path:
        """Main-seed models live at the top of the run; other seeds under ``seeds/<seed>/``."""
        if seed is None or seed == self.main_seed:
            return self.root / name
        return self.root / "seeds" / str(seed) / name

    def work_dir(self, name: str, stage_fingerprint: str) -> Path:
        """Where a stage's Trainer checkpoints live while it trains (an interrupted stage resumes from there)."""
        return self.root / ".work" / f"{name}-{stage_fingerprint}"

    def teacher_targets_file(self, key: str) -> Path:
        return self.root / ".cache" / f"teacher-targets-{key}.safetensors"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    def predictions_file(self, name: str) -> Path:
        return self.root / "predictions" / f"{name}.json"

    @property
    def results_file(self) -> Path:
        return self.root / RESULTS

    @property
    def tune_file(self) -> Path:
        return self.root / TUNE_FILE

    @property
    def results_table(self) -> Path:
        return self.root / RESULTS_TABLE

    def ensure_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{os.getpid()}"  # one per process: torchrun's run them side by side
            probe.write_text("ok")
            probe.unlink()
        except OSError as error:
            raise PermissionError(f"--output-dir {self.root}: cannot write there ({error.strerror})") from error

    def is_finished(self) -> bool:
        return self.results_file.is_file()

    @staticmethod
    def latest(runs: Path = Path("runs")) -> RunLayout | None:
        """The run under ``runs/`` whose results.json is newest, or None."""
        candidates = [p for p in runs.glob(f"*/{RESULTS}") if p.is_file()]
        if not candidates:
            return None
        return RunLayout(max(candidates, key=lambda p: p.stat().st_mtime).parent)
