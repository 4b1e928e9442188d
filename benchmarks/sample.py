"""The bench's data: a seeded sample of real train texts (training) and of test texts (inference)."""

from __future__ import annotations

from dataclasses import dataclass

import datasets
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset
from transformers import PreTrainedTokenizerBase

from distilora.config import DataConfig
from distilora.data import TOKEN_FIELDS, encode_splits, load_task_data


@dataclass
class BenchSample:
    """Everything every variant shares: same texts, same tokenizer, same labels."""

    tokenizer: PreTrainedTokenizerBase
    labels: list[str]
    max_length: int
    train_texts: list[str]
    train_labels: list[int]
    train: datasets.Dataset
    """``train_texts`` tokenized the distilora way (truncated, unpadded, with a ``length`` column)."""
    infer_texts: list[str]
    infer_encodings: list[dict[str, list[int]]]

    @property
    def infer_lengths(self) -> list[int]:
        return [len(e["input_ids"]) for e in self.infer_encodings]


def _pick(split: datasets.Dataset, size: int, rng: np.random.Generator) -> datasets.Dataset:
    """``size`` seeded rows; rows repeat only when the split is smaller than ``size``."""
    return split.select(rng.choice(len(split), size=size, replace=size > len(split)).tolist())


def load_sample(dataset: str, tokenizer: PreTrainedTokenizerBase, train_size: int, infer_size: int,
                max_length: int = 128, seed: int = 42) -> BenchSample:
    """Read ``dataset`` with distilora's loader and draw the seeded train and inference samples."""
    data = load_task_data(DataConfig(dataset=dataset, max_length=max_length), seed)
    rng = np.random.default_rng(seed)
    train = _pick(data.splits["train"], train_size, rng)
    infer = _pick(data.splits["test"], infer_size, rng)
    encoded = encode_splits(datasets.DatasetDict(train=train), tokenizer, max_length)["train"]
    infer_texts = list(infer["text"])
    tokens = tokenizer(infer_texts, truncation=True, max_length=max_length)
    keys = [k for k in TOKEN_FIELDS if k in tokens]
    encodings = [{k: tokens[k][row] for k in keys} for row in range(len(infer))]
    return BenchSample(tokenizer, data.labels, max_length, list(train["text"]), list(train["label"]), encoded,
                       infer_texts, encodings)


def naive_loader(tokenizer: PreTrainedTokenizerBase, texts: list[str], labels: list[int], batch_size: int,
                 max_length: int = 128, seed: int = 42) -> DataLoader:
    """The tutorial recipe: tokenize everything padded to ``max_length``, then shuffled fixed-size batches.

    Yields dicts of tensors (``input_ids``, ``attention_mask``, [``token_type_ids``], ``labels``).
    """
    encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    keys = [k for k in TOKEN_FIELDS if k in encoded]
    tensors = [encoded[k] for k in keys] + [torch.tensor(labels, dtype=torch.long)]
    names = [*keys, "labels"]

    def collate(rows: list[tuple[torch.Tensor, ...]]) -> dict[str, torch.Tensor]:
        return {name: torch.stack([row[j] for row in rows]) for j, name in enumerate(names)}

    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=True, collate_fn=collate,
                      generator=torch.Generator().manual_seed(seed))
