"""What is published about the shared datasets (``../shared/datasets/README.md``): their hub ids and known limits.

The report's Data section and the model cards state these; a dataset not listed here gets no such note (its
measured facts — dropped rows, class counts, a prior shift — are stated either way).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KnownDataset:
    hub_id: str | None
    """The same data on the Hugging Face hub, for model cards' ``datasets`` metadata."""
    hub_config: str | None
    description: str
    limits: tuple[str, ...]


KNOWN_DATASETS = {
    "tweet_eval_hate": KnownDataset(
        "cardiffnlp/tweet_eval", "hate",
        "TweetEval 'hate' (Barbieri et al., 2020; from SemEval-2019 Task 5, HatEval): English tweets, hate speech "
        "against immigrants and women; official splits",
        ("The test split is known to be shifted from train and validation (published test macro-F1: SVM 0.367, "
         "FastText 0.506, BiLSTM 0.526, RoBERTa-base 0.466, RoBERTa-Twitter 0.499; TweetEval paper), so validation "
         "scores and thresholds tuned on validation do not carry over to test.",
         "Texts are as published: the train split has 7 empty tweets and validation 1 (dropped and counted).",
         "Only English tweets and two targets (immigrants, women); other targets and platforms are not covered."),
    ),
    "hate_speech18": KnownDataset(
        "hate_speech18", None,
        "Hate Speech Dataset from a White Supremacy Forum (de Gibert et al., 2018): Stormfront sentences, hate / "
        "noHate; 80/10/10 splits grouped by post",
        ("Strongly imbalanced (about 11 % hate): accuracy alone is misleading, always answering noHate scores ~0.89.",
         "One forum's sentences, judged one by one: context across sentences and other platforms are not covered."),
    ),
}


def known_dataset(dataset: str | None) -> KnownDataset | None:
    """The entry for a dataset directory or hub id whose last path part names a known dataset, or None."""
    if not dataset:
        return None
    return KNOWN_DATASETS.get(Path(str(dataset).rstrip("/")).name)
