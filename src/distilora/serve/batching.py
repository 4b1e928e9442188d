"""Micro-batching: one worker thread runs every model call, gathering concurrent requests into batches.

Requests wait in a bounded queue (counted in texts). The worker takes the oldest request, adds the other queued
requests for the same model (up to ``max_batch_texts`` texts), runs the model once and hands each request its share.
Under load (the request came while a batch was running, or others are queued) it also waits up to ``max_wait_ms``
for more to join; a request that finds the server idle is dispatched at once. A request that times out or whose
client goes away is taken out of the queue; a batch already running is finished, and its texts count against the
queue until it is, so no more work is ever running than one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class Predictor(Protocol):
    def predict(self, texts: list[str]) -> list[Any]: ...


class Overloaded(Exception):
    """The queue is full; the client should retry after ``retry_after_s`` seconds."""

    def __init__(self, retry_after_s: int):
        self.retry_after_s = retry_after_s
        super().__init__(f"the service is busy; retry in {retry_after_s} s")


@dataclass(eq=False)
class Job:
    """One request's texts for one model, and where its answer goes."""

    model: str
    predictor: Predictor
    texts: list[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)
    cancelled: bool = False
    under_load: bool = False
    """A batch was running or requests were queued when it came: company is likely, worth waiting for."""


@dataclass
class BatchResult:
    predictions: list[Any]
    batch_texts: int
    """Texts in the batch this request ran in (its own and others')."""
    model_ms: float


class BatchScheduler:
    """Bounded queue + one worker thread. ``submit`` from the event loop, ``await job.future`` for the answer."""

    def __init__(self, max_batch_texts: int, max_wait_ms: float, max_queued_texts: int):
        self.max_batch_texts = max_batch_texts
        self.max_wait_s = max_wait_ms / 1000
        self.max_queued_texts = max_queued_texts
        self._queue: deque[Job] = deque()
        self._condition = threading.Condition()
        self._pending_texts = 0  # queued + running
        self._texts_per_s = 200.0  # updated from every batch; only used for Retry-After
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._busy = False  # the worker holds a batch (gathering or running it)

    # ---- event-loop side ------------------------------------------------------------------------------------
    def has_room(self, texts: int = 1) -> bool:
        return self._pending_texts + texts <= self.max_queued_texts

    def retry_after_s(self) -> int:
        return max(1, math.ceil(self._pending_texts / self._texts_per_s))

    def submit(self, model: str, predictor: Predictor, texts: list[str]) -> Job:
        """Queue ``texts``; :class:`Overloaded` when they do not fit."""
        loop = asyncio.get_running_loop()
        job = Job(model, predictor, texts, loop, loop.create_future())
        with self._condition:
            if self._pending_texts + len(texts) > self.max_queued_texts and self._pending_texts > 0:
                raise Overloaded(self.retry_after_s())
            self._pending_texts += len(texts)
            job.under_load = self._busy or bool(self._queue)
            self._queue.append(job)
            self._ensure_worker()
            self._condition.notify()
        return job

    def cancel(self, job: Job) -> None:
        """The request gave up (timeout, client gone): drop it if still queued; a running batch finishes."""
        with self._condition:
            job.cancelled = True
            if job in self._queue:
                self._queue.remove(job)
                self._pending_texts -= len(job.texts)

    @property
    def pending_texts(self) -> int:
        return self._pending_texts

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify_all()

    # ---- worker side ----------------------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopped = False
            self._thread = threading.Thread(target=self._work, name="distilora-batcher", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[Job] | None:
        with self._condition:
            while not self._queue:
                if self._stopped:
                    return None
                self._condition.wait()
            first = self._queue.popleft()
            self._busy = True
            batch, size = [first], len(first.texts)
            wait_s = self.max_wait_s if first.under_load or self._queue else 0.0
            deadline = time.perf_counter() + wait_s
            while size < self.max_batch_texts:
                joined = self._take_same_model(first.model, self.max_batch_texts - size)
                if joined is not None:
                    batch.append(joined)
                    size += len(joined.texts)
                    continue
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            return batch

    def _take_same_model(self, model: str, room: int) -> Job | None:
        for job in self._queue:
            if job.model == model and len(job.texts) <= room:
                self._queue.remove(job)
                return job
        return None

    def _run(self, batch: list[Job]) -> None:
        texts = [text for job in batch for text in job.texts]
        started = time.perf_counter()
        try:
            predictions = batch[0].predictor.predict(texts)
        except Exception as error:  # handed to every request of the batch, which answers 500
            for job in batch:
                _deliver(job, None, error)
        else:
            elapsed = time.perf_counter() - started
            self._texts_per_s = 0.8 * self._texts_per_s + 0.2 * len(texts) / max(elapsed, 1e-6)
            offset = 0
            for job in batch:
                share = predictions[offset : offset + len(job.texts)]
                offset += len(job.texts)
                _deliver(job, BatchResult(share, len(texts), elapsed * 1000), None)
        finally:
            with self._condition:
                self._pending_texts -= len(texts)
                self._busy = False


def _deliver(job: Job, result: BatchResult | None, error: BaseException | None) -> None:
    if job.cancelled:
        return
    with contextlib.suppress(RuntimeError):  # the request's event loop has closed: nobody is waiting
        job.loop.call_soon_threadsafe(_set, job.future, result, error)


def _set(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # the request already gave up
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
