"""A Perspective-compatible API: a program written for Google's Perspective API works against ``distilora serve`` by
changing its URL. ``install(app, …)`` adds the routes (:mod:`.routes`); :func:`extra_models` says which models of
other runs the registry must load first."""

from __future__ import annotations

from pathlib import Path

from distilora.config import PerspectiveConfig
from distilora.serve.perspective.attributes import AttributePlan, perspective_config
from distilora.serve.perspective.routes import install


def extra_models(config: PerspectiveConfig | None, served_run: str | Path) -> dict[str, Path]:
    """Registry name → model directory of every attribute model from a run other than ``served_run``."""
    return AttributePlan.make(config or PerspectiveConfig(), served_run).extra_models


__all__ = ["extra_models", "install", "perspective_config"]
