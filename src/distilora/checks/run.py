"""``run_check``: run a run's models on a suite and write ``checks/NAME.json`` (and its heat-maps)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from distilora.checks.compute import summarise
from distilora.checks.files import RunChecks
from distilora.checks.plots import accuracy_heatmap
from distilora.checks.suite import load_suite
from distilora.config import CheckConfig
from distilora.inference import load_classifier
from distilora.results import ModelResult, RunResults
from distilora.routes.kinds import RouteKind
from distilora.run_dir import RunLayout, read_results

logger = logging.getLogger(__name__)


def teacher_of(models: Mapping[str, ModelResult]) -> str | None:
    """The run's fine-tuned teacher (results.json ``route`` = ``fine-tune``), or None."""
    return next((name for name, entry in models.items() if entry.route == RouteKind.FINE_TUNE), None)


def choose_models(models: Mapping[str, ModelResult], wanted: Sequence[str] | None) -> list[str]:
    """The run's models in its order (or ``wanted``), always with the teacher as the reference; unknown → error."""
    names = list(models)
    if not wanted:
        return names
    unknown = [n for n in wanted if n not in models]
    if unknown:
        raise ValueError(f"--models: the run has no model {', '.join(unknown)} (its models: {', '.join(names)})")
    teacher = teacher_of(models)
    chosen = set(wanted) | ({teacher} if teacher else set())
    return [n for n in names if n in chosen]


def run_check(run_dir: RunLayout, suite_file: str | Path, name: str | None = None,
              models: Sequence[str] | None = None, config: CheckConfig | None = None,
              label_map: Mapping[str, str] | None = None) -> tuple[Path, dict]:
    """Check every model (or ``models`` plus the teacher) on ``suite_file``; the JSON's path and its content.

    The suite is read and its labels mapped before any model is loaded, so bad input fails fast.
    """
    config = config or CheckConfig()
    suite_file = Path(suite_file)
    name = name or suite_file.stem
    checks = RunChecks(run_dir)
    out_file = checks.file(name)  # a bad name fails here, before any work
    results = RunResults.of(read_results(run_dir))
    labels = list(results.labels)
    suite = load_suite(suite_file, labels, config, label_map)
    names = choose_models(results.models, models)
    if not names:
        raise ValueError(f"{run_dir.root}: its results list no models")
    predictions = {}
    for model in names:
        classifier = load_classifier(run_dir.root, model)
        if classifier.labels != labels:
            raise ValueError(f"{model}: its labels {classifier.labels} differ from the run's {labels}")
        logger.info("check %s: %s on %d cases", name, model, len(suite.texts))
        predictions[model] = classifier.predict_proba(suite.texts).argmax(axis=1).tolist()
    check = {"name": name, "run": str(run_dir.root), "created": datetime.now(UTC).isoformat(timespec="seconds"),
             **summarise(suite, predictions, labels, teacher_of(results.models), config)}
    checks.write(name, check)
    for grouping in check["groupings"]:
        accuracy_heatmap(check, grouping, checks.plot(name, grouping["column"]))
    logger.info("Wrote %s", out_file)
    return out_file, check
