"""A multi-label run's models leaving the run: an ONNX export gated per label, a scored file with a score and a flag
per label and the decided set, and a behavioural check on a suite with a gold column per label."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from distilora.checks.run import run_check
from distilora.config import CheckConfig, ExportConfig, ScoreConfig
from distilora.export import OnnxClassifier, export_model
from distilora.inference import load_classifier
from distilora.label_space import decide_labels
from distilora.run_dir import PARITY_FILE, RunLayout
from distilora.scoring import score_file
from tests.conftest import MULTI_LABELS

LABELS = list(MULTI_LABELS)


@pytest.fixture(scope="module")
def exported_run(multi_label_run, tmp_path_factory) -> Path:
    """A copy of the multi-label run with its ``odd`` student exported to ONNX (fp32: the tiny run's students score
    every item within 1e-3 of their calibrated thresholds, where int8's rounding flips decisions; the int8 gate is
    tests/test_export_multi_label.py's)."""
    run = tmp_path_factory.mktemp("multi-label-ship") / "run"
    shutil.copytree(multi_label_run, run)
    export_model(run, "odd", ExportConfig(bootstrap_resamples=200))
    return run


def _test_rows(run: Path) -> list[dict[str, str]]:
    dataset = json.loads((run / "results.json").read_text())["dataset"]
    with open(f"{dataset}/test.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_onnx_export_of_a_multi_label_student_passes_its_per_label_gate(exported_run):
    directory = exported_run / "export" / "odd"
    parity = json.loads((directory / PARITY_FILE).read_text())
    assert parity["passed"] is True and parity["multi_label"] is True and parity["labels"] == LABELS
    torch_model = load_classifier(exported_run, "odd")
    assert list(parity["thresholds"].values()) == torch_model.label_thresholds()
    for split in ("validation", "test"):
        numbers = parity[split]
        assert numbers["agreement"] >= 0.99 and numbers["decision_agreement"] >= 0.99
        assert [entry["label"] for entry in numbers["per_label"]] == LABELS
        assert numbers["n"] == 40 and len(parity["metrics"][split]["per_label"]) == len(LABELS)
    onnx = load_classifier(directory)
    assert isinstance(onnx, OnnxClassifier) and onnx.multi_label
    texts = [row["text"] for row in _test_rows(exported_run)]
    decided = decide_labels(onnx.predict_proba(texts), onnx.label_thresholds())
    reference = decide_labels(torch_model.predict_proba(texts), torch_model.label_thresholds())
    assert (decided == reference).all(axis=1).mean() >= 0.99


def test_a_file_scored_by_a_multi_label_run_has_a_score_and_flag_per_label_and_the_decided_set(exported_run, tmp_path):
    rows = _test_rows(exported_run)
    source = tmp_path / "in.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerows([["id", "text"], *([f"c{i}", row["text"]] for i, row in enumerate(rows))])
    config = ScoreConfig(backend="pytorch", precision="fp32", id_column="id", progress=False)
    summary = score_file(exported_run, "odd", source, tmp_path / "out.parquet", config)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == ["row", "id", *(f"score_{label}" for label in LABELS),
                                  *(f"flag_{label}" for label in LABELS), "labels", "windows", "reason"]
    classifier = load_classifier(exported_run, "odd")
    predictions = classifier.predict([row["text"] for row in rows])
    assert table.column("labels").to_pylist() == [p.labels for p in predictions]
    assert summary.flagged_labels == {label: sum(label in p.labels for p in predictions) for label in LABELS}
    metadata = json.loads(table.schema.metadata[b"distilora"])
    assert list(metadata["thresholds"].values()) == pytest.approx(classifier.label_thresholds())


def test_a_check_of_a_multi_label_run_scores_every_model_on_its_gold_columns(exported_run, tmp_path):
    rows = _test_rows(exported_run)
    suite = tmp_path / "suite.csv"
    with suite.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", *LABELS, "kind"])
        writer.writerows([row["text"], *(row[label] for label in LABELS), "short" if len(row["text"]) < 30 else "long"]
                         for row in rows)
    path, check = run_check(RunLayout(exported_run), suite, config=CheckConfig(group_columns=("kind",)))
    assert path.is_file() and check["threshold"] == "0.5 per label"
    assert check["models"] == ["teacher", "odd", "lora", "tfidf", "majority"]
    gold = np.array([[int(row[label]) for label in LABELS] for row in rows])
    tfidf = decide_labels(load_classifier(exported_run, "tfidf").predict_proba([row["text"] for row in rows]))
    assert check["overall"]["tfidf"]["accuracy"] == pytest.approx((tfidf == gold).all(axis=1).mean())
    assert set(check["overall"]["odd"]["per_label_f1"]) == set(LABELS)
    assert check["gold_counts"] == {label: int(gold[:, j].sum()) for j, label in enumerate(LABELS)}
    assert check["bias"] is None


def test_the_export_summary_names_the_multi_label_agreement(exported_run, capsys):
    from distilora.cli.export import _summary

    _summary(json.loads((exported_run / "export" / "odd" / PARITY_FILE).read_text()))
    header = capsys.readouterr().out.splitlines()[1]
    assert "label agreement (all labels at 0.5)" in header and "argmax" not in header
