"""Training routes into a run's stages: reuse what is finished, train the rest, save each atomically."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from transformers import set_seed

from distilora import distributed
from distilora.experiment.context import TEACHER, RunContext, TeacherStage
from distilora.routes import Route
from distilora.run_dir import RunLayout, RunLock, RunLocked, StageRecord, StageStore
from distilora.training.trainer import TrainResult

logger = logging.getLogger(__name__)


class StageRunner:
    """Trains every configured route for every seed into ``run`` (default: the context's run directory).

    Under torchrun every process runs one: the main process decides about reuse and saves, and a gradient route
    trains on every process (DDP); a route fitted without the Trainer (TF-IDF, majority) on the main process alone.
    """

    def __init__(self, ctx: RunContext, run: RunLayout | None = None, store: StageStore | None = None):
        self.ctx = ctx
        self.run = run or ctx.run
        self.store = store or StageStore()
        self.records: dict[str, StageRecord] = {}
        """The main seed's stages by route name, in training order."""
        self.seed_records: dict[tuple[str, int], StageRecord] = {}
        """The other seeds' stages by (route name, seed)."""
        self.reused: list[str] = []

    def train_all(self) -> None:
        """Every configured route with every seed (the routes trained once with the main seed only once)."""
        config = self.ctx.config
        for seed in config.all_seeds():
            for route in self.ctx.routes:
                if seed == config.seed or not route.main_seed_only:
                    self.train(route, seed)

    def train(self, route: Route, seed: int) -> StageRecord:
        """Train ``route`` with ``seed`` unless a finished stage with the same fingerprint exists; save atomically."""
        main_seed = seed == self.ctx.config.seed
        stage_dir = self.run.model_dir(route.name, seed)
        label = route.name if main_seed else f"{route.name} seed {seed}"
        started = time.perf_counter()
        fp = route.fingerprint(self.ctx, seed)
        record = distributed.from_main_process(lambda: self.store.completed(stage_dir, fp))
        if record is not None:
            logger.info("[%s] reusing finished stage in %s", label, stage_dir)
            self.reused.append(label)
            route.restore(record)
        else:
            logger.info("[%s] training (%s: %s)", label, route.kind.value, route.describe(self.ctx.config))
            set_seed(seed)
            work = self.run.work_dir(route.name, fp)
            result = route.train(self.ctx, seed, work) if route.uses_trainer or distributed.is_main_process() else None
            distributed.wait_for_everyone()  # every process is done with the checkpoints in ``work``
            record = distributed.from_main_process(lambda: self.save(route, seed, fp, result, stage_dir, work))
        if main_seed:
            self.records[route.name] = record
            if route.name == TEACHER:
                self.ctx.teacher.stage = TeacherStage(record, stage_dir)
        else:
            self.seed_records[(route.name, seed)] = record
        self.ctx.stage_seconds[label] = time.perf_counter() - started
        return record

    def save(self, route: Route, seed: int, fp: str, result: TrainResult, stage_dir: Path,
             work: Path) -> StageRecord:
        """Save a trained model and its record into place (main process), and drop its Trainer checkpoints."""
        partial = self.store.start(stage_dir)
        route.save(result.model, partial)
        if route.tokenized:
            self.ctx.tokenizer.save_pretrained(partial)
        record = StageRecord(name=route.name, route=route.kind.value, fingerprint=fp, layers=route.layers,
                             seed=seed, train_loss=result.train_loss, train_loss_mean=result.train_loss_mean,
                             train_seconds=result.train_seconds, trainable_params=result.trainable_params,
                             precision=self.ctx.precision if route.uses_trainer else None,
                             world_size=self.ctx.world_size if route.uses_trainer else 1,
                             history=result.history, details=route.details())
        self.store.finish_stage(partial, stage_dir, record, self.ctx.data_fingerprint)
        self.store.remove_work(work)
        return record


@contextlib.contextmanager
def main_process_lock(run: RunLayout) -> Iterator[None]:
    """The run directory's lock, held by the main process; every process stops if it is taken."""
    with contextlib.ExitStack() as stack:

        def take() -> str | None:
            try:
                stack.enter_context(RunLock(run))
            except RunLocked as locked:
                return str(locked)
            return None

        taken_by_another = distributed.from_main_process(take)
        if taken_by_another:
            raise RunLocked(taken_by_another)
        yield
