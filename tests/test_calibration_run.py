"""Calibration and model cards in a run: stored in every model directory (listed in its manifest), applied by
``Classifier.predict``, kept in results.json, refitted without retraining, and shown by the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import FOUR_ROUTES, make_dataset, synthetic_rows, tiny_experiment_config, write_csv
from scipy.special import softmax

from distilora import load_classifier
from distilora.artifacts import verify_manifest
from distilora.config import CalibrationConfig, DataConfig
from distilora.data import load_task_data
from distilora.evaluation.calibration import calibration_summary, fit_calibration
from distilora.evaluation.metrics import classification_metrics
from distilora.model_card import render_model_card
from distilora.report import rebuild_report
from distilora.run_dir import CALIBRATION_FILE, MODEL_CARD, RunLayout, StageStore

MODELS = ("teacher", "odd", "even", "lora")
CALIBRATION_KEYS = {"temperature", "threshold", "policy", "target", "positive_label", "ece", "reliability",
                    "predicted_positive_rate", "positive_share", "prior_shift", "note"}


def results_of(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


# ---- stored with every model ----------------------------------------------------------------------------------
def test_every_model_directory_holds_its_calibration_and_card_in_its_manifest(tiny_run):
    for name in MODELS:
        model_dir = tiny_run / name
        manifest = verify_manifest(model_dir)  # the checksums still hold, the new files included
        assert {CALIBRATION_FILE, MODEL_CARD} <= set(manifest["files"])
        stage = json.loads((model_dir / "stage.json").read_text())
        assert manifest["fingerprint"] == stage["fingerprint"] and manifest["stage"] == name
        assert manifest["versions"]["transformers"] and "data_fingerprint" in manifest
        stored = json.loads((model_dir / CALIBRATION_FILE).read_text())
        summary = results_of(tiny_run)["models"][name]["calibration"]
        assert stored["temperature"] == summary["temperature"] and stored["threshold"] == summary["threshold"]
        assert stored["positive_label"] == "toxic"


def test_classifier_applies_the_threshold_that_results_json_counted(tiny_run):
    results = results_of(tiny_run)
    data = load_task_data(DataConfig(**results["config"]["data"]), results["seed"])
    texts, y_true = list(data.splits["test"]["text"]), list(data.splits["test"]["label"])
    for name in MODELS:
        classifier = load_classifier(tiny_run, name)
        calibration = classifier.calibration
        assert calibration is not None and calibration.threshold is not None
        logits = classifier.logits(texts)
        scaled = softmax(logits.astype(np.float64) / calibration.temperature, axis=1)  # as predict computes them
        predictions = classifier.predict(texts)
        assert all(p.threshold == calibration.threshold for p in predictions)
        np.testing.assert_allclose([[p.scores[label] for label in classifier.labels] for p in predictions], scaled,
                                   atol=1e-6)
        called = [classifier.labels.index(p.label) for p in predictions]
        assert called == np.where(scaled[:, 1] >= calibration.threshold, 1, 0).tolist()
        # results.json's metrics_at_threshold counted exactly these labels; its metrics stay the argmax's.
        entry = results["models"][name]
        expected = classification_metrics(y_true, logits, classifier.labels, y_pred=called)["confusion_matrix"]
        assert entry["metrics_at_threshold"]["test"]["confusion_matrix"] == expected
        raw = classifier.predict(texts, calibrated=False)
        assert all(p.threshold is None for p in raw)
        assert [classifier.labels.index(p.label) for p in raw] == logits.argmax(1).tolist()
        assert entry["metrics"]["test"]["confusion_matrix"] == \
            classification_metrics(y_true, logits, classifier.labels)["confusion_matrix"]
        assert classifier.decision["threshold"] == calibration.threshold


def test_results_json_keeps_calibration_intervals_and_threshold_metrics(tiny_run):
    results = results_of(tiny_run)
    for name in MODELS:
        entry = results["models"][name]
        calibration = entry["calibration"]
        assert calibration.keys() >= CALIBRATION_KEYS
        assert calibration["temperature"] > 0 and 0 <= calibration["threshold"] <= 1
        for split in ("validation", "test"):
            assert set(calibration["ece"][split]) == {"before", "after"}
            assert len(calibration["reliability"][split]["after"]) == calibration["ece_bins"] == 15
            rate = calibration["predicted_positive_rate"][split]
            assert rate["low"] <= rate["estimate"] <= rate["high"] and rate["n"] == 32
            interval = entry["intervals"][split]["macro_f1"]
            assert interval["estimate"] == pytest.approx(entry["metrics"][split]["macro_f1"])
            assert interval["low"] <= interval["estimate"] <= interval["high"]
        assert set(entry["metrics_at_threshold"]) == {"validation", "test"}
        assert entry["training"]["epochs"] == 1


def test_model_card_has_valid_front_matter_and_the_runs_numbers(tiny_run):
    results = results_of(tiny_run)
    card = (tiny_run / "odd" / MODEL_CARD).read_text()
    meta = front_matter(card)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-classification"
    assert meta["datasets"] and set(meta["metrics"]) == {"f1", "accuracy"} and "distilora" in meta["tags"]
    assert "base_model" not in meta, "a local teacher directory has no hub id"
    test_f1 = next(m for r in meta["model-index"][0]["results"] if r["dataset"]["split"] == "test"
                   for m in r["metrics"] if m["type"] == "f1")
    entry = results["models"]["odd"]
    assert test_f1["value"] == pytest.approx(entry["metrics"]["test"]["macro_f1"], abs=1e-4)
    interval = entry["intervals"]["test"]["macro_f1"]
    assert f"{interval['estimate']:.3f} [{interval['low']:.3f}, {interval['high']:.3f}]" in card
    assert f"≥ {entry['calibration']['threshold']:.4f}" in card
    for section in ("## How it was made", "## Evaluation", "## Calibration and decision threshold", "## Speed",
                    "## Data and its known limits", "## Intended use", "teacher layers 1,3", "argmax"):
        assert section in card, section


def test_model_card_states_base_model_known_limits_and_prior_shift(tiny_run):
    results = {**results_of(tiny_run), "dataset": "../shared/datasets/tweet_eval_hate",
               "teacher": "packaged:all-MiniLM-L6-v2"}
    entry = json.loads(json.dumps(results["models"]["odd"]))
    calibration = entry["calibration"]
    calibration["prior_shift"] = True
    calibration["predicted_positive_rate"]["test"] = {"estimate": 0.87, "low": 0.85, "high": 0.89, "count": 2584,
                                                      "n": 2970}
    card = render_model_card("odd", entry, results)
    meta = front_matter(card)
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["datasets"] == ["cardiffnlp/tweet_eval"]
    assert "known to be shifted" in card and "(a prior shift)" in card and "ONNX" not in card
    baseline = {**entry, "num_layers": 0, "layers": None, "route": "baseline"}
    meta = front_matter(render_model_card("tfidf", baseline, results))
    assert meta["library_name"] == "distilora" and "base_model" not in meta


# ---- refitted without retraining ----------------------------------------------------------------------------
def test_a_new_target_refits_every_model_without_retraining(tiny_run, tiny_dataset, tiny_teacher, tmp_path):
    from distilora import run_experiment

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    weights = {name: (run / name / "model.safetensors").stat().st_mtime_ns for name in MODELS}
    config = tiny_experiment_config(tiny_dataset, tiny_teacher, run, routes=FOUR_ROUTES,
                                    calibration=CalibrationConfig(target_recall=1.0))
    again = run_experiment(config)
    assert again["reused_stages"] == list(MODELS)
    assert {name: (run / name / "model.safetensors").stat().st_mtime_ns for name in MODELS} == weights
    for name in MODELS:
        verify_manifest(run / name)
        stored = json.loads((run / name / CALIBRATION_FILE).read_text())
        assert (stored["policy"], stored["target"]) == ("target-recall", 1.0)
        assert stored["validation"]["recall"] == 1.0
        assert load_classifier(run, name).calibration.policy == "target-recall"
    assert again["config"]["calibration"]["target_recall"] == 1.0
    assert run_experiment(config)["reused_stages"] == list(MODELS), "the rewritten directories are reused"


def test_extra_seed_models_get_their_own_calibration_and_card(tiny_run, tiny_dataset, tiny_teacher, tmp_path):
    from distilora import run_experiment

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = tiny_experiment_config(tiny_dataset, tiny_teacher, run, routes=("odd",), num_seeds=2, report=False)
    results = run_experiment(config)
    seed_dir = run / "seeds" / "43" / "odd"
    assert {CALIBRATION_FILE, MODEL_CARD} <= set(verify_manifest(seed_dir)["files"])
    [_, extra] = results["seed_runs"]["odd"]
    assert extra["seed"] == 43 and extra["calibration"]["temperature"] > 0
    assert load_classifier(seed_dir).calibration.temperature == extra["calibration"]["temperature"]
    card = (seed_dir / MODEL_CARD).read_text()
    assert card.split("\n---\n", 1)[1].lstrip().startswith("# odd (seed 43)") and "seed 43" in card
    assert "Not measured for this model" in card


def test_an_unreachable_target_is_one_warning_line_and_the_argmax(caplog):
    """The run goes on (other models may reach the target; the majority baseline never can): the log names the best
    reachable precision, and the model keeps the argmax."""
    from types import SimpleNamespace

    from distilora.config import ExperimentConfig
    from distilora.experiment.evaluation import calibrate

    logits = np.log(np.array([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.8, 0.2]]))
    labels = {"validation": [0, 1, 1, 0], "test": [0, 1, 1, 0]}
    run = SimpleNamespace(config=ExperimentConfig(calibration=CalibrationConfig(target_precision=0.8)),
                          labels=["neutral", "toxic"],
                          data=SimpleNamespace(splits={split: {"label": y} for split, y in labels.items()}))
    with caplog.at_level("WARNING", logger="distilora.experiment"):
        calibration, summary, at_threshold = calibrate(run, "odd", {"validation": logits, "test": logits})
    [record] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert record.getMessage().startswith("[odd] --target-precision 0.8 is not reachable on validation: the best "
                                          "precision there is 0.667")
    assert record.getMessage().endswith("its decisions stay at the argmax")
    assert calibration.threshold is None and summary["policy"] == "argmax" and at_threshold is None
    assert "not reachable" in summary["note"]


# ---- adding files to a finished stage ---------------------------------------------------------------------------
def test_add_to_stage_is_atomic_and_refuses_other_files(tiny_run, tmp_path, monkeypatch):
    run, store = RunLayout(tmp_path / "run"), StageStore()
    shutil.copytree(tiny_run, run.root)
    stage = run.model_dir("even")
    fp = json.loads((stage / "stage.json").read_text())["fingerprint"]
    card = (stage / MODEL_CARD).read_text()
    assert store.add_to_stage(stage, {MODEL_CARD: card}) is False, "same content: nothing to do"
    with pytest.raises(ValueError, match="config.json: not a file the evaluation adds"):
        store.add_to_stage(stage, {"config.json": "{}"})

    # A power cut after the finished stage was moved aside and before the new one took its place.
    def half_swap(partial: Path, stage_dir: Path) -> None:
        stage_dir.rename(stage_dir.with_name(stage_dir.name + ".old"))
        raise OSError("power cut")

    monkeypatch.setattr(StageStore, "swap", staticmethod(half_swap))
    with pytest.raises(OSError, match="power cut"):
        store.add_to_stage(stage, {MODEL_CARD: card + "\nnew line\n"})
    monkeypatch.undo()
    assert not stage.exists()
    record = store.completed(stage, fp)  # what the next run does first: the finished copy is adopted
    assert record is not None and record.fingerprint == fp
    assert (stage / MODEL_CARD).read_text().endswith("new line\n")
    assert verify_manifest(stage)["fingerprint"] == fp
    assert not stage.with_name("even.partial").exists() and not stage.with_name("even.old").exists()
    assert load_classifier(run.root, "even").calibration is not None


# ---- the report ---------------------------------------------------------------------------------------------------
def fake_binary_run(run: Path, shift: float, settings: CalibrationConfig | None = None) -> dict:
    """A binary run's results.json and predictions (no model directories): the test split is ``shift`` logits
    more toxic-looking than validation."""
    rng = np.random.default_rng(0)
    labels = ["not-hate", "hate"]
    n = {"validation": 400, "test": 600}
    y = {split: (rng.random(k) < 0.42).astype(int) for split, k in n.items()}
    (run / "predictions").mkdir(parents=True)
    models = {}
    for name, route, noise in (("teacher", "fine-tune", 1.0), ("odd", "distil", 1.3)):
        logits = {split: np.stack([np.zeros(n[split]), 3 * (2 * y[split] - 1) + rng.normal(0, 3 * noise, n[split])
                                   + (shift if split == "test" else 0.0)], axis=1) for split in n}
        calibration = fit_calibration(logits["validation"], y["validation"], labels, settings)
        summary, at_threshold = calibration_summary(calibration, logits, y)
        (run / "predictions" / f"{name}.json").write_text(json.dumps(
            {split: {"y_true": y[split].tolist(), "probs": softmax(logits[split], axis=1).tolist()} for split in n}))
        models[name] = {"route": route, "layers": None if name == "teacher" else [1, 3, 5],
                        "num_layers": 6 if name == "teacher" else 3,
                        "metrics": {split: classification_metrics(y[split], logits[split], labels) for split in n},
                        "metrics_at_threshold": at_threshold, "calibration": summary, "history": []}
    results = {"dataset": "fake", "teacher": "fake", "labels": labels, "seed": 42, "models": models,
               "data_report": {split: {"rows": int(k), "dropped": 0, "reasons": {}} for split, k in n.items()}}
    (run / "results.json").write_text(json.dumps(results))
    return results


def calibration_section(run: Path) -> str:
    return (run / "report.md").read_text().split("## Calibration and operating point")[1].split("\n## ")[0]


def test_report_states_a_prior_shift_in_plain_words(tmp_path):
    results = fake_binary_run(tmp_path / "run", shift=4.0)
    rebuild_report(RunLayout(tmp_path / "run"), n_resamples=200)
    section = calibration_section(tmp_path / "run")
    assert "Prior shift: Every model calls a larger share of texts 'hate' on test than on validation" in section
    matrix = results["models"]["teacher"]["metrics_at_threshold"]["test"]["confusion_matrix"]
    assert f"teacher calls {matrix[0][1]:,} of the {sum(matrix[0]):,} test texts labelled 'not-hate' 'hate'" in section
    for header in ("ECE test (before → after)", "test macro-F1 at 0.5", "at threshold", "called hate: validation",
                   "prior shift?"):
        assert header in section, header
    odd = results["models"]["odd"]
    assert f"| odd | {odd['calibration']['threshold']:.3f} |" in section
    assert f"{odd['metrics']['test']['macro_f1']:.3f} | {odd['metrics_at_threshold']['test']['macro_f1']:.3f}" \
        in section
    assert "](plots/reliability.png)" in section and (tmp_path / "run" / "plots" / "reliability.png").is_file()
    findings = (tmp_path / "run" / "report.md").read_text().split("## What the numbers say")[1].split("\n## ")[0]
    assert "- Prior shift: Every model calls a larger share" in findings


def test_report_says_whether_a_precision_target_holds_on_test(tmp_path):
    results = fake_binary_run(tmp_path / "run", shift=4.0, settings=CalibrationConfig(target_precision=0.8))
    rebuild_report(RunLayout(tmp_path / "run"), n_resamples=200)
    section = calibration_section(tmp_path / "run")
    precision = {}
    for name, entry in results["models"].items():
        assert entry["calibration"]["validation_at_threshold"]["precision"] >= 0.8
        matrix = entry["metrics_at_threshold"]["test"]["confusion_matrix"]
        precision[name] = matrix[1][1] / (matrix[0][1] + matrix[1][1])
    assert max(precision.values()) < 0.8, "the shifted test split breaks the target"
    assert (f"Target precision ≥ 0.8 for 'hate', met on validation by the threshold of each of 2 models: on test "
            f"their precision is {min(precision.values()):.3f}–{max(precision.values()):.3f}, so the target holds "
            "for none of them.") in section
    assert "the highest validation recall with precision ≥ 0.8" in section


def test_report_without_a_shift_or_a_calibration_says_so(tmp_path):
    fake_binary_run(tmp_path / "same", shift=0.0)
    rebuild_report(RunLayout(tmp_path / "same"), n_resamples=200)
    assert "No prior shift" in calibration_section(tmp_path / "same")

    old = tmp_path / "old"
    results = fake_binary_run(old, shift=0.0)
    for entry in results["models"].values():
        del entry["calibration"], entry["metrics_at_threshold"]
    (old / "results.json").write_text(json.dumps(results))
    rebuild_report(RunLayout(old), n_resamples=200)
    assert "results hold no calibration" in calibration_section(old)
    assert not (old / "plots" / "reliability.png").exists()


def test_a_run_whose_validation_has_one_class_says_so_in_results_report_and_card(tiny_teacher, tmp_path):
    """Before: an all-toxic validation split gave every model a threshold under its lowest score (every text called
    toxic) and the precision target counted as met, without a word."""
    from distilora import run_experiment

    dataset = make_dataset(tmp_path / "data")
    write_csv(dataset / "validation.csv", [row for row in synthetic_rows(64) if row[1] == 1])
    run = tmp_path / "run"
    results = run_experiment(tiny_experiment_config(dataset, tiny_teacher, run, routes=(),
                                                calibration=CalibrationConfig(target_precision=0.9)))
    entry = results["models"]["teacher"]
    note = "the validation split holds only 'toxic' (32 items)"
    assert entry["calibration"]["threshold"] is None and note in entry["calibration"]["note"]
    assert entry["metrics_at_threshold"] is None and entry["calibration"]["temperature"] == 1.0
    assert note in calibration_section(run)
    assert "the target holds" not in calibration_section(run)
    assert note in (run / "teacher" / MODEL_CARD).read_text()
    assert load_classifier(run, "teacher").calibration.threshold is None
