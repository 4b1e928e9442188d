"""The teacher-target cache: durable before it is renamed into place, and recomputed (not a traceback) when it
cannot be read."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import datasets
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from distilora.training import teacher_targets
from distilora.training.losses import TEACHER_LAYER_CLS, TEACHER_LOGITS

ROWS = 6


@pytest.fixture
def computed(monkeypatch) -> list[int]:
    """Count the teacher passes; each gives fixed targets for ROWS examples."""
    passes: list[int] = []

    def compute(*args, **kwargs) -> dict[str, np.ndarray]:
        passes.append(1)
        return {TEACHER_LOGITS: np.arange(ROWS * 2, dtype=np.float32).reshape(ROWS, 2),
                TEACHER_LAYER_CLS: np.ones((ROWS, 3, 4), dtype=np.float32)}

    monkeypatch.setattr(teacher_targets, "compute_teacher_targets", compute)
    return passes


def targets_for(cache: Path) -> dict[str, np.ndarray]:
    train = datasets.Dataset.from_dict({"input_ids": [[101, 102]] * ROWS})
    return teacher_targets.cached_teacher_targets(None, None, train, cache)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_an_unreadable_cache_is_computed_again_with_a_warning(tmp_path, computed, caplog, damage):
    """Before: a truncated or garbled cache file stopped the run with a SafetensorError traceback."""
    cache = tmp_path / ".cache" / "teacher-targets-key.safetensors"
    targets_for(cache)
    whole = cache.read_bytes()
    cache.write_bytes({"garbage": b"not safetensors at all", "truncated": whole[: len(whole) // 2],
                       "empty": b""}[damage])
    with caplog.at_level(logging.WARNING):
        targets = targets_for(cache)
    assert len(computed) == 2 and targets[TEACHER_LOGITS].shape == (ROWS, 2)
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert str(cache) in warning and warning.endswith("computing them again")
    assert load_file(str(cache))[TEACHER_LOGITS].shape == (ROWS, 2), "the cache was written again"
    targets_for(cache)
    assert len(computed) == 2, "and is read the next time"


def test_a_cache_for_other_rows_is_computed_again(tmp_path, computed):
    cache = tmp_path / "teacher-targets-key.safetensors"
    save_file({TEACHER_LOGITS: np.zeros((ROWS + 1, 2), dtype=np.float32)}, str(cache))
    assert targets_for(cache)[TEACHER_LOGITS].shape == (ROWS, 2) and len(computed) == 1


def test_the_cache_is_fsynced_before_it_is_renamed_into_place(tmp_path, computed, monkeypatch):
    """Before: the file was renamed into place without fsync: a power cut could leave an empty cache file."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, Path.replace

    def fsync(fd: int) -> None:
        events.append(f"fsync {os.readlink(f'/proc/self/fd/{fd}')}")
        real_fsync(fd)

    def replace(self: Path, target: Path) -> Path:
        events.append(f"rename {self}")
        return real_replace(self, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(Path, "replace", replace)
    cache = tmp_path / "teacher-targets-key.safetensors"
    targets_for(cache)
    partial = cache.with_suffix(".partial")
    assert events == [f"fsync {partial}", f"rename {partial}", f"fsync {tmp_path}"]
