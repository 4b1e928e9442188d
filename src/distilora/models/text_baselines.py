"""Baselines that do not tokenize: TF-IDF + logistic regression, and always the majority class.

Saved as JSON (settings, labels, the TF-IDF vocabulary) and safetensors (IDF weights and coefficients) — never
pickled — and scored with numpy, so a saved baseline is a plain data directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from distilora.config import TfidfConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
VOCABULARY_FILE = "vocab.json"
BASELINE_KEY = "distilora_baseline"
"""config.json holds this key (tfidf or majority) instead of a transformers ``model_type``."""


def is_text_baseline(model_dir: Path) -> bool:
    config = model_dir / CONFIG_FILE
    return config.is_file() and BASELINE_KEY in json.loads(config.read_text())


@dataclass
class TextBaseline:
    """A fitted baseline: ``logits(texts)`` are decision scores (log-priors for the majority class)."""

    kind: str
    labels: list[str]
    weights: dict[str, np.ndarray]
    vocabulary: dict[str, int]
    settings: dict

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        if self.kind == "majority":
            return np.tile(self.weights["log_prior"], (len(texts), 1)).astype(np.float32)
        vectorizer = self._vectorizer()
        features = vectorizer.transform(list(texts))
        return decision_logits(features @ self.weights["coef"].T + self.weights["intercept"])

    def _vectorizer(self) -> TfidfVectorizer:
        vectorizer = tfidf_vectorizer(self.settings["ngram_max"], vocabulary=self.vocabulary)
        vectorizer.idf_ = self.weights["idf"]
        return vectorizer

    @property
    def num_parameters(self) -> int:
        return int(sum(w.size for w in self.weights.values()))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        config = {BASELINE_KEY: self.kind, "id2label": dict(enumerate(self.labels)), **self.settings}
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        (directory / VOCABULARY_FILE).write_text(json.dumps(self.vocabulary, ensure_ascii=False))
        save_file({k: np.ascontiguousarray(v) for k, v in self.weights.items()}, str(directory / WEIGHTS_FILE))

    @classmethod
    def load(cls, directory: Path) -> TextBaseline:
        config = json.loads((directory / CONFIG_FILE).read_text())
        kind = config.pop(BASELINE_KEY)
        id2label = config.pop("id2label")
        labels = [id2label[str(i)] for i in range(len(id2label))]
        vocabulary = json.loads((directory / VOCABULARY_FILE).read_text())
        return cls(kind, labels, load_file(str(directory / WEIGHTS_FILE)), vocabulary, config)


def tfidf_vectorizer(ngram_max: int, **options) -> TfidfVectorizer:
    """Word 1..``ngram_max``-grams, lower-cased, sublinear tf: the same recipe when fitting and when loading."""
    return TfidfVectorizer(ngram_range=(1, ngram_max), sublinear_tf=True, lowercase=True, **options)


def fit_majority(labels: list[str], y_train: Sequence[int]) -> TextBaseline:
    """Always the most frequent training class (its scores are the training class frequencies)."""
    counts = np.bincount(np.asarray(y_train), minlength=len(labels)).astype(np.float64)
    prior = (counts + 1e-9) / counts.sum()
    return TextBaseline("majority", labels, {"log_prior": np.log(prior).astype(np.float32)}, {}, {})


def fit_tfidf(labels: list[str], train: tuple[list[str], list[int]], validation: tuple[list[str], list[int]],
              settings: TfidfConfig, class_weight: str = "none", seed: int = 42) -> tuple[TextBaseline, dict]:
    """TF-IDF (word 1..n-grams, sublinear tf) + logistic regression, C chosen on validation macro-F1.

    Returns the model fitted with the best C, and every C's validation macro-F1.
    """
    vectorizer = tfidf_vectorizer(settings.ngram_max, max_features=settings.max_features)
    x_train = vectorizer.fit_transform(train[0])
    x_val = vectorizer.transform(validation[0])
    scores, fitted = {}, {}
    for c in settings.c_grid:
        model = LogisticRegression(C=c, max_iter=2000, class_weight=None if class_weight == "none" else class_weight,
                                   random_state=seed)
        model.fit(x_train, train[1])
        predicted = decision_logits(model.decision_function(x_val)).argmax(axis=1)
        scores[c] = f1_score(validation[1], predicted, labels=list(range(len(labels))), average="macro",
                             zero_division=0)
        fitted[c] = model
    best = max(settings.c_grid, key=lambda c: (scores[c], -c))
    model = fitted[best]
    vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    weights = {"idf": vectorizer.idf_.astype(np.float64), "coef": model.coef_.astype(np.float64),
               "intercept": model.intercept_.astype(np.float64)}
    settings_saved = {"ngram_max": settings.ngram_max, "C": best, "class_weight": class_weight}
    search = {"C": best, "validation_macro_f1_by_C": {str(c): round(float(s), 4) for c, s in scores.items()}}
    return TextBaseline("tfidf", labels, weights, vocabulary, settings_saved), search


def decision_logits(scores: np.ndarray) -> np.ndarray:
    """Logistic regression's decision scores as one logit per class (binary: ``[0, s]``, so softmax = sigmoid)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.shape[1] == 1:
        scores = np.hstack([np.zeros_like(scores), scores])
    return scores.astype(np.float32)
