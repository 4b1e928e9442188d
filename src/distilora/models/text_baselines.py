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
from sklearn.multiclass import OneVsRestClassifier

from distilora.config import TfidfConfig
from distilora.label_space import MULTI_LABEL_PROBLEM, is_multi_label

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
    multi_label: bool = False
    """Independent labels: one-vs-rest logistic regressions (TF-IDF) or each label's train prior (majority), whose
    logits are read through a sigmoid."""

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        if self.kind == "majority":
            return np.tile(self.weights["log_prior"], (len(texts), 1)).astype(np.float32)
        vectorizer = self._vectorizer()
        features = vectorizer.transform(list(texts))
        scores = features @ self.weights["coef"].T + self.weights["intercept"]
        return np.asarray(scores, dtype=np.float32) if self.multi_label else decision_logits(scores)

    def _vectorizer(self) -> TfidfVectorizer:
        vectorizer = tfidf_vectorizer(self.settings["ngram_max"], vocabulary=self.vocabulary)
        vectorizer.idf_ = self.weights["idf"]
        return vectorizer

    @property
    def num_parameters(self) -> int:
        return int(sum(w.size for w in self.weights.values()))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        config = {BASELINE_KEY: self.kind, "id2label": dict(enumerate(self.labels)), **self.settings,
                  **({"problem_type": MULTI_LABEL_PROBLEM} if self.multi_label else {})}
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        (directory / VOCABULARY_FILE).write_text(json.dumps(self.vocabulary, ensure_ascii=False))
        save_file({k: np.ascontiguousarray(v) for k, v in self.weights.items()}, str(directory / WEIGHTS_FILE))

    @classmethod
    def load(cls, directory: Path) -> TextBaseline:
        config = json.loads((directory / CONFIG_FILE).read_text())
        kind = config.pop(BASELINE_KEY)
        id2label = config.pop("id2label")
        labels = [id2label[str(i)] for i in range(len(id2label))]
        multi_label = config.pop("problem_type", None) == MULTI_LABEL_PROBLEM
        vocabulary = json.loads((directory / VOCABULARY_FILE).read_text())
        return cls(kind, labels, load_file(str(directory / WEIGHTS_FILE)), vocabulary, config, multi_label)


def tfidf_vectorizer(ngram_max: int, **options) -> TfidfVectorizer:
    """Word 1..``ngram_max``-grams, lower-cased, sublinear tf: the same recipe when fitting and when loading."""
    return TfidfVectorizer(ngram_range=(1, ngram_max), sublinear_tf=True, lowercase=True, **options)


def fit_majority(labels: list[str], y_train: Sequence[int] | Sequence[Sequence[int]]) -> TextBaseline:
    """Always the most frequent training class (its scores are the training class frequencies); multi-label: each
    label's training frequency as its probability (on for a text when the label is on in most training texts)."""
    if is_multi_label(y_train):
        share = np.clip(np.asarray(y_train, dtype=np.float64).mean(axis=0), 1e-9, 1 - 1e-9)
        log_odds = np.log(share / (1 - share)).astype(np.float32)
        return TextBaseline("majority", labels, {"log_prior": log_odds}, {}, {}, multi_label=True)
    counts = np.bincount(np.asarray(y_train), minlength=len(labels)).astype(np.float64)
    prior = (counts + 1e-9) / counts.sum()
    return TextBaseline("majority", labels, {"log_prior": np.log(prior).astype(np.float32)}, {}, {})


def fit_tfidf(labels: list[str], train: tuple[list[str], list[int]], validation: tuple[list[str], list[int]],
              settings: TfidfConfig, class_weight: str = "none", seed: int = 42) -> tuple[TextBaseline, dict]:
    """TF-IDF (word 1..n-grams, sublinear tf) + logistic regression, C chosen on validation macro-F1.

    Returns the model fitted with the best C, and every C's validation macro-F1. Multi-label gold rows (0/1 per
    label) fit one-vs-rest: a logistic regression per label, each label on where its decision score is above 0.
    """
    multi_label = is_multi_label(train[1])
    vectorizer = tfidf_vectorizer(settings.ngram_max, max_features=settings.max_features)
    x_train = vectorizer.fit_transform(train[0])
    x_val = vectorizer.transform(validation[0])
    scores, fitted = {}, {}
    for c in settings.c_grid:
        model = LogisticRegression(C=c, max_iter=2000, class_weight=None if class_weight == "none" else class_weight,
                                   random_state=seed)
        if multi_label:
            model = OneVsRestClassifier(model).fit(x_train, np.asarray(train[1]))
            predicted = (model.decision_function(x_val) > 0).astype(np.int64)
        else:
            model.fit(x_train, train[1])
            predicted = decision_logits(model.decision_function(x_val)).argmax(axis=1)
        scores[c] = f1_score(validation[1], predicted, labels=list(range(len(labels))), average="macro",
                             zero_division=0)
        fitted[c] = model
    best = max(settings.c_grid, key=lambda c: (scores[c], -c))
    coef, intercept = _linear_weights(fitted[best])
    vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    weights = {"idf": vectorizer.idf_.astype(np.float64), "coef": coef, "intercept": intercept}
    settings_saved = {"ngram_max": settings.ngram_max, "C": best, "class_weight": class_weight}
    search = {"C": best, "validation_macro_f1_by_C": {str(c): round(float(s), 4) for c, s in scores.items()}}
    return TextBaseline("tfidf", labels, weights, vocabulary, settings_saved, multi_label), search


def _linear_weights(model: LogisticRegression | OneVsRestClassifier) -> tuple[np.ndarray, np.ndarray]:
    """The coefficients and intercepts of a logistic regression, or of a one-vs-rest set of them (a row each)."""
    if isinstance(model, OneVsRestClassifier):
        coef = np.vstack([estimator.coef_ for estimator in model.estimators_])
        intercept = np.concatenate([estimator.intercept_ for estimator in model.estimators_])
        return coef.astype(np.float64), intercept.astype(np.float64)
    return model.coef_.astype(np.float64), model.intercept_.astype(np.float64)


def decision_logits(scores: np.ndarray) -> np.ndarray:
    """Logistic regression's decision scores as one logit per class (binary: ``[0, s]``, so softmax = sigmoid)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.shape[1] == 1:
        scores = np.hstack([np.zeros_like(scores), scores])
    return scores.astype(np.float32)
