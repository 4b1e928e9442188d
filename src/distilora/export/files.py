"""Where a run keeps its ONNX exports: ``export/<name>[-<quantize>]/``, and which of the directories there are
finished exports (the layout is drawn in :mod:`distilora.run_dir`)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from distilora import kept_files
from distilora.artifacts import MANIFEST, SWAPPED_SUFFIX
from distilora.run_dir import ONNX_FILE, SAFE_NAME, RunLayout, check_safe_name

EXPORT_DIR = "export"
PARITY_LABELS_FILE = "parity_labels.json"
REJECTED_EXPORT = ".rejected-"
"""Markers of export directories kept beside ``export/<name>/`` (never served)."""


def export_name(name: str, quantize: str | None = None) -> str:
    """``odd`` (fp32) or ``odd-int8``: the export's directory name, and its model name when served."""
    return f"{name}-{quantize}" if quantize else name


class RunExports:
    """The ONNX exports of one run. They are written and swapped into place by
    :class:`~distilora.run_dir.StageStore`, like stages."""

    def __init__(self, run: RunLayout):
        self.run = run

    @property
    def directory(self) -> Path:
        return self.run.root / EXPORT_DIR

    def path(self, name: str, quantize: str | None = None) -> Path:
        """``export/<name>[-<quantize>]/``; ``name`` must be a plain file name."""
        return self.directory / export_name(check_safe_name(name, "model name"), quantize)

    def finished(self) -> dict[str, Path]:
        """Every finished export (a directory with ``model.onnx`` and a manifest; no ``.partial`` / ``.old`` /
        ``.old-<time>`` / ``.rejected-<time>``), by name, sorted; whether it verifies and passed its parity gate is for
        the loader to say."""
        if not self.directory.is_dir():
            return {}
        return {path.name: path for path in sorted(self.directory.iterdir())
                if SAFE_NAME.fullmatch(path.name) and not path.name.endswith((".partial", SWAPPED_SUFFIX))
                and not kept_files.is_set_aside(path.name) and REJECTED_EXPORT not in path.name
                and (path / ONNX_FILE).is_file() and (path / MANIFEST).is_file()}

    def abandon(self, partial: Path) -> None:
        """Remove a failed export's ``.partial`` (and ``export/`` itself when nothing else is in it)."""
        shutil.rmtree(partial, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.directory.rmdir()
