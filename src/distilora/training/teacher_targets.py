"""The teacher's logits and [CLS] states (after every layer), computed once per training set, shared by every student.

The teacher is frozen and in eval mode during distillation, so its outputs are the same at every step:
computing them once is exact, and saves a teacher forward pass per student step. Only the [CLS] states are kept:
per-token states of every layer would not fit in memory at scale. The training split gets an ``example_index``
column; the collator looks each batch's targets up by it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import datasets
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from distilora.artifacts import fsync_directory, fsync_file
from distilora.data.encoding import token_rows
from distilora.inference import forward_in_batches
from distilora.precision import FP32
from distilora.run_dir import fingerprint
from distilora.training.losses import TEACHER_LAYER_CLS, TEACHER_LOGITS

logger = logging.getLogger(__name__)

EXAMPLE_INDEX = "example_index"
CACHE_FORMAT = "layer-cls-v2"
"""Part of the cache key: targets written by an older layout are never read as this one."""


def cache_key(teacher_weights: str, data_fingerprint: str, max_length: int, precision: str = FP32) -> str:
    """What names the cache file: the teacher's weights, the data, the truncation, the layout, and the precision of
    the pass (bf16 targets are not fp32 targets; fp32 keeps the key it had before precisions existed)."""
    parts = (teacher_weights, data_fingerprint, max_length, CACHE_FORMAT)
    return fingerprint(*parts) if precision == FP32 else fingerprint(*parts, {"precision": precision})


def compute_teacher_targets(teacher: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                            train: datasets.Dataset, batch_size: int = 128,
                            precision: str = FP32) -> dict[str, np.ndarray]:
    output = forward_in_batches(teacher, token_rows(train), tokenizer, batch_size=batch_size, want_cls=True,
                                precision=precision)
    return {TEACHER_LOGITS: output.logits.astype(np.float32), TEACHER_LAYER_CLS: output.cls.astype(np.float32)}


def cached_teacher_targets(teacher: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, train: datasets.Dataset,
                           cache_file: Path, precision: str = FP32,
                           what: str = "training examples") -> dict[str, np.ndarray]:
    """Load the targets from ``cache_file`` (named by :func:`cache_key`) or compute and save them; a cache file that
    cannot be read or does not fit is computed again (with a warning), never a failed run. ``what``: the rows, for
    the log."""
    targets = _read_cache(cache_file, len(train))
    if targets is not None:
        logger.info("Teacher targets: reusing %s", cache_file)
        return targets
    logger.info("Teacher targets: one teacher pass over %d %s", len(train), what)
    targets = compute_teacher_targets(teacher, tokenizer, train, precision=precision)
    _write_cache(targets, cache_file)
    return targets


def _read_cache(cache_file: Path, rows: int) -> dict[str, np.ndarray] | None:
    if not cache_file.exists():
        return None
    try:
        targets = load_file(str(cache_file))
    except (SafetensorError, OSError, ValueError) as error:  # truncated, corrupted, unreadable
        logger.warning("Teacher targets: %s cannot be read (%s: %s); computing them again", cache_file,
                       type(error).__name__, error)
        return None
    if len(targets.get(TEACHER_LOGITS, ())) != rows or TEACHER_LAYER_CLS not in targets:
        logger.warning("Teacher targets: %s does not hold targets for the %d training examples; computing them again",
                       cache_file, rows)
        return None
    return targets


def _write_cache(targets: dict[str, np.ndarray], cache_file: Path) -> None:
    """Save beside, make the bytes durable, then rename into place: a crash leaves no half-written cache."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_suffix(".partial")
    save_file(targets, str(partial))
    fsync_file(partial)
    partial.replace(cache_file)
    fsync_directory(cache_file.parent)


def with_example_index(train: datasets.Dataset) -> datasets.Dataset:
    """The split with the row number each example's teacher targets sit at."""
    return train.add_column(EXAMPLE_INDEX, list(range(len(train))))
