"""Tokenize clean splits for training (no padding here: batches are padded dynamically)."""

from __future__ import annotations

import datasets
from transformers import PreTrainedTokenizerBase

TOKEN_FIELDS = ("input_ids", "attention_mask", "token_type_ids")
"""What a tokenizer gives a model (``token_type_ids`` only for some architectures)."""


def token_rows(split: datasets.Dataset) -> list[dict[str, list[int]]]:
    """Each example's token fields, as ``forward_in_batches`` takes them."""
    keys = [k for k in TOKEN_FIELDS if k in split.column_names]
    return [{k: row[k] for k in keys} for row in split]


def encode_splits(splits: datasets.DatasetDict, tokenizer: PreTrainedTokenizerBase,
                  max_length: int) -> datasets.DatasetDict:
    """Add ``input_ids`` / ``attention_mask`` / ``token_type_ids``, ``labels`` and ``length``; drop the raw text."""

    def encode(batch):
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        encoded["labels"] = batch["label"]
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    return splits.map(encode, batched=True, remove_columns=["text", "label"], desc="Tokenizing",
                      load_from_cache_file=False)
