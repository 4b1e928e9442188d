"""The web app and JSON API over one run's models: ``create_app(run_dir)``, served by ``distilora serve``."""

from distilora.serve.app import Settings, create_app
from distilora.serve.registry import ModelRegistry, find_latest_run

__all__ = ["ModelRegistry", "Settings", "create_app", "find_latest_run"]
