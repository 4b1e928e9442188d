"""The run's models in a child process, so that model calls and the web server's event loop do not share a GIL.

The server's batching thread sends ``(model, texts)`` down a pipe and waits (releasing the GIL) for the answers;
the child loads every model once (checksums verified), sets its torch threads once and runs one call at a time.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from dataclasses import astuple
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from distilora.inference import Classifier, Prediction

logger = logging.getLogger(__name__)

MODEL_NICENESS = 5
DESCRIBED = ("labels", "layers", "max_length", "backend", "decision", "precision")
"""What the parent's :class:`RemoteClassifier` knows of each model in the child process (its attributes)."""


class ModelProcess:
    """A child process holding ``models`` (name → model directory); :meth:`predictor` gives one model's stand-in."""

    def __init__(self, models: dict[str, Path], forward_texts: int, torch_threads: int, precision: str = "fp32"):
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch thread pools
        self._conn, child = context.Pipe()
        paths = {name: str(path) for name, path in models.items()}
        self._process = context.Process(target=_serve, name="distilora-models", daemon=True,
                                        args=(child, paths, forward_texts, torch_threads, precision))
        self._process.start()
        child.close()
        self._lock = threading.Lock()
        try:
            kind, payload = self._conn.recv()
        except EOFError:
            raise RuntimeError("the model process exited while loading the models") from None
        if kind != "ready":
            self.close()
            raise RuntimeError(f"the model process could not load the models: {payload}")
        self.info: dict[str, dict[str, Any]] = payload
        """Each model's :data:`DESCRIBED` attributes."""

    def predict(self, name: str, texts: list[str]) -> list[Prediction]:
        with self._lock:
            self._conn.send((name, texts))
            kind, payload = self._conn.recv()
        if kind != "ok":
            raise RuntimeError(f"model {name} failed in the model process ({payload})")
        return [Prediction(*answer) for answer in payload]

    def predictor(self, name: str) -> RemoteClassifier:
        return RemoteClassifier(self, name, **self.info[name])

    def close(self) -> None:
        if self._process.is_alive():
            try:
                with self._lock:
                    self._conn.send(None)
            except OSError:
                pass
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()


class RemoteClassifier:
    """What the registry and the batcher need of a :class:`Classifier`, answered by the model process."""

    def __init__(self, process: ModelProcess, name: str, labels: list[str], layers: list[int] | None,
                 max_length: int, backend: str | None = None, decision: dict | None = None,
                 precision: str | None = None):
        self.process, self.name = process, name
        self.labels, self.layers, self.max_length, self.backend = labels, layers, max_length, backend
        self.precision = precision
        self.decision = decision
        """How the model in the child process picks labels (its calibration.json)."""

    def predict(self, texts: list[str]) -> list[Prediction]:
        return self.process.predict(self.name, texts)


def _serve(conn: Connection, models: dict[str, str], forward_texts: int, torch_threads: int, precision: str) -> None:
    import torch

    # The web server answers first (health checks, 503s); the models take the CPU it leaves.
    os.nice(MODEL_NICENESS)
    torch.set_num_threads(torch_threads)
    try:
        classifiers = {name: Classifier.load(path, precision=precision) for name, path in models.items()}
        for classifier in classifiers.values():
            classifier.batch_size = forward_texts
            classifier.predict(["warm-up"])  # first-call costs are paid here, not by the first request
    except Exception as error:  # reported to the parent, which refuses to start
        conn.send(("error", f"{type(error).__name__}: {error}"))
        return
    conn.send(("ready", {n: {key: getattr(c, key) for key in DESCRIBED} for n, c in classifiers.items()}))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        name, texts = message
        try:
            answers = [astuple(p) for p in classifiers[name].predict(texts)]
        except Exception as error:  # the server answers 500 without details; the type goes to its log
            logger.exception("model %s failed", name)
            conn.send(("error", type(error).__name__))
        else:
            conn.send(("ok", answers))
