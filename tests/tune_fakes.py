"""A fake route for the tuner: validation scores that are a deterministic function of the settings, fed through the
Trainer callbacks as a real training run would; also run as a script, a ``tune`` worker in its own process."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from safetensors.numpy import save_file
from transformers import TrainerControl

from distilora.config import TrainConfig, TuneConfig
from distilora.tune import Budget, Evaluation, TrialOutcome, open_storage, open_study, trainer_space, tune_route

PEAK_LEARNING_RATE = 1.5e-4
SEEDS_SETTING = TrainConfig(epochs=5, learning_rate=5e-5, batch_size=64)
"""The setting the seeds were trained with: the default trial of the fake route."""
FAST = dict(sampler_startup_trials=3, pruner_startup_trials=2, pruner_warmup_evaluations=1)


def fake_space():
    return trainer_space()


def fake_defaults() -> dict[str, Any]:
    return fake_space().defaults({"train": SEEDS_SETTING})


def fake_history(settings: dict[str, Any]) -> list[Evaluation]:
    """A macro-F1 peaked at one learning rate that rises with the epochs, best at epoch 4, then falls (so the last
    epoch is not the best); loss falls with the F1."""
    distance = math.log10(settings["train.learning_rate"] / PEAK_LEARNING_RATE)
    height = 0.9 - 0.5 * distance ** 2 - 0.3 * settings["train.weight_decay"]
    history = []
    for epoch in range(1, int(settings["train.epochs"]) + 1):
        f1 = height * (1 - 0.5 ** epoch) - 0.03 * max(0, epoch - 4)
        history.append(Evaluation(epoch=float(epoch), macro_f1=round(f1, 6), loss=round(1.5 - f1, 6)))
    return history


class FakeRunner:
    """Reports each epoch to the callbacks (stopping when they say so) and saves a small model when asked."""

    def __init__(self, record: Path | None = None, kill_on_call: int | None = None, wait_for: tuple[Path, int] = None,
                 interrupt_on_call: int | None = None):
        self.calls: list[dict[str, Any]] = []
        self.record = record
        self.kill_on_call = kill_on_call
        self.interrupt_on_call = interrupt_on_call
        self.wait_for = wait_for

    def __call__(self, settings: dict[str, Any], callbacks: list) -> TrialOutcome:
        self.calls.append(settings)
        if self.record is not None:
            with self.record.open("a") as handle:
                handle.write(json.dumps({"pid": os.getpid(), "settings": settings}) + "\n")
        if self.wait_for is not None:
            self._barrier(*self.wait_for)
        control, history = TrainerControl(), []
        evaluations = fake_history(settings)
        for evaluation in evaluations:
            history.append(evaluation)
            state = SimpleNamespace(epoch=evaluation.epoch, global_step=len(history), max_steps=len(evaluations))
            metrics = {"eval_macro_f1": evaluation.macro_f1, "eval_loss": evaluation.loss}
            for callback in callbacks:
                callback.on_evaluate(None, state, control, metrics=metrics)
            if len(self.calls) == self.kill_on_call:
                os.kill(os.getpid(), signal.SIGKILL)
            if len(self.calls) == self.interrupt_on_call:
                raise KeyboardInterrupt
            if control.should_training_stop:
                break
        return TrialOutcome(history, seconds=0.01, save_model=lambda d: save_fake_model(d, settings))

    def _barrier(self, directory: Path, parties: int) -> None:
        """Wait (at most a minute) until ``parties`` processes have reached their first trial."""
        (directory / str(os.getpid())).touch()
        deadline = time.monotonic() + 60
        while len(list(directory.iterdir())) < parties and time.monotonic() < deadline:
            time.sleep(0.05)


def save_fake_model(directory: Path, settings: dict[str, Any]) -> None:
    """A complete model directory as a manifest requires it: config, weights and tokenizer files."""
    (directory / "config.json").write_text(json.dumps(settings))
    (directory / "vocab.txt").write_text("[PAD]\n")
    save_file({"weight": np.zeros(2, dtype=np.float32)}, str(directory / "model.safetensors"))


def open_fake_study(storage_spec: str, run_dir: Path, trials: int | None, seed: int = 7, name: str = "fake"):
    config = TuneConfig(trials=trials, seed=seed, **FAST)
    storage = open_storage(storage_spec, run_dir)
    return open_study(storage, name, fake_space(), fake_defaults(), config), config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("journal")
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--record", type=Path)
    parser.add_argument("--barrier", type=Path)
    parser.add_argument("--parties", type=int, default=2)
    parser.add_argument("--kill-on-call", type=int)
    args = parser.parse_args()
    study, config = open_fake_study(args.journal, Path(args.journal).parent, args.trials)
    runner = FakeRunner(args.record, args.kill_on_call, (args.barrier, args.parties) if args.barrier else None)
    tune_route(study, "fake", fake_space(), runner, Budget(config.trials), progress=False, collect_garbage=False)


if __name__ == "__main__":
    main()
