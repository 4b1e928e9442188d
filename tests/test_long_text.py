"""Texts longer than the model's maximum length: read in overlapping windows by every way in (``Classifier.predict``,
``distilora predict``, ``/api/v1/classify``), or cut to their first window with ``truncate``."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from fastapi.testclient import TestClient

from distilora.config import TRUNCATE, WINDOWS, ServeConfig
from distilora.data.encoding import encode_texts
from distilora.inference import Classifier, combine_windows, load_classifier
from distilora.serve.app import create_app
from distilora.serve.registry import ModelRegistry
from tests.keyword_model import KEYWORD, MAX_LENGTH, long_text_with_keyword_at_end, sentence


@pytest.fixture(scope="module")
def classifier(keyword_model) -> Classifier:
    return load_classifier(keyword_model)


def test_the_keyword_model_knows_its_keyword_in_short_texts(classifier):
    rng = random.Random(1)
    with_keyword = classifier.predict_proba([sentence(rng, True) for _ in range(30)])[:, 1]
    without = classifier.predict_proba([sentence(rng, False) for _ in range(30)])[:, 1]
    assert with_keyword.min() > 0.9 and without.max() < 0.1


def test_a_keyword_past_the_first_window_is_missed_by_truncate_and_caught_by_windows(classifier):
    text = long_text_with_keyword_at_end()
    assert len(classifier.tokenizer(text)["input_ids"]) > 2 * MAX_LENGTH
    truncated, = classifier.predict([text], long_text=TRUNCATE)
    windowed, = classifier.predict([text], long_text=WINDOWS)
    assert truncated.label == "neutral" and truncated.truncated and truncated.windows == 1
    assert windowed.label == "toxic" and not windowed.truncated and windowed.windows >= 3
    assert windowed.scores["toxic"] > 0.9 > 0.1 > truncated.scores["toxic"]


def test_windows_cover_every_token_with_overlap_and_short_texts_keep_one_window(classifier):
    long = long_text_with_keyword_at_end(filler_words=100)
    encoded = encode_texts(classifier.tokenizer, ["short text", long, ""], MAX_LENGTH, WINDOWS)
    assert encoded.windows[0] == 1 and encoded.windows[2] == 1 and encoded.windows[1] > 3
    assert encoded.owner.tolist() == sorted(encoded.owner.tolist())
    assert all(len(row["input_ids"]) <= MAX_LENGTH for row in encoded.rows)
    content = classifier.tokenizer(long, add_special_tokens=False)["input_ids"]
    windows = [row["input_ids"][1:-1] for row, owner in zip(encoded.rows, encoded.owner, strict=True) if owner == 1]
    # consecutive windows repeat a quarter of the content tokens, and together they hold every token in order
    step = len(windows[0]) - int((MAX_LENGTH - 2) * 0.25)
    rebuilt = [token for window in windows[:-1] for token in window[:step]] + windows[-1]
    assert rebuilt == content
    assert windows[0][step:] == windows[1][: len(windows[0]) - step]


def test_truncate_gives_exactly_the_first_window_that_truncation_true_gives(classifier):
    text = long_text_with_keyword_at_end()
    encoded = encode_texts(classifier.tokenizer, [text], MAX_LENGTH, TRUNCATE)
    plain = classifier.tokenizer([text], truncation=True, max_length=MAX_LENGTH)
    assert encoded.rows[0]["input_ids"] == plain["input_ids"][0] and encoded.truncated == [True]


def test_a_binary_text_takes_its_most_positive_window_and_a_multi_class_text_the_mean_of_its_windows():
    logits = np.array([[0, 1], [0, 3], [2, 0], [5, 0], [0, 0]], dtype=np.float32)
    owner = np.array([0, 0, 0, 1, 2])
    assert combine_windows(logits, owner, 3, positive_index=1).tolist() == [[0, 3], [5, 0], [0, 0]]
    assert combine_windows(logits, owner, 3, positive_index=0).tolist() == [[2, 0], [5, 0], [0, 0]]
    three = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert combine_windows(three, np.array([0, 0, 1, 2]), 3, 1).tolist() == [[1.5, 2.5, 3.5], [6, 7, 8], [9, 10, 11]]


def test_an_unknown_long_text_policy_is_refused_with_the_flag_named(classifier):
    with pytest.raises(ValueError, match="--long-text must be one of windows, truncate"):
        classifier.predict(["text"], long_text="first")


def test_the_api_and_predict_give_the_same_answer_for_a_long_text(classifier, keyword_model, tmp_path):
    text = long_text_with_keyword_at_end()
    registry = ModelRegistry(tmp_path, {"keyword": classifier},
                             {"labels": classifier.labels, "models": {"keyword": {}}})
    with TestClient(create_app(registry=registry, settings=ServeConfig(model_process=False)),
                    base_url="http://127.0.0.1") as client:
        response = client.post("/api/v1/classify", json={"texts": [text, "you are kind"], "model": "keyword"})
    assert response.status_code == 200, response.text
    served = response.json()["results"]
    expected = classifier.predict([text, "you are kind"])
    assert served[0]["label"] == "toxic" and served[0]["windows"] == expected[0].windows > 1
    assert served[1]["windows"] == 1
    for answer, prediction in zip(served, expected, strict=True):
        assert answer["scores"] == pytest.approx(prediction.scores, abs=1e-6)


def test_distilora_predict_reads_long_texts_in_windows_unless_told_to_truncate(keyword_model, capsys):
    from distilora.cli import main

    text = long_text_with_keyword_at_end()
    assert main(["predict", "--run", str(keyword_model.parent), "--model", keyword_model.name, text]) == 0
    windowed = json.loads(capsys.readouterr().out)
    assert main(["predict", "--run", str(keyword_model.parent), "--model", keyword_model.name,
                 "--long-text", "truncate", text]) == 0
    truncated = json.loads(capsys.readouterr().out)
    assert (windowed["label"], truncated["label"]) == ("toxic", "neutral")
    assert windowed["windows"] > 1 and truncated["truncated"] and KEYWORD in text
