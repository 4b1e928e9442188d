"""Tokenize clean splits for training, and texts for inference in token windows (no padding here: batches are padded
dynamically)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
from transformers import PreTrainedTokenizerBase

from distilora.config import TRUNCATE, WINDOW_OVERLAP, WINDOWS, check_long_text

TOKEN_FIELDS = ("input_ids", "attention_mask", "token_type_ids")
"""What a tokenizer gives a model (``token_type_ids`` only for some architectures)."""


@dataclass
class Encoded:
    """Token windows of a batch of texts: ``rows`` in text order, ``owner[i]`` the text of row ``i``."""

    rows: list[dict[str, list[int]]]
    owner: np.ndarray
    windows: list[int]
    """Per text: how many windows the model reads."""
    truncated: list[bool]
    """Per text: tokens were left unread (only with ``truncate``)."""


def encode_texts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int,
                 long_text: str = WINDOWS) -> Encoded:
    """Windows of at most ``max_length`` tokens (special tokens included), each repeating :data:`WINDOW_OVERLAP` of
    the last; with ``truncate`` only each text's first, which is exactly what ``truncation=True`` gives."""
    policy = check_long_text(long_text)
    texts = list(texts)
    if not texts:  # the tokenizer fails on an empty batch
        return Encoded([], np.zeros(0, dtype=np.int64), [], [])
    content = max_length - tokenizer.num_special_tokens_to_add()
    encoded = tokenizer(texts, truncation=True, max_length=max_length, verbose=False,
                        return_overflowing_tokens=True, stride=int(content * WINDOW_OVERLAP))
    owner = np.asarray(encoded["overflow_to_sample_mapping"], dtype=np.int64)
    windows = np.bincount(owner, minlength=len(texts)).tolist()
    keys = [k for k in TOKEN_FIELDS if k in encoded]
    if policy == TRUNCATE:
        first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        rows = [{k: encoded[k][i] for k in keys} for i in first]
        return Encoded(rows, owner[first], [1] * len(texts), [n > 1 for n in windows])
    rows = [{k: encoded[k][i] for k in keys} for i in range(len(owner))]
    return Encoded(rows, owner, windows, [False] * len(texts))


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
