"""``distilora predict`` with a multi-label model prints the decided set, every label's score and each label's
threshold."""

from __future__ import annotations

import json

from distilora.artifacts import write_manifest
from distilora.cli import main
from distilora.inference import load_classifier
from tests.multi_label_model import LABELS, make_multi_label_model


def test_predict_prints_a_multi_label_models_decided_set_scores_and_thresholds(tmp_path, capsys):
    model = make_multi_label_model(tmp_path / "run" / "tiny")
    write_manifest(model, {"model": "tiny"})
    texts = ["you clown", "sunny garden"]
    assert main(["-q", "predict", "--run", str(tmp_path / "run"), "--model", "tiny", *texts]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    expected = load_classifier(model, verify=False).predict(texts)
    assert [line["text"] for line in lines] == texts
    for line, prediction in zip(lines, expected, strict=True):
        assert line["labels"] == prediction.labels and "insult" in line["labels"] and "threat" not in line["labels"]
        assert line["scores"] == prediction.scores and list(line["scores"]) == list(LABELS)
        assert line["thresholds"] == dict.fromkeys(LABELS, 0.5)
        assert "label" not in line and line["calibrated"] is False
    assert "each label on at 0.5 of its raw sigmoid (not calibrated)" in captured.err
