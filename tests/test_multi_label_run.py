"""A multi-label run end to end: every route of the group trains with sigmoids, the evaluation counts per label, and
the saved models answer in plain transformers what the evaluation counted."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from transformers import pipeline

from distilora.cli import main
from distilora.data.multi_label import JIGSAW_LABELS
from distilora.label_space import MULTI_LABEL_PROBLEM
from distilora.results import RunResults
from distilora.run_dir import RunLayout, read_predictions
from tests.conftest import MULTI_LABELS, write_csv


def _results(run) -> RunResults:
    return RunResults.from_json(json.loads((run / "results.json").read_text()))


def test_a_multi_label_run_records_per_label_scores_for_every_model(multi_label_run):
    results = _results(multi_label_run)
    assert results.multi_label is True and results.labels == list(MULTI_LABELS)
    assert set(results.models) == {"teacher", "odd", "lora", "tfidf", "majority"}
    for name, model in results.models.items():
        test = model.metrics["test"]
        assert [scores.label for scores in test.per_label] == list(MULTI_LABELS), name
        assert test.macro_f1 == pytest.approx(np.mean([scores.f1 for scores in test.per_label]))
        assert len(model.calibration.thresholds) == len(MULTI_LABELS), name
    train_rows = _split_rows(multi_label_run, "train")
    assert results.data_report["train"].label_counts == [sum(int(row[label]) for row in train_rows)
                                                         for label in MULTI_LABELS]
    # The words of each label decide it: TF-IDF learns that; the per-label prior cannot.
    assert results.models["tfidf"].metrics["test"].macro_f1 > results.models["majority"].metrics["test"].macro_f1


def test_saved_models_are_multi_label_in_their_config(multi_label_run):
    for name in ("teacher", "odd", "lora"):
        config = json.loads((multi_label_run / name / "config.json").read_text())
        assert config["problem_type"] == MULTI_LABEL_PROBLEM, name
        assert [config["id2label"][str(i)] for i in range(3)] == list(MULTI_LABELS)


def test_plain_transformers_sigmoid_pipeline_gives_the_probabilities_the_evaluation_counted(multi_label_run):
    predictions = read_predictions(RunLayout(multi_label_run), "odd")
    texts = _split_texts(multi_label_run, "test")
    classify = pipeline("text-classification", model=str(multi_label_run / "odd"), top_k=None,
                        function_to_apply="sigmoid", device="cpu")
    answered = classify(texts[:20], truncation=True)
    for row, scores in zip(predictions["test"]["probs"][:20], answered, strict=True):
        by_label = {entry["label"]: entry["score"] for entry in scores}
        assert [by_label[label] for label in MULTI_LABELS] == pytest.approx(row, abs=1e-4)


def _split_rows(run, split: str) -> list[dict[str, str]]:
    with open(f"{_results(run).dataset}/{split}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _split_texts(run, split: str) -> list[str]:
    return [row["text"] for row in _split_rows(run, split)]


def test_a_jigsaw_file_runs_end_to_end_with_only_the_text_column(tiny_teacher, tmp_path):
    rng = np.random.default_rng(0)
    words = {"toxic": "awful", "severe_toxic": "vile", "obscene": "crap", "threat": "kill", "insult": "idiot",
             "identity_hate": "those people"}
    dataset = tmp_path / "jigsaw"
    for split, n in (("train", 200), ("validation", 60), ("test", 60)):
        rows = []
        for i in range(n):
            on = (rng.random(len(JIGSAW_LABELS)) < 0.3).astype(int)
            text = " ".join(["a comment about the weather", *(words[label] for label, flag in
                                                                zip(JIGSAW_LABELS, on, strict=True) if flag)])
            rows.append((f"{split}-{i}", text, *on.tolist()))
        write_csv(dataset / f"{split}.csv", rows, header=("id", "comment_text", *JIGSAW_LABELS))
    output = tmp_path / "run"
    code = main(["-q", "run", "--dataset", str(dataset), "--text-column", "comment_text", "--teacher",
                 str(tiny_teacher), "--output-dir", str(output), "--routes", "odd,tfidf", "--epochs", "1",
                 "--max-length", "32", "--precision", "fp32", "--no-speed"])
    assert code == 0
    results = _results(output)
    assert results.multi_label and results.labels == list(JIGSAW_LABELS)
    assert results.models["tfidf"].metrics["test"].macro_f1 > 0.8  # each label has its own word
    assert (output / "report.md").exists()
