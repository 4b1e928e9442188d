"""Whole runs on the tiny teacher: the results contract, 3 classes, stage reuse, and saved models that plain
``transformers`` loads and that predict exactly what the evaluation counted."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FOUR_ROUTES, make_dataset, tiny_experiment_config
from sklearn.metrics import confusion_matrix, f1_score

from distilora.config import DataConfig, DistillationConfig
from distilora.data import load_task_data

MODELS = ("teacher", "odd", "even", "lora")
METRIC_KEYS = {"loss", "accuracy", "macro_f1", "precision", "recall", "f1_per_class", "confusion_matrix"}
MODEL_KEYS = {"layers", "metrics", "train_loss", "params", "trainable_params", "size_mb", "train_seconds"}
TINY_PARAMS = 30522 * 32 + 128 * 32 + 2 * 32 + 2 * 32  # embeddings (word, position, type, LayerNorm)
# one encoder layer: query, key, value, attention output; intermediate 32 → 64; output 64 → 32; two LayerNorms
TINY_LAYER = 4 * (32 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32) + 2 * (2 * 32)


def results_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


@pytest.fixture(scope="module")
def three_class_run(tmp_path_factory, tiny_teacher) -> Path:
    from distilora import run_experiment

    root = tmp_path_factory.mktemp("three-class")
    dataset = make_dataset(root / "data", num_classes=3, sizes=(90, 30, 30))
    output = root / "run"
    run_experiment(tiny_experiment_config(dataset, tiny_teacher, output, routes=FOUR_ROUTES))
    return output


# ---- the results.json contract ---------------------------------------------------------------------------------

def assert_metrics(metrics: dict, num_labels: int, n: int) -> None:
    assert metrics.keys() >= METRIC_KEYS
    assert len(metrics["f1_per_class"]) == num_labels
    matrix = np.asarray(metrics["confusion_matrix"])
    assert matrix.shape == (num_labels, num_labels) and matrix.sum() == n
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / n)
    assert metrics["macro_f1"] == pytest.approx(np.mean(metrics["f1_per_class"]))
    for key in ("loss", "accuracy", "macro_f1", "precision", "recall"):
        assert isinstance(metrics[key], float) and math.isfinite(metrics[key]), key
    if num_labels == 2:
        assert "roc_auc" in metrics
    else:
        assert "roc_auc" not in metrics


def test_results_json_contract(tiny_run, tiny_dataset, tiny_teacher):
    results = results_of(tiny_run)
    assert results["dataset"] == str(tiny_dataset)
    assert results["teacher"] == str(tiny_teacher)
    assert results["labels"] == ["neutral", "toxic"]
    assert results["reused_stages"] == []
    assert set(results["data_report"]) == {"train", "validation", "test"}
    for split, rows in (("train", 96), ("validation", 32), ("test", 32)):
        assert results["data_report"][split]["rows"] == rows
        assert results["data_report"][split]["dropped"] == 0
    assert list(results["models"]) == list(MODELS)
    layers = {"teacher": None, "odd": [1, 3], "even": [2, 4], "lora": None}
    for name, entry in results["models"].items():
        assert entry.keys() >= MODEL_KEYS, name
        assert entry["layers"] == layers[name]
        assert set(entry["metrics"]) == {"validation", "test"}
        assert_metrics(entry["metrics"]["validation"], 2, 32)
        assert_metrics(entry["metrics"]["test"], 2, 32)
        assert math.isfinite(entry["train_loss"]) and entry["train_loss"] > 0
        assert entry["train_seconds"] > 0
        weights = tiny_run / name / "model.safetensors"
        assert entry["size_mb"] == pytest.approx(weights.stat().st_size / 2**20, abs=1e-3)
    models = results["models"]
    # Parameters counted from the saved weights: the tiny teacher with its 2-class head, students with 2 of 4 layers.
    head = 32 * 32 + 32 + 32 * 2 + 2  # pooler + classifier
    assert models["teacher"]["params"] == TINY_PARAMS + 4 * TINY_LAYER + head
    assert models["odd"]["params"] == models["even"]["params"] == TINY_PARAMS + 2 * TINY_LAYER + head
    assert models["lora"]["params"] == models["teacher"]["params"], "the merged LoRA model has the teacher's shape"
    for name in ("teacher", "odd", "even"):
        assert models[name]["trainable_params"] == models[name]["params"]
    # LoRA (r=16 on query and value, 32 → 32, in 4 layers) + the pooler (32·32 + 32) + the classifier (32·2 + 2)
    assert models["lora"]["trainable_params"] == 4 * 2 * 16 * (32 + 32) + 32 * 32 + 32 + 66
    assert (tiny_run / "results.md").read_text().count("\n| ") == 1 + len(MODELS)


def test_students_log_every_loss_component(tiny_run):
    results = results_of(tiny_run)
    weights = DistillationConfig()
    for name in ("odd", "even"):
        logged = [entry for entry in results["models"][name]["history"] if "loss" in entry]
        assert len(logged) >= 3, "96 rows / batch 16 = 6 steps, logged every 2 steps and at step 1"
        for entry in logged:
            assert entry.keys() >= {"loss_ce", "loss_kd", "loss_cos"}, entry
            combined = (weights.w_ce * entry["loss_ce"] + weights.w_kd * entry["loss_kd"]
                        + weights.w_cos * entry["loss_cos"])
            assert entry["loss"] == pytest.approx(combined, rel=1e-3, abs=1e-5)
            assert entry["loss_kd"] >= 0 and 0 <= entry["loss_cos"] <= 2
    for name in ("teacher", "lora"):
        logged = [entry for entry in results["models"][name]["history"] if "loss" in entry]
        assert logged and not any("loss_kd" in entry for entry in logged)


def test_three_class_dataset_end_to_end(three_class_run):
    results = results_of(three_class_run)
    assert results["labels"] == ["neutral", "toxic", "mixed"]
    assert list(results["models"]) == list(MODELS)
    for entry in results["models"].values():
        for split in ("validation", "test"):
            assert_metrics(entry["metrics"][split], 3, 30)
    for name in MODELS:
        predictions = json.loads((three_class_run / "predictions" / f"{name}.json").read_text())
        assert np.asarray(predictions["test"]["probs"]).shape == (30, 3)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(three_class_run / "odd")
    assert config.num_labels == 3 and config.id2label == {0: "neutral", 1: "toxic", 2: "mixed"}


# ---- saved models load with plain transformers and predict what was counted --------------------------------------

def assert_saved_models_match_the_evaluation(run: Path, splits=("validation", "test"), pipeline_texts=None,
                                            models=MODELS) -> None:
    """Every model directory of ``run`` loads with plain transformers and predicts what its predictions file and
    results.json say (shared with the integration test, which pipes only the first ``pipeline_texts`` texts
    through the one-text-at-a-time pipeline: the padded batch covers them all). Text baselines (TF-IDF, majority)
    are not transformers models: they are checked through :class:`~distilora.Classifier`."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from distilora import load_classifier
    from distilora.models.text_baselines import is_text_baseline

    results = results_of(run)
    data = load_task_data(DataConfig(**results["config"]["data"]), results["seed"])
    classes = list(range(len(results["labels"])))
    assert list(results["models"]) == list(models)
    for name in models:
        model_dir = run / name
        predictions = json.loads((run / "predictions" / f"{name}.json").read_text())
        if is_text_baseline(model_dir):
            for split in splits:
                probs = load_classifier(run, name).predict_proba(list(data.splits[split]["text"]), calibrated=False)
                np.testing.assert_allclose(probs, np.asarray(predictions[split]["probs"]), atol=2e-5)
                counted = probs.argmax(1)
                assert results["models"][name]["metrics"][split]["macro_f1"] == pytest.approx(
                    f1_score(data.splits[split]["label"], counted, average="macro", labels=classes))
            continue
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        classify = pipeline("text-classification", model=str(model_dir), truncation=True, top_k=None)
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        assert labels == results["labels"]
        for split in splits:
            texts, y_true = list(data.splits[split]["text"]), list(data.splits[split]["label"])
            assert predictions[split]["y_true"] == y_true
            probs = np.asarray(predictions[split]["probs"])
            counted = probs.argmax(1)
            # 1. plain model, padded batch
            with torch.no_grad():
                logits = model(**tokenizer(texts, padding=True, truncation=True, return_tensors="pt")).logits
            np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), probs, atol=2e-5)
            # 2. the pipeline, text by text
            answers = classify(texts[:pipeline_texts])
            piped = [labels.index(max(answer, key=lambda a: a["score"])["label"]) for answer in answers]
            assert piped == counted[:pipeline_texts].tolist(), f"{name}/{split}: pipeline != predictions/{name}.json"
            for answer, row in zip(answers, probs[:pipeline_texts], strict=True):
                expected = dict(zip(labels, row.tolist(), strict=True))
                assert {a["label"]: a["score"] for a in answer} == pytest.approx(expected, abs=2e-5)
            # 3. the metrics in results.json are those of these predictions
            metrics = results["models"][name]["metrics"][split]
            assert metrics["accuracy"] == pytest.approx(float(np.mean(counted == np.asarray(y_true))))
            assert metrics["macro_f1"] == pytest.approx(f1_score(y_true, counted, average="macro", labels=classes))
            assert metrics["confusion_matrix"] == confusion_matrix(y_true, counted, labels=classes).tolist()


@pytest.mark.parametrize("run_fixture", ["tiny_run", "three_class_run"])
def test_saved_models_load_in_plain_transformers_and_match_the_evaluation(run_fixture, request):
    assert_saved_models_match_the_evaluation(request.getfixturevalue(run_fixture))


def test_classifier_predicts_labels_with_probabilities(tiny_run):
    from distilora import load_classifier

    classifier = load_classifier(tiny_run, "odd")
    assert classifier.labels == ["neutral", "toxic"]
    assert classifier.layers == [1, 3]
    [prediction] = classifier.predict(["some text"])
    assert prediction.label in classifier.labels
    assert set(prediction.scores) == set(classifier.labels)
    assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert all(0 <= p <= 1 for p in prediction.scores.values())
    assert prediction.truncated is False
    # The run calibrated the model: the label is the tuned threshold's call on the calibrated score of 'toxic'.
    threshold = classifier.calibration.threshold
    assert prediction.threshold == threshold is not None
    assert prediction.label == ("toxic" if prediction.scores["toxic"] >= threshold else "neutral")
    [raw] = classifier.predict(["some text"], calibrated=False)
    assert raw.threshold is None and raw.label == max(raw.scores, key=raw.scores.get)
    long_text = "you are so " * 40
    single, many = classifier.predict(long_text), classifier.predict(["hello", long_text, ""])
    assert len(single) == 1 and len(many) == 3
    assert single[0].windows > 1 and many[1].windows == single[0].windows and many[0].windows == 1
    assert not any(p.truncated for p in [*single, *many])
    assert many[1].scores == pytest.approx(single[0].scores, abs=1e-5), "batching must not change an answer"
    np.testing.assert_allclose(classifier.predict_proba(["hello", long_text]).sum(1), 1.0, atol=1e-6)
    assert classifier.predict([]) == []
    assert classifier.predict_proba([]).shape == (0, 2)


def test_classifier_load_names_available_models(tiny_run):
    from distilora import load_classifier

    with pytest.raises(FileNotFoundError, match="models in .*even, lora, odd, teacher"):
        load_classifier(tiny_run, "nope")


# ---- reuse of finished stages ------------------------------------------------------------------------------------

def test_finished_stages_are_reused_and_changed_settings_retrain(tiny_run, tiny_dataset, tiny_teacher, tmp_path):
    from distilora import run_experiment

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)  # copy2 keeps the mtimes
    weights = {name: run / name / "model.safetensors" for name in MODELS}
    before = {name: mtime(path) for name, path in weights.items()}
    first = results_of(run)

    again = run_experiment(tiny_experiment_config(tiny_dataset, tiny_teacher, run, routes=FOUR_ROUTES))
    assert again["reused_stages"] == list(MODELS)
    assert {name: mtime(path) for name, path in weights.items()} == before, "a reused stage must not be retrained"
    for name in MODELS:
        assert again["models"][name]["metrics"] == first["models"][name]["metrics"]
        assert again["models"][name]["train_loss"] == first["models"][name]["train_loss"]

    # A distillation setting changes the students' fingerprint only: the teacher is reused, the student retrained.
    config = tiny_experiment_config(tiny_dataset, tiny_teacher, run, routes=("odd",),
                                    distillation=DistillationConfig(temperature=4.0))
    changed_student = run_experiment(config)
    assert changed_student["reused_stages"] == ["teacher"]
    assert mtime(weights["teacher"]) == before["teacher"]
    assert mtime(weights["odd"]) != before["odd"]

    # A teacher hyper-parameter changes the teacher's fingerprint: it is trained again.
    config = tiny_experiment_config(tiny_dataset, tiny_teacher, run, routes=())
    config.teacher_training.learning_rate = 5e-4
    changed_teacher = run_experiment(config)
    assert changed_teacher["reused_stages"] == []
    assert mtime(weights["teacher"]) != before["teacher"]
    assert list(changed_teacher["models"]) == ["teacher"]
