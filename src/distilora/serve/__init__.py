"""The web app and JSON API over one run's models: ``create_app(run_dir)``, served by ``distilora serve``."""

from distilora.serve.app import create_app
from distilora.serve.registry import ModelRegistry

__all__ = ["ModelRegistry", "create_app"]
