"""A run's results (``results.json``, ``results.md``), per-item predictions and report files, each written
atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distilora.artifacts import write_atomic
from distilora.results import RunResults, TunedRoute
from distilora.run_dir.layout import REPORT_FILES, RunLayout


def read_results(run: RunLayout) -> dict[str, Any]:
    path = run.results_file
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found. Make a run first: distilora run --output-dir {run.root}")
    return json.loads(path.read_text())


def write_results(run: RunLayout, results: RunResults, table: str | None = None) -> None:
    """``results.json`` (and the Markdown ``table`` as results.md), each replaced atomically."""
    write_atomic(run.results_file, json.dumps(results.to_json(), indent=1))
    if table is not None:
        write_atomic(run.results_table, table)


def write_predictions(run: RunLayout, name: str, predictions: dict[str, Any]) -> None:
    path = run.predictions_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(predictions))


def read_predictions(run: RunLayout, name: str) -> dict[str, Any] | None:
    """A model's saved predictions, or None when it has none."""
    path = run.predictions_file(name)
    return json.loads(path.read_text()) if path.exists() else None


def write_report(run: RunLayout, files: dict[str, str]) -> dict[str, Path]:
    """Write the report's text files (``report.html``, ``report.md``) atomically; their paths."""
    written = {}
    for name, text in files.items():
        if name not in REPORT_FILES:
            raise ValueError(f"{name}: not a report file")
        written[name] = run.root / name
        write_atomic(written[name], text)
    return written


def read_tuning(run: RunLayout) -> dict[str, TunedRoute]:
    """The routes ``distilora tune`` recorded in ``tune.json`` (empty when it has tuned none)."""
    path = run.tune_file
    routes = json.loads(path.read_text()).get("routes", {}) if path.is_file() else {}
    return {route: TunedRoute.from_json(entry, f"{path.name} {route}") for route, entry in routes.items()}


def write_tuning(run: RunLayout, tuned: list[TunedRoute]) -> Path:
    """``tune.json``: the routes in ``tuned`` over those recorded before (kept as read)."""
    routes = {route: record.to_json() for route, record in read_tuning(run).items()}
    routes.update({record.route: record.to_json() for record in tuned})
    write_atomic(run.tune_file, json.dumps({"routes": routes}, indent=2, default=str) + "\n")
    return run.tune_file
