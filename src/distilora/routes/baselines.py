"""Cheap references every compressed model must beat: TF-IDF + logistic regression, and the majority class."""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from distilora.config import ExperimentConfig
from distilora.models.text_baselines import TextBaseline, fit_majority, fit_tfidf
from distilora.routes.base import Route, RouteContext
from distilora.routes.kinds import RouteKind
from distilora.routes.registry import register_route
from distilora.routes.space import SearchSpace, tfidf_space
from distilora.training.trainer import TrainResult


class TextBaselineRoute(Route):
    """A scikit-learn / counting baseline: fitted on the training texts, no Trainer, no tokenizer."""

    kind = RouteKind.BASELINE
    main_seed_only = True
    tokenized = False

    def __init__(self, name: str):
        super().__init__(name)
        self.search: dict[str, Any] = {}

    @abstractmethod
    def fit(self, ctx: RouteContext, seed: int) -> TextBaseline:
        """The baseline fitted on the training texts (its search, if any, kept for :meth:`details`)."""

    def train(self, ctx: RouteContext, seed: int, work_dir: Path) -> TrainResult:
        started = time.perf_counter()
        model = self.fit(ctx, seed)
        return TrainResult(model=model, history=[], train_loss=None, train_loss_mean=None,
                           train_seconds=time.perf_counter() - started, trainable_params=model.num_parameters)

    def save(self, model: TextBaseline, directory: Path) -> None:
        model.save(directory)

    def details(self) -> dict[str, Any]:
        return self.search


class Tfidf(TextBaselineRoute):
    def fit(self, ctx: RouteContext, seed: int) -> TextBaseline:
        model, search = fit_tfidf(ctx.labels, ctx.train_texts(), ctx.validation_texts(), ctx.config.tfidf,
                                  ctx.class_weight, seed)
        self.search = {"tfidf_search": search}
        return model

    def search_space(self, config: ExperimentConfig) -> SearchSpace | None:
        return tfidf_space()

    def tuning_sections(self, config: ExperimentConfig, chosen: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The default trial is the C the run's stage chose from its grid (one trial fits one C)."""
        sections = super().tuning_sections(config, chosen)
        best_c = ((chosen or {}).get("tfidf_search") or {}).get("C")
        if best_c is not None:
            sections["tfidf"] = replace(config.tfidf, c_grid=(float(best_c),))
        return sections

    def describe(self, config: ExperimentConfig) -> str:
        return f"TF-IDF (word 1–{config.tfidf.ngram_max}-grams) + logistic regression, C chosen on validation"

    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        return ("tfidf", ctx.data_fingerprint, asdict(ctx.config.tfidf))


class Majority(TextBaselineRoute):
    can_collapse = False

    def fit(self, ctx: RouteContext, seed: int) -> TextBaseline:
        return fit_majority(ctx.labels, ctx.train_texts()[1])

    def describe(self, config: ExperimentConfig) -> str:
        return "always the most frequent training class"

    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        return ("majority", ctx.data_fingerprint)


register_route("tfidf", lambda setup: Tfidf("tfidf"), groups={"default": 5, "all": 7})
register_route("majority", lambda setup: Majority("majority"), groups={"default": 6, "all": 8})
