"""Transfer texts in a run: refused without a distillation route, tokenized and scored by the teacher on first use,
and put after the labelled training rows (label :data:`~distilora.training.losses.IGNORE_INDEX`) for the routes
that distil."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
from transformers import PreTrainedTokenizerBase

from distilora.config import ExperimentConfig
from distilora.data import encode_splits
from distilora.data.multi_label import LABEL_ROWS
from distilora.data.transfer import TransferTexts
from distilora.routes import Route
from distilora.training.losses import IGNORE_INDEX
from distilora.training.teacher_targets import EXAMPLE_INDEX

TRANSFER_SPLIT = "transfer"


def check_transfer_routes(config: ExperimentConfig, routes: Sequence[Route]) -> None:
    """``--transfer-texts`` needs a route that distils: a ValueError naming them otherwise (never ignored)."""
    if config.transfer.files and not any(route.needs_teacher_targets for route in routes):
        selected = ", ".join(route.name for route in routes)
        raise ValueError(f"--transfer-texts: none of the selected routes ({selected}) distils from the teacher; "
                         "select one that does (odd, even, lora-kd, odd-lora, …) or drop --transfer-texts")


@dataclass
class TransferRows:
    """The run's transfer texts as training rows, shared by a context and its copies; tokenized and scored once."""

    texts: TransferTexts | None = None
    encoded: datasets.Dataset | None = None
    targets: dict[str, np.ndarray] | None = None

    def encode(self, tokenizer: PreTrainedTokenizerBase, max_length: int,
               label_width: int | None = None) -> datasets.Dataset:
        """The transfer texts tokenized, with no label: :data:`IGNORE_INDEX` (``label_width`` of them for a
        multi-label task)."""
        if self.texts is None:
            raise RuntimeError("the run has no transfer texts to encode")
        if self.encoded is None:
            unlabelled = IGNORE_INDEX if label_width is None else [IGNORE_INDEX] * label_width
            feature = datasets.Value("int64") if label_width is None else LABEL_ROWS
            table = datasets.Dataset.from_dict(
                {"text": self.texts.texts, "label": [unlabelled] * len(self.texts.texts)},
                features=datasets.Features({"text": datasets.Value("string"), "label": feature}))
            self.encoded = encode_splits(datasets.DatasetDict({TRANSFER_SPLIT: table}), tokenizer,
                                         max_length)[TRANSFER_SPLIT]
        return self.encoded

    def after(self, train: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> datasets.Dataset:
        """``train`` (with its ``example_index``) followed by the transfer rows, indexed after it."""
        first_labels = train[0]["labels"] if len(train) else None
        rows = self.encode(tokenizer, max_length, len(first_labels) if isinstance(first_labels, list) else None)
        rows = rows.add_column(EXAMPLE_INDEX, list(range(len(train), len(train) + len(rows))))
        return datasets.concatenate_datasets([train, rows.cast(train.features)])
