"""``run_check``: run a run's models on a suite and write ``checks/NAME.json`` (and its heat-maps)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from distilora.checks.bias import BiasSettings, measure_bias, skipped_notes
from distilora.checks.compute import summarise
from distilora.checks.files import RunChecks
from distilora.checks.plots import accuracy_heatmap
from distilora.checks.suite import NO_GROUP, Suite, load_suite
from distilora.config import CheckConfig
from distilora.inference import load_classifier
from distilora.label_space import decide_labels, is_multi_label
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


def bias_block(suite: Suite, scores: Mapping[str, Sequence[float]], positive_index: int | None,
               labels: Sequence[str], teacher: str | None, config: CheckConfig) -> tuple[dict | None, list[str]]:
    """The check's ``bias`` block (None without an identity column or on a run that is not binary) and its notes."""
    if suite.identity_column is None or suite.identities is None:
        return None, []
    if is_multi_label(suite.gold):
        return None, ["bias metrics need a single-label binary run (one positive class to score); this run is "
                      "multi-label"]
    if len(labels) != 2 or positive_index is None:
        return None, [f"bias metrics need a binary run (a positive class to score); this run has {len(labels)} "
                      "labels"]
    settings = BiasSettings(suite.identity_column, (labels[1 - positive_index], labels[positive_index]),
                            config.bias_power, config.bias_resamples, confidence=config.confidence)
    positive = [gold == positive_index for gold in suite.gold]
    report = measure_bias(suite.identities, positive, scores, teacher, settings, background=NO_GROUP)
    return report.to_dict(), skipped_notes(report)


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
    suite = load_suite(suite_file, labels, config, label_map, multi_label=bool(results.multi_label))
    names = choose_models(results.models, models)
    if not names:
        raise ValueError(f"{run_dir.root}: its results list no models")
    predictions, scores, positive_index = {}, {}, None
    for model in names:
        classifier = load_classifier(run_dir.root, model)
        if classifier.labels != labels:
            raise ValueError(f"{model}: its labels {classifier.labels} differ from the run's {labels}")
        logger.info("check %s: %s on %d cases", name, model, len(suite.texts))
        probabilities = classifier.predict_proba(suite.texts)
        if classifier.multi_label:  # each label on at 0.5, as the run's metrics count it
            predictions[model] = decide_labels(probabilities).tolist()
            continue
        predictions[model] = probabilities.argmax(axis=1).tolist()
        if len(labels) == 2:  # the positive class's probability is the score the bias metrics rank by
            if positive_index not in (None, classifier.positive_index):
                raise ValueError(f"{model}: its positive class {labels[classifier.positive_index]} differs from "
                                 f"the other models' {labels[positive_index]}")
            positive_index = classifier.positive_index
            scores[model] = probabilities[:, positive_index].tolist()
    teacher = teacher_of(results.models)
    check = {"name": name, "run": str(run_dir.root), "created": datetime.now(UTC).isoformat(timespec="seconds"),
             **summarise(suite, predictions, labels, teacher, config)}
    check["bias"], notes = bias_block(suite, scores, positive_index, labels, check["teacher"], config)
    check["notes"] += notes
    checks.write(name, check)
    for grouping in check["groupings"]:
        accuracy_heatmap(check, grouping, checks.plot(name, grouping["column"]))
    logger.info("Wrote %s", out_file)
    return out_file, check
