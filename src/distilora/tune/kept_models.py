"""The model of each route's best trial, kept under ``<run>/.tune/<route>/trial-<n>/``; the others are removed.

A trial's model is saved only when the trial leads its study, with a manifest (checksums) written last; a directory
is removed only when its manifest names this study and every file in it is one the tuner wrote, so a rerun never
deletes what the user put there.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from distilora.artifacts import ArtifactError, read_manifest, write_manifest
from distilora.kept_files import user_files
from distilora.tune.outcome import Evaluation
from distilora.tune.records import MODEL_DIR_ATTR, SETTINGS_ATTR, best_trial, trial_rank

logger = logging.getLogger(__name__)

TRIAL_PREFIX = "trial-"
PARTIAL_SUFFIX = ".partial"
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class KeptModels:
    """The trial models of one study under ``root``."""

    def __init__(self, root: Path, study_name: str):
        self.root = Path(root)
        self.study_name = study_name

    def trial_dir(self, number: int) -> Path:
        return self.root / f"{TRIAL_PREFIX}{number}"

    def keep_if_leading(self, trial: optuna.Trial, best: Evaluation, save: Callable[[Path], None]) -> Path | None:
        """Save the trial's model when its best evaluation beats every finished trial's; its directory or None."""
        leader = best_trial(trial.study)
        if leader is not None and trial_rank(leader)[:2] >= best.rank:
            return None
        target = self.trial_dir(trial.number)
        partial = target.with_name(target.name + PARTIAL_SUFFIX)
        for path in (target, partial):
            if path.exists():
                raise FileExistsError(f"{path} exists already (another study's trial?): move it away and rerun")
        partial.mkdir(parents=True)
        save(partial)
        write_manifest(partial, {"study": self.study_name, "trial": trial.number,
                                 "settings": trial.user_attrs.get(SETTINGS_ATTR), "validation_macro_f1": best.macro_f1,
                                 "validation_loss": best.loss, "epoch": best.epoch})
        partial.rename(target)
        trial.set_user_attr(MODEL_DIR_ATTR, str(target))
        return target

    def remove_overtaken(self, study: optuna.Study, trial: FrozenTrial | None = None) -> list[Path]:
        """Remove the kept models of finished trials other than the best (an Optuna study callback); the removed."""
        best = best_trial(study)
        states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
        removed = []
        for path in sorted(self.root.glob(f"{TRIAL_PREFIX}*")):
            number = self._trial_number(path)
            if number is None or (best is not None and number == best.number) or states.get(number) not in \
                    FINISHED_STATES or not self._written_here(path):
                continue
            shutil.rmtree(path)
            removed.append(path)
        return removed

    def _trial_number(self, path: Path) -> int | None:
        digits = path.name[len(TRIAL_PREFIX):].removesuffix(PARTIAL_SUFFIX)
        return int(digits) if path.is_dir() and digits.isdigit() else None

    def _written_here(self, path: Path) -> bool:
        """Whether every file under ``path`` is one this study's tuner wrote (its manifest lists them unchanged)."""
        try:
            manifest = read_manifest(path)
        except ArtifactError:
            logger.warning("%s: left in place (no readable manifest: not a finished trial model)", path)
            return False
        if manifest.get("study") != self.study_name:
            return False
        extra = user_files(path)
        if extra:
            logger.warning("%s: left in place, it holds files the tuner did not write (%s)", path, ", ".join(extra))
        return not extra
