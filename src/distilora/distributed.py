"""Several processes: ``torchrun --nproc_per_node N -m distilora run …`` (gloo on CPUs, NCCL on GPUs).

The ``Trainer`` (through accelerate) trains every gradient route on all processes with DDP. Everything else follows
one rule: only the main process (rank 0) writes the run directory — stages, manifests, the teacher-target cache,
predictions, results, report, the lock — and the other processes wait at the meeting points below and read what it
wrote. Outside torchrun (``WORLD_SIZE`` unset or 1) every function here is a no-op and accelerate is not touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TypeVar

T = TypeVar("T")

TIMEOUT = timedelta(seconds=1800)
"""How long a process waits for the others at a meeting point (the Trainer's ``ddp_timeout`` default)."""


def world_size() -> int:
    """Processes in this run (torchrun's ``WORLD_SIZE``; 1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's index (torchrun's ``RANK``; 0 outside torchrun)."""
    return int(os.environ.get("RANK", "0"))


def is_distributed() -> bool:
    return world_size() > 1


def is_main_process() -> bool:
    return rank() == 0


def _state():
    """accelerate's process state (initialises the process group, as the Trainer would, on first use)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available(), timeout=TIMEOUT)


def backend() -> str | None:
    """The process group's backend (``gloo``, ``nccl``), or None for one process."""
    return _state().backend if is_distributed() else None


def wait_for_everyone() -> None:
    """Block until every process gets here."""
    if is_distributed():
        _state().wait_for_everyone()


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """The main process runs the block first (e.g. writes a cache), then the others (which read it)."""
    if not is_distributed():
        yield
        return
    with _state().main_process_first():
        yield


def from_main_process(compute: Callable[[], T]) -> T:
    """``compute()`` run on the main process alone, its result given to every process.

    An exception on the main process is raised on every process (the others would otherwise wait for ever).
    """
    if not is_distributed():
        return compute()
    from accelerate.utils import broadcast_object_list

    _state()
    payload: list = [None]
    if is_main_process():
        try:
            payload[0] = ("ok", compute())
        except Exception as error:
            broadcast_object_list([("error", f"{type(error).__name__}: {error}")])
            raise
    broadcast_object_list(payload)
    kind, value = payload[0]
    if kind == "error":
        raise RuntimeError(f"the main process failed: {value}")
    return value


def quiet_other_processes() -> None:
    """Keep logs and progress bars to the main process (the others print errors only)."""
    if is_main_process():
        return
    import datasets
    from transformers.utils import logging as transformers_logging

    logging.getLogger("distilora").setLevel(logging.WARNING)
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()
