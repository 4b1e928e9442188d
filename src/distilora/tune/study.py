"""One Optuna study per route: its storage, sampler and pruner, the default trial, the budget, and orphaned trials.

Storage: a journal file in the run directory by default (several ``distilora tune`` processes on one machine share
it), or any Optuna RDB URL for workers on several machines (with a heartbeat, so that a dead worker's trial is failed
and retried by the next one). Sampler: TPE, seeded. Pruner: the median rule (see :func:`make_pruner`).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError, ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.study import MaxTrialsCallback, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from distilora.config import TuneConfig, check_tuning_budget
from distilora.routes.space import SearchSpace, SpaceError
from distilora.tune.records import DEFAULT_ATTR, OVER_BUDGET_ATTR, WORKER_ATTR

logger = logging.getLogger(__name__)

TUNE_DIR = ".tune"
JOURNAL_FILE = "journal.log"
HEARTBEAT_S = 60
"""RDB storages: a running trial writes a heartbeat this often ..."""
GRACE_S = 300
"""... and one silent this long is failed (its worker died) and retried once, by whichever worker starts next."""


def retry_killed() -> RetryHeartbeatStaleTrialCallback:
    """Runs a trial whose worker died again, once, with the same parameters (a kill costs one trial of the budget)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # stable since Optuna 2.8; still marked experimental
        return RetryHeartbeatStaleTrialCallback(max_retry=1)


SPACE_ATTR = "space"
COUNTED_STATES = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class TuneError(ValueError):
    """Input the tuner cannot use; the message is one line naming what to fix."""


class OverBudget(Exception):  # noqa: N818 - read as "the study is over budget"
    """A trial created after the budget was spent by another process: failed before it runs anything."""


def tune_dir(run_dir: Path) -> Path:
    """Where a run keeps its tuning: the default journal, and the kept model of each route's best trial."""
    return Path(run_dir) / TUNE_DIR


def open_storage(storage: str | None, run_dir: Path) -> BaseStorage:
    """``storage``: None (a journal file in the run directory), an Optuna RDB URL, or a journal file's path; a
    TuneError naming it when it cannot be opened."""
    if storage is None or "://" not in storage:
        path = tune_dir(run_dir) / JOURNAL_FILE if storage is None else Path(storage)
        if storage is None and Path(run_dir).is_dir():
            path.parent.mkdir(exist_ok=True)
        try:
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as error:
            raise TuneError(f"--storage {path}: cannot open the journal file ({error.strerror or error})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # the heartbeat, in Optuna since 2.9
            return RDBStorage(storage, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                              heartbeat_stale_trial_callback=retry_killed())
    except Exception as error:  # noqa: BLE001 - SQLAlchemy and the DB drivers raise many kinds; each is reported
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TuneError(f"--storage {_hide_password(storage)}: cannot open it ({reason})") from None


def _hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return url


def make_pruner(config: TuneConfig) -> optuna.pruners.BasePruner:
    """The median rule: prune a trial whose best validation score so far is below the median of the finished
    trials at the same validation pass. Chosen over successive halving because trials differ in length (2–8 epochs)
    and budgets are small (about 12 trials): the median compares each pass with the trials that reached it, where
    successive halving would stop all but 1/η of the trials at its first rung, on noisy first-epoch scores."""
    return optuna.pruners.MedianPruner(n_startup_trials=config.pruner_startup_trials,
                                       n_warmup_steps=config.pruner_warmup_evaluations)


class TrialSeededTPESampler(optuna.samplers.TPESampler):
    """TPE whose random draws for a trial are seeded by ``(seed, trial number)``, not by one stream per process:
    one process repeats its trials exactly for a seed, and processes sharing a study draw different parameters
    (with one stream each, two workers of the same seed would propose the same random settings). Constant liar:
    a trial still running counts as a poor one, so concurrent workers do not sample beside each other."""

    def __init__(self, seed: int, n_startup_trials: int):
        super().__init__(seed=seed, n_startup_trials=n_startup_trials, constant_liar=True)
        self.seed = seed

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # TPESampler keeps its generators private; reseeding them is what its own reseed_rng() does.
        self._rng.rng.seed([self.seed, trial.number])
        self._random_sampler._rng.rng.seed([self.seed, trial.number, 1])
        super().before_trial(study, trial)


def make_sampler(config: TuneConfig) -> optuna.samplers.BaseSampler:
    return TrialSeededTPESampler(seed=config.seed, n_startup_trials=config.sampler_startup_trials)


def open_study(storage: BaseStorage, route: str, space: SearchSpace, defaults: Mapping[str, Any],
               config: TuneConfig, study_name: str | None = None) -> optuna.Study:
    """The route's study (named ``study_name``, default the route), created or resumed.

    The default settings ``defaults`` are enqueued as the first trial when the study has none, so the tuned value
    is at least the default's; a resumed study keeps its trials and does not enqueue them again. Trials left
    running by a process of this machine that has died are failed and retried once.
    """
    try:
        default_params = space.trial_params(defaults)
    except SpaceError as error:
        raise TuneError(f"route {route}: the default settings lie outside its search space: {error}") from None
    name = study_name or route
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                    sampler=make_sampler(config), pruner=make_pruner(config))
        created = True
    except DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(config),
                                  pruner=make_pruner(config))
        created = False
    if study.direction != StudyDirection.MAXIMIZE:
        raise TuneError(f"study {name} in this storage minimizes: it is not a distilora study; use another --storage")
    _check_space(study, space, route)
    fail_orphaned_trials(study)
    if created or not study.get_trials(deepcopy=False):
        study.enqueue_trial(default_params, user_attrs={DEFAULT_ATTR: True}, skip_if_exists=True)
    return study


def _check_space(study: optuna.Study, space: SearchSpace, route: str) -> None:
    """A study keeps the space it started with: mixing trials of two spaces would make its best trial ambiguous."""
    described = space.describe()
    recorded = study.user_attrs.get(SPACE_ATTR)
    if recorded is None:
        study.set_user_attr(SPACE_ATTR, described)
    elif recorded != described:
        changed = next((new for old, new in zip(recorded, described, strict=False) if old != new), described[-1])
        raise TuneError(f"route {route}: study {study.study_name} was started with another search space ({changed} "
                        "differs); tune with the same space file, or give another --storage")


def worker_identity() -> dict[str, Any]:
    """This process, as recorded on the trials it runs: host, pid and the pid's start time (pids are reused)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _process_start(os.getpid())}


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks after boot (Linux ``/proc``); None where unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _is_running(worker: Mapping[str, Any]) -> bool:
    """Whether the process a trial records is alive (a process of another host is assumed to be)."""
    if worker.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(worker["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return worker.get("started") is None or worker["started"] == _process_start(int(worker["pid"]))


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Fail the running trials whose process on this machine has died (a killed ``tune``), and enqueue each again
    once; the numbers of the trials failed. RDB storages also fail them by heartbeat, from any machine."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER_ATTR)
        if not isinstance(worker, Mapping) or _is_running(worker):
            continue
        # Optuna's public API finishes only the trials of this process; its own stale-trial check uses the storage.
        try:
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another process failed it first
        logger.warning("%s: trial %d was left running by process %s, which has died: failed, and run again",
                       study.study_name, trial.number, worker.get("pid"))
        retry_killed()(study, study._storage.get_trial(trial._trial_id))
        failed.append(trial.number)
    return failed


@dataclass(frozen=True)
class Budget:
    """The same budget for every route: ``trials`` counted over the study (finished, pruned and failed alike, by
    every process sharing it), and/or ``timeout_s`` of wall clock per route and invocation."""

    trials: int | None
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        try:
            check_tuning_budget(self.trials, self.timeout_s)
        except ValueError as error:
            raise TuneError(str(error)) from None

    @classmethod
    def of(cls, config: TuneConfig) -> Budget:
        return cls(config.trials, config.timeout_per_route_s)

    def counted(self, study: optuna.Study) -> list[FrozenTrial]:
        return [t for t in study.get_trials(deepcopy=False, states=COUNTED_STATES)
                if not t.user_attrs.get(OVER_BUDGET_ATTR)]

    def remaining(self, study: optuna.Study) -> int | None:
        return None if self.trials is None else max(0, self.trials - len(self.counted(study)))

    def admit(self, trial: optuna.Trial) -> None:
        """Let ``trial`` run if fewer than ``trials`` counted trials were created before it; else mark it over budget
        and raise OverBudget. Several processes can pass the check of their loop at once: creation order decides,
        so the cap is never exceeded."""
        if self.trials is None:
            return
        ahead = [t for t in self.counted(trial.study) if t.number < trial.number]
        if len(ahead) >= self.trials:
            trial.set_user_attr(OVER_BUDGET_ATTR, True)
            raise OverBudget(f"trial {trial.number}: the study's {self.trials} trials are taken")

    def stop_callback(self) -> MaxTrialsCallback | None:
        """Ends a process's loop once the study holds ``trials`` counted trials, whichever processes run them (the
        running ones included, so no process starts a trial the budget has no room for; an over-budget trial
        only exists once the counted ones reach the cap, so counting it too changes nothing)."""
        if self.trials is None:
            return None
        return MaxTrialsCallback(self.trials, states=COUNTED_STATES)
