"""Score a comment (and its sentences) on attributes through the server's batch scheduler: one job per model, so
attributes served by the same model share one pass, and requests join the same batches as ``/api/v1/classify``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from distilora.serve.batching import BatchScheduler, Job
from distilora.serve.perspective.attributes import ServedAttribute
from distilora.serve.perspective.spans import Sentence

Answer = Callable[[Job, Request, BatchScheduler, float], Awaitable[Any]]
"""``app._answer``: a job's result, 504 past the timeout, dropped work for a client that went away."""


@dataclass
class Scored:
    """One attribute's scores: the whole comment's, and each sentence's (in order) when spans were asked for."""

    summary: float
    spans: list[float]


class Scorer:
    """Runs comments through the registry's models via the scheduler, exactly as ``/api/v1/classify`` does: the
    summary score is the model's calibrated ``predict`` of the whole comment."""

    def __init__(self, registry: Any, scheduler: BatchScheduler, answer: Answer, timeout_s: float):
        self.registry, self.scheduler, self.answer, self.timeout_s = registry, scheduler, answer, timeout_s

    async def score(self, request: Request, comment: str, attributes: list[ServedAttribute],
                    sentences: list[Sentence] = ()) -> dict[str, Scored]:
        """Attribute name → :class:`Scored`; busy (503), timeout (504) and a gone client raise as for classify."""
        texts = list(dict.fromkeys([comment, *(s.text for s in sentences)]))  # a sentence may be the comment
        models = list(dict.fromkeys(attribute.model for attribute in attributes))
        jobs: list[Job] = []
        try:
            for model in models:
                jobs.append(self.scheduler.submit(model, self.registry.get(model), texts))
            predictions = {}
            for model, job in zip(models, jobs, strict=True):
                predictions[model] = (await self.answer(job, request, self.scheduler, self.timeout_s)).predictions
        finally:
            for job in jobs:
                if not job.future.done():  # an earlier model failed or timed out: drop the others' work too
                    self.scheduler.cancel(job)
                    job.future.cancel()
        index = {text: i for i, text in enumerate(texts)}
        scored = {}
        for attribute in attributes:
            rows = predictions[attribute.model]
            scored[attribute.name] = Scored(rows[0].scores[attribute.label],
                                            [rows[index[s.text]].scores[attribute.label] for s in sentences])
        return scored
