"""``distilora tune`` on a finished run: every input checked first, then each route's study on the run's own data
and finished teacher (one :class:`RunContext`, the teacher never retrained), and ``<run>/tune.json``."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.storages import BaseStorage
from transformers import TrainerCallback

from distilora import distributed
from distilora.config import ExperimentConfig, TuneConfig
from distilora.experiment import RunContext, train_route
from distilora.experiment.context import TEACHER, TeacherStage
from distilora.routes import Route, RouteSetup, create_route
from distilora.routes.registry import student_depth
from distilora.routes.space import SearchSpace, SpaceError
from distilora.routes.space_file import apply_space_file
from distilora.run_dir import RESULTS, RunLayout, StageStore, read_results, read_tuning, write_tuning
from distilora.tune.install import install_tuned, tuned_name
from distilora.tune.outcome import Evaluation, TrialOutcome, evaluations_from_log_history
from distilora.tune.processes import AnnouncingRunner, end_trials, follow_trials
from distilora.tune.study import Budget, TuneError, open_storage, open_study, tune_dir
from distilora.tune.tuner import RouteTuning, tune_route


def read_run_results(run_dir: Path) -> dict[str, Any]:
    """The run's results.json; a TuneError when it has none."""
    try:
        return read_results(RunLayout(run_dir))
    except FileNotFoundError:
        raise TuneError(f"{run_dir}: no {RESULTS}; give a run directory made by `distilora run`") from None


def read_run_config(run_dir: Path) -> ExperimentConfig:
    """The run's :class:`ExperimentConfig` from its results.json, its output directory the one given."""
    config = ExperimentConfig.from_dict(read_run_results(run_dir)["config"])
    config.output_dir = str(run_dir)
    return config


@dataclass(frozen=True)
class RoutePlan:
    """One route to tune: the route, its search space (the space file's ranges applied) and default settings."""

    name: str
    route: Route
    space: SearchSpace
    defaults: dict[str, Any]


@dataclass(frozen=True)
class TuningPlan:
    """Everything ``tune`` needs, checked before anything is written."""

    run_dir: Path
    config: ExperimentConfig
    tune: TuneConfig
    routes: list[RoutePlan]
    teacher: TeacherStage


def _route_plan(config: ExperimentConfig, name: str, setup: RouteSetup) -> tuple[Route, SearchSpace]:
    route = create_route(name, setup)
    space = route.search_space(config)
    if space is None:
        raise TuneError(f"route {name} has nothing to tune: give gradient routes or tfidf")
    return route, space


def _finished_teacher(config: ExperimentConfig, run_dir: Path) -> TeacherStage:
    directory = RunLayout(run_dir, config.seed).model_dir(TEACHER)
    record = StageStore().finished(directory)
    if record is None:
        raise TuneError(f"{run_dir} has no finished teacher: finish the run (`distilora run`) before tuning it")
    return TeacherStage(record, directory)


def plan_tuning(run_dir: str | Path, tune: TuneConfig, teacher_depth: int) -> TuningPlan:
    """Every input checked (run, routes, spaces, space file, defaults inside the spaces, the finished teacher);
    a one-line TuneError / SpaceError / RouteError naming what to fix. Writes nothing."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    setup = RouteSetup(teacher_depth, student_depth(config, teacher_depth))
    chosen = {name: _route_plan(config, name, setup) for name in tune.routes}
    spaces = {name: space for name, (_, space) in chosen.items()}
    if tune.space_file is not None:
        if not Path(tune.space_file).is_file():
            raise TuneError(f"--space {tune.space_file}: no such file")
        spaces = apply_space_file(Path(tune.space_file), spaces)
    plans = []
    trained = read_run_results(run_dir).get("models") or {}
    for name, (route, _) in chosen.items():
        space = spaces[name]
        defaults = space.defaults(route.tuning_sections(config, trained.get(name)))
        try:
            space.trial_params(defaults)
        except SpaceError as error:
            raise TuneError(f"route {name}: the default settings lie outside its search space: {error}") from None
        plans.append(RoutePlan(name, route, space, defaults))
    return TuningPlan(run_dir, config, tune, plans, _finished_teacher(config, run_dir))


class RouteRunner:
    """A :data:`~distilora.tune.Runner`: one trial = ``train_route`` on the shared context, its model saved into a
    work directory under ``<run>/.tune/work`` and copied into the kept-model directory when the trial leads."""

    def __init__(self, config: ExperimentConfig, name: str, context: RunContext, work_dir: Path):
        self.config, self.name, self.context, self.work_dir = config, name, context, work_dir

    def __call__(self, settings: dict[str, Any], callbacks: list[TrainerCallback]) -> TrialOutcome:
        trained = train_route(self.config, self.name, settings, context=self.context, work_dir=self.work_dir,
                              callbacks=callbacks, save=True)
        history = evaluations_from_log_history(trained.history) or [
            Evaluation(0.0, trained.validation_macro_f1, trained.validation_loss)]
        directory = trained.directory

        def save_model(target: Path) -> None:
            shutil.copytree(directory, target, dirs_exist_ok=True)

        return TrialOutcome(history, trained.train_seconds, save_model=save_model)


def run_tuning(plan: TuningPlan, storage: BaseStorage, progress: bool = True) -> list[RouteTuning]:
    """Each planned route's study, run to the budget on one context; ``tune.json`` written after each route, and
    the best trial's model installed as the run's stage ``<route>-tuned``. Under torchrun the main process runs
    the studies (and returns them), the others train the trials it picks (and return none)."""
    context = RunContext(plan.config, check_writable=False)
    context.teacher.stage = plan.teacher  # the run's finished teacher: never trained here
    runners = {route.name: RouteRunner(plan.config, route.name, context, tune_dir(plan.run_dir) / "work")
               for route in plan.routes}
    if not distributed.is_main_process():  # under torchrun: train the trials the main process picks
        follow_trials(runners)
        distributed.wait_for_everyone()
        return []
    budget = Budget.of(plan.tune)
    tunings = []
    for route in plan.routes:
        study = open_study(storage, route.name, route.space, route.defaults, plan.tune)
        runner = AnnouncingRunner(route.name, runners[route.name])
        tunings.append(tune_route(study, route.name, route.space, runner, budget,
                                  model_root=tune_dir(plan.run_dir) / route.name, progress=progress))
        write_tune_file(plan.run_dir, tunings)
        install_tuned(context, tunings[-1])
    end_trials()
    shutil.rmtree(tune_dir(plan.run_dir) / "work", ignore_errors=True)
    distributed.wait_for_everyone()  # tune.json and the installed models are written before any process reads them
    return tunings


def write_tune_file(run_dir: Path, tunings: list[RouteTuning]) -> Path:
    """``<run>/tune.json``: the routes tuned by this invocation, over those an earlier one recorded."""
    return write_tuning(RunLayout(run_dir), [tuning.record for tuning in tunings])


def open_run_storage(plan: TuningPlan) -> BaseStorage | None:
    """The study storage (the first thing written: the default journal in ``<run>/.tune/``); under torchrun the
    main process alone opens it (None elsewhere), and its error stops every process."""
    opened: list[BaseStorage] = []
    distributed.from_main_process(lambda: opened.append(open_storage(plan.tune.storage, plan.run_dir)))
    return opened[0] if opened else None


def tuned_routes(run_dir: Path) -> list[str]:
    """The ``<route>-tuned`` models installed in the run, in ``tune.json``'s order."""
    return [tuned_name(route) for route in read_tuning(RunLayout(run_dir))
            if (Path(run_dir) / tuned_name(route)).is_dir()]
