"""Where a finished export goes in ``RUN/export/``: into its name, or beside the export already there.

* An export takes its name (``export/NAME/``), replacing what distilora wrote there before.
* An export that failed its parity gate never replaces one that passed: it is installed beside it as
  ``export/NAME.rejected-<UTC time>/`` (marked failed, its numbers readable), and the passing export keeps being
  served.
* A directory that holds anything the export did not write (a file outside its manifest, a changed file, no
  manifest) is never removed: it is moved aside to ``export/NAME.old-<UTC time>/`` before the new export takes its
  name.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from distilora.artifacts import fsync_directory
from distilora.export.files import REJECTED_EXPORT
from distilora.kept_files import SET_ASIDE, free_name, in_brief, stamp, user_files
from distilora.run_dir import ONNX_FILE, PARITY_FILE

logger = logging.getLogger(__name__)


def passed_export(directory: Path) -> bool:
    """Whether ``directory`` holds an export whose parity.json says it passed its gate."""
    try:
        parity = json.loads((directory / PARITY_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(parity, dict) and parity.get("passed") is True and (directory / ONNX_FILE).is_file()


def install_location(target: Path, passed: bool) -> Path:
    """``target``, or ``NAME.rejected-<time>`` beside it for an export that failed its gate when ``target`` holds one
    that passed."""
    return target if passed or not passed_export(target) else _stamped(target, REJECTED_EXPORT)


def set_aside_foreign(target: Path) -> Path | None:
    """Move ``target`` to ``NAME.old-<time>`` when it holds anything the export did not write; where it went, or None
    (nothing there, or only the export's own unchanged files: the new export may replace it)."""
    if not target.exists():
        return None
    foreign = user_files(target)
    if not foreign:
        return None
    reason = f"files the export did not write: {in_brief(foreign)}"
    aside = _stamped(target, SET_ASIDE)
    target.rename(aside)
    fsync_directory(target.parent)
    logger.warning("%s holds what distilora did not write (%s); moved to %s instead of being replaced", target,
                   reason, aside.name)
    return aside


def _stamped(target: Path, marker: str) -> Path:
    """A free ``NAME<marker><UTC time>[-n]`` beside ``target``."""
    return free_name(target.with_name(f"{target.name}{marker}{stamp()}"))
