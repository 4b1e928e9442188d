"""Transfer texts: unlabelled texts the fine-tuned teacher labels for the distillation routes.

Read from .txt (one text a line), CSV, JSON Lines or Parquet files; cleaned and counted: blank texts, texts that
repeat a validation or test text (never train on what is evaluated), a labelled training text or an earlier transfer
text (compared after whitespace and case normalisation) are removed; then ``--transfer-max`` takes a seeded sample.
A file that cannot be used, or nothing left after cleaning, is a :class:`~distilora.data.loading.DataError`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distilora.artifacts import sha256_file
from distilora.config import TransferConfig
from distilora.data.loading import FORMATS, DataError, TaskData, read_table
from distilora.results import TransferFile, TransferReport

logger = logging.getLogger(__name__)

TEXT_SUFFIX = ".txt"
EVALUATION_SPLITS = ("validation", "test")


@dataclass
class TransferTexts:
    """The kept transfer texts, in file order, and the report of what was read and removed."""

    texts: list[str]
    report: TransferReport

    @property
    def fingerprint(self) -> str:
        return self.report.fingerprint or ""


def normalised(text: str) -> str:
    """What two texts are compared by: whitespace runs as one space, no outer spaces, case folded."""
    return " ".join(text.split()).casefold()


def read_transfer_file(file: Path, text_column: str) -> list[str | None]:
    """The texts of one file; a :class:`DataError` naming the file and what to fix when it cannot be used."""
    if not file.is_file():
        what = "not a file" if file.exists() else "no such file"
        raise DataError(f"{file}: {what}; --transfer-texts takes files of texts")
    suffix = file.suffix.lower()
    if suffix == TEXT_SUFFIX:
        try:
            return file.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise DataError(f"{file}: could not be read as UTF-8 text: {type(error).__name__}: {error}") from error
    if suffix not in FORMATS:
        raise DataError(f"{file}: transfer texts must be {TEXT_SUFFIX} (one a line), "
                        f"{', '.join(sorted(FORMATS))}; got {suffix or 'no suffix'}")
    table = read_table(file, string_columns=(text_column,))
    if text_column not in table.column_names:
        raise DataError(f"{file}: no column {text_column!r} (found {table.column_names}); name the column of the "
                        "texts with --transfer-text-column")
    return table[text_column]


def load_transfer_texts(config: TransferConfig, data: TaskData, seed: int) -> TransferTexts:
    """Read every file of ``config``, clean against ``data``'s splits, and count what was removed and why."""
    files, raw = [], []
    for name in config.files:
        file = Path(name).expanduser()
        texts = read_transfer_file(file, config.text_column)
        files.append(TransferFile(path=str(file), sha256=sha256_file(file), rows_read=len(texts)))
        raw.extend(texts)
    report = TransferReport(files=files, text_column=config.text_column, rows_read=len(raw), weight=config.weight)
    kept = _cleaned(raw, data, report)
    kept = _sampled(kept, config.max_texts, seed, report)
    if not kept:
        raise DataError(f"{', '.join(config.files)}: no transfer texts left after cleaning "
                        f"({_removed_line(report) or 'the files hold no rows'}); give texts that are not blank and "
                        "not in the dataset")
    report.kept = len(kept)
    report.fingerprint = text_fingerprint(kept)
    logger.info("Transfer texts: %d kept of %d read (removed: %s)", report.kept, report.rows_read,
                _removed_line(report) or "none")
    return TransferTexts(kept, report)


def _normalised_set(texts: Iterable[str]) -> set[str]:
    return {normalised(text) for text in texts}


def _cleaned(raw: list[str | None], data: TaskData, report: TransferReport) -> list[str]:
    evaluation = set().union(*(_normalised_set(data.splits[s]["text"]) for s in EVALUATION_SPLITS))
    train = _normalised_set(data.splits["train"]["text"])
    seen: set[str] = set()
    kept = []
    for text in raw:
        key = normalised(str(text)) if text is not None else ""
        if not key:
            report.blank += 1
        elif key in evaluation:
            report.duplicates_of_evaluation += 1
        elif key in train:
            report.duplicates_of_train += 1
        elif key in seen:
            report.duplicates_within += 1
        else:
            seen.add(key)
            kept.append(str(text))
    return kept


def _sampled(texts: list[str], limit: int | None, seed: int, report: TransferReport) -> list[str]:
    """A seeded sample of ``limit`` texts, in file order (all of them when there are no more)."""
    if limit is None or len(texts) <= limit:
        return texts
    chosen = np.sort(np.random.default_rng(seed).choice(len(texts), size=limit, replace=False))
    report.over_max = len(texts) - limit
    return [texts[i] for i in chosen]


def text_fingerprint(texts: list[str]) -> str:
    """Hash of ``texts``, in order."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _removed_line(report: TransferReport) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in report.removed().items())
