"""``distilora tune`` under torchrun: the main process runs each study and picks every trial; every process trains it
(DDP through the Trainer) and stops with the main process when its pruner says so. Outside torchrun nothing here
does anything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from distilora import distributed
from distilora.tune.outcome import Runner, TrialOutcome

END = None
"""What the main process announces when it has no more trials."""


def announce(message: Any) -> Any:
    """The main process's ``message``, given to every process."""
    return distributed.from_main_process(lambda: message)


class StopWithMain(TrainerCallback):
    """After each validation pass every process stops training when the main process's pruner stopped it (the
    processes of one DDP training must take the same number of steps)."""

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        stop = bool(control.should_training_stop)
        control.should_training_stop = announce(stop)


class AnnouncingRunner:
    """The main process's runner: tells the other processes each trial's route and settings, then trains it with
    them."""

    def __init__(self, route: str, runner: Runner):
        self.route, self.runner = route, runner

    def __call__(self, settings: dict[str, Any], callbacks: list[TrainerCallback]) -> TrialOutcome:
        if distributed.is_distributed():
            announce((self.route, settings))
            callbacks = [*callbacks, StopWithMain()]
        return self.runner(settings, callbacks)


def follow_trials(runners: Mapping[str, Runner]) -> int:
    """Another process's part: train every trial the main process announces until it announces the end; how many."""
    trained = 0
    while (message := announce(END)) is not END:
        route, settings = message
        runners[route](settings, [StopWithMain()])
        trained += 1
    return trained


def end_trials() -> None:
    """The main process's last announcement: the other processes leave :func:`follow_trials`."""
    if distributed.is_distributed():
        announce(END)
