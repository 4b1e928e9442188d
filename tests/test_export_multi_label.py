"""Export parity of a multi-label model: an item agrees when all its labels are decided the same (at 0.5, and at the
served per-label thresholds); each label's agreement and largest sigmoid-probability difference; the ONNX export
loads as a multi-label ``OnnxClassifier`` and passes its gate, fp32 and int8."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.metrics import f1_score

from distilora.config import ExportConfig
from distilora.export import build
from distilora.export.parity import ParityGate, label_macro_f1, split_parity
from distilora.inference import OnnxClassifier, load_classifier
from distilora.run_dir import ONNX_FILE, PARITY_FILE
from tests.conftest import multi_label_rows
from tests.multi_label_model import LABELS, make_multi_label_model

GOLD = np.array([[1, 0, 1], [1, 0, 0], [0, 1, 1], [1, 0, 0]])
REFERENCE = np.array([[2.0, -3.0, 0.4], [1.0, -2.0, -1.0], [3.0, -1.0, 2.0], [0.5, -0.5, -2.0]])


def test_a_multi_label_item_agrees_only_when_all_its_labels_are_decided_the_same():
    exported = REFERENCE.copy()
    exported[0, 2] = -0.1  # obscene flips off on item 0; every other label of every item stays
    exported[3, 0] = 0.45  # a probability moves without crossing 0.5
    numbers = split_parity(GOLD, REFERENCE, exported, 3, resamples=200, labels=LABELS)
    assert numbers["agreement"] == numbers["decision_agreement"] == 0.75 and numbers["disagreements"] == 1
    per_label = {entry["label"]: entry for entry in numbers["per_label"]}
    assert [per_label[label]["agreement"] for label in LABELS] == [1.0, 1.0, 0.75]
    sigmoid_delta = np.abs(expit(REFERENCE) - expit(exported))
    assert numbers["max_abs_dp"] == pytest.approx(sigmoid_delta.max())
    assert per_label["insult"]["max_abs_dp"] == pytest.approx(sigmoid_delta[:, 0].max())
    assert numbers["max_abs_dp"] != pytest.approx(np.abs(softmax(REFERENCE, 1) - softmax(exported, 1)).max())
    assert ParityGate.of({"validation": numbers}, 0.99).passed is False


def test_the_served_decision_is_each_labels_calibrated_threshold():
    calibration = SimpleNamespace(probabilities=expit, thresholds=[0.9, 0.5, 0.5])
    exported = REFERENCE.copy()
    exported[1, 0] = 2.5  # insult 0.73 → 0.92: the same at 0.5, crosses insult's threshold 0.9
    numbers = split_parity(GOLD, REFERENCE, exported, 3, resamples=200, calibration=calibration, labels=LABELS)
    assert numbers["agreement"] == 1.0
    assert numbers["decision_agreement"] == 0.75 and numbers["decision_disagreements"] == 1
    assert numbers["per_label"][0]["agreement"] == 1.0 and numbers["per_label"][0]["decision_agreement"] == 0.75
    gate = ParityGate.of({"validation": numbers}, 0.99)
    assert gate.labels == "decision" and gate.agreement == 0.75 and not gate.passed


def test_macro_f1_is_over_labels_as_scikit_learn_counts_it_with_a_paired_interval():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, size=(60, 3))
    predicted = np.where(rng.random((60, 3)) < 0.8, gold, 1 - gold)
    assert label_macro_f1(gold, predicted) == pytest.approx(f1_score(gold, predicted, average="macro",
                                                                      zero_division=0))
    logits = np.where(predicted == 1, 2.0, -2.0)
    numbers = split_parity(gold, logits, logits + 0.01, 3, resamples=300, labels=LABELS)
    assert numbers["macro_f1"]["pytorch"] == pytest.approx(label_macro_f1(gold, predicted))
    difference = numbers["macro_f1_difference"]
    assert difference["estimate"] == 0.0 and difference["low"] == difference["high"] == 0.0
    moved = split_parity(gold, logits, -logits[:, ::-1], 3, resamples=300, labels=LABELS)["macro_f1_difference"]
    assert moved["low"] <= moved["estimate"] <= moved["high"] and moved["low"] < moved["high"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny multi-label model exported (int8) by the export's own writer on hand-made validation and test
    splits."""
    root = tmp_path_factory.mktemp("multi-label-export")
    reference = load_classifier(make_multi_label_model(root / "model"), verify=False)
    splits = {split: ([row[0] for row in rows], [list(row[1:]) for row in rows])
              for split, rows in (("validation", multi_label_rows(24, 1)), ("test", multi_label_rows(24, 2)))}
    partial = root / "export"
    partial.mkdir()
    config = ExportConfig(quantize="int8", bootstrap_resamples=200)
    parity = build._write_export(partial, reference, splits, list(LABELS), config, "tiny")
    return partial, parity, reference, splits


def test_an_int8_export_of_a_multi_label_model_passes_its_per_label_gate_and_loads_as_multi_label(exported):
    directory, parity, reference, splits = exported
    assert parity["passed"] is True and parity["multi_label"] is True
    assert parity["thresholds"] == dict.fromkeys(LABELS, 0.5)
    for split in ("validation", "test"):
        numbers = parity[split]
        assert numbers["agreement"] >= 0.99 and numbers["decision_agreement"] >= 0.99
        assert [entry["label"] for entry in numbers["per_label"]] == list(LABELS)
        assert all(entry["agreement"] >= 0.9 for entry in numbers["per_label"])
        assert parity["metrics"][split]["n"] == 24
    assert parity["settings"]["quantization"]["type"] == "int8"
    assert all(v["validation_agreement"] >= 0.9 for v in parity["int8_variants"].values())
    (directory / PARITY_FILE).write_text(json.dumps(parity))
    onnx = OnnxClassifier.from_directory(directory)
    assert onnx.multi_label is True and onnx.labels == list(LABELS)
    texts = splits["test"][0]
    [prediction] = onnx.predict(texts[:1])
    assert prediction.labels is not None and "insult" in prediction.labels and "threat" not in prediction.labels
    np.testing.assert_allclose(onnx.predict_proba(texts), reference.predict_proba(texts), atol=0.05)
    recorded = json.loads((directory / "parity_labels.json").read_text())
    assert recorded["test"]["y_true"] == splits["test"][1]
    assert np.shape(recorded["test"]["onnx_decision"]) == (24, 3)
    assert (directory / ONNX_FILE).is_file()
