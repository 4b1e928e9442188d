"""Seeded spelling perturbations of the kinds users write to slip past a filter, and training augmentation with them.

Kinds (:data:`~distilora.config.PERTURBATION_FAMILIES`): ``leet`` (letters as look-alike digits and symbols:
``hate`` → ``h4t3``), ``repeat`` (a letter written two or three times more), ``swap`` (two neighbouring characters
exchanged), ``drop`` (a letter left out), ``case`` (a word in capitals or aLtErNaTiNg case), ``spaced`` (a space
inserted inside a word: ``ha te``) and ``joined`` (the space between two words removed). Family ``char`` is the
first five, ``word`` the last two.

Every text is perturbed by its own generator, seeded by ``(seed, kind, text)``: the same text, kind and seed give
the same output whatever the order, batch or process it comes in, and another seed gives another output. Roughly
``word_share`` of the words a kind can change are changed, and always at least one (a text no kind can change, such
as one without letters, is returned as it is).

``--augment`` adds one perturbed copy (same label) of a seeded share of the training rows once per run, before
tokenising, rather than new copies every epoch: the teacher's targets for distillation are cached over the training
rows, so copies made once get the teacher's own outputs on the perturbed text, and the same copies let a rerun reuse
its finished stages. :func:`augment_texts` perturbs any list of texts the same way (e.g. unlabelled transfer texts).

Hand-written rather than a library, after checking the maintained candidates: nlpaug 1.1.11 covers inserted,
substituted, swapped and deleted characters and split words, but not leetspeak, removed spaces or case, and it draws
from the global ``random`` / ``numpy.random`` state (no seed of its own, so it would disturb the training seeds);
AugLy 1.0.0's text module has leetspeak and case but pins nlpaug 1.1.3, installs libsndfile and needs libmagic on
import; TextAttack brings its own torch / transformers stack; textaugment is word-level (WordNet, translation).
Each kind here is a few lines over :class:`random.Random`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Sequence

import datasets

from distilora.config import PERTURBATION_FAMILIES, PERTURBATION_KINDS, DataConfig, perturbation_kinds
from distilora.data.loading import TaskData
from distilora.data.transfer import TransferTexts, text_fingerprint

WORD_SHARE = 0.2
"""The share of the words a perturbation changes in a text (at least one)."""

LEET = {"a": "4@", "b": "8", "e": "3", "g": "9", "i": "1!", "l": "1|", "o": "0", "s": "5$", "t": "7+", "z": "2"}
"""Look-alike digits and symbols per letter (either case)."""

_SEPARATOR = re.compile(r"(\s+)")


def _leet(word: str, rng: random.Random) -> str:
    places = [i for i, c in enumerate(word) if c.lower() in LEET]
    chosen = [i for i in places if rng.random() < 0.5] or [rng.choice(places)]
    chars = list(word)
    for i in chosen:
        chars[i] = rng.choice(LEET[chars[i].lower()])
    return "".join(chars)


def _repeat(word: str, rng: random.Random) -> str:
    i = rng.choice([i for i, c in enumerate(word) if c.isalpha()])
    return word[:i + 1] + word[i] * rng.randint(2, 3) + word[i + 1:]


def _swap(word: str, rng: random.Random) -> str:
    i = rng.choice([i for i in range(len(word) - 1) if word[i] != word[i + 1]])
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def _drop(word: str, rng: random.Random) -> str:
    i = rng.choice([i for i, c in enumerate(word) if c.isalpha()])
    return word[:i] + word[i + 1:]


def _case_variants(word: str) -> list[str]:
    """``word`` in capitals and in alternating case, where that differs from ``word``."""
    alternating = "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(word))
    return [variant for variant in dict.fromkeys((word.upper(), alternating)) if variant != word]


def _case(word: str, rng: random.Random) -> str:
    return rng.choice(_case_variants(word))


def _spaced(word: str, rng: random.Random) -> str:
    i = rng.randint(1, len(word) - 1)
    return word[:i] + " " + word[i:]


def _changes(word: str) -> dict[str, bool]:
    """Which word-level kinds can change ``word``."""
    letters = sum(c.isalpha() for c in word)
    return {
        "leet": any(c.lower() in LEET for c in word),
        "repeat": letters >= 1,
        "swap": any(word[i] != word[i + 1] for i in range(len(word) - 1)),
        "drop": letters >= 1 and len(word) >= 3,
        "case": bool(_case_variants(word)),
        "spaced": len(word) >= 2,
    }


WORD_KINDS: dict[str, Callable[[str, random.Random], str]] = {
    "leet": _leet, "repeat": _repeat, "swap": _swap, "drop": _drop, "case": _case, "spaced": _spaced}


def _pick(places: list[int], rng: random.Random, word_share: float) -> list[int]:
    return [i for i in places if rng.random() < word_share] or [rng.choice(places)]


def perturb(text: str, kind: str, seed: int, word_share: float = WORD_SHARE) -> str:
    """``text`` with about ``word_share`` of the words that ``kind`` can change changed (at least one)."""
    if kind not in WORD_KINDS and kind != "joined":
        raise ValueError(f"unknown perturbation {kind!r}: choose from {', '.join(PERTURBATION_KINDS)}")
    rng = random.Random(f"{seed}\x1f{kind}\x1f{text}")
    parts = _SEPARATOR.split(text)  # words at even positions, the whitespace between them at odd ones
    if kind == "joined":
        places = [i for i in range(1, len(parts) - 1, 2) if parts[i - 1] and parts[i + 1]]
        for i in _pick(places, rng, word_share) if places else []:
            parts[i] = ""
        return "".join(parts)
    places = [i for i in range(0, len(parts), 2) if parts[i] and _changes(parts[i])[kind]]
    for i in _pick(places, rng, word_share) if places else []:
        parts[i] = WORD_KINDS[kind](parts[i], rng)
    return "".join(parts)


def augment_texts(texts: Sequence[str], kinds: Sequence[str], seed: int,
                  word_share: float = WORD_SHARE) -> list[str]:
    """One perturbed copy of each text, by a kind drawn (seeded, per text) from ``kinds`` — families or kinds,
    as ``--augment`` takes them."""
    resolved = perturbation_kinds(kinds)
    out = []
    for text in texts:
        kind = random.Random(f"{seed}\x1fkind\x1f{text}").choice(resolved)
        out.append(perturb(text, kind, seed, word_share))
    return out


def perturbed_copies(texts: Sequence[str], kinds: Sequence[str], rate: float, seed: int) -> dict[int, str]:
    """``{row: its perturbed copy}`` for a seeded ``rate`` share of ``texts``, in row order; copies equal to their
    source (a text no kind can change) are left out."""
    chosen = sorted(random.Random(seed).sample(range(len(texts)), round(rate * len(texts))))
    copies = augment_texts([texts[i] for i in chosen], kinds, seed)
    return {row: copy for row, copy in zip(chosen, copies, strict=True) if copy != texts[row]}


def augmented_split(split: datasets.Dataset, kinds: Sequence[str], rate: float, seed: int) -> datasets.Dataset:
    """``split`` followed by one perturbed copy (same label) of a seeded ``rate`` share of its rows."""
    copies = perturbed_copies(split["text"], kinds, rate, seed)
    labels = split["label"]
    added = datasets.Dataset.from_dict({"text": list(copies.values()), "label": [labels[row] for row in copies]},
                                       features=split.features)
    return datasets.concatenate_datasets([split, added])


def augment_transfer_texts(transfer: TransferTexts, config: DataConfig, seed: int) -> None:
    """Add ``--augment``'s copies of a seeded share of the transfer texts (the teacher labels them like the rest),
    counted in their report as ``augmented``; their fingerprint then includes the copies."""
    augmentation = config.augmentation()
    if augmentation is None:
        return
    copies = perturbed_copies(transfer.texts, augmentation["kinds"], augmentation["rate"], seed)
    transfer.texts.extend(copies.values())
    transfer.report.augmented = len(copies)
    transfer.report.fingerprint = text_fingerprint(transfer.texts)


def augment_training_split(data: TaskData, config: DataConfig, seed: int) -> str:
    """Add ``--augment``'s copies to ``data``'s train split (counted in its report as ``augmented_rows``), once per
    run; the training rows' fingerprint: the data's own without augmentation, else one that includes it."""
    augmentation = config.augmentation()
    if augmentation is None:
        return data.fingerprint
    clean = data.splits["train"]
    data.splits["train"] = augmented_split(clean, augmentation["kinds"], augmentation["rate"], seed)
    data.report["train"]["augmented_rows"] = len(data.splits["train"]) - len(clean)
    settings = json.dumps({**augmentation, "seed": seed, "word_share": WORD_SHARE}, sort_keys=True)
    return hashlib.sha256(f"{data.fingerprint}\x1f{settings}".encode()).hexdigest()


__all__ = ["LEET", "PERTURBATION_FAMILIES", "PERTURBATION_KINDS", "WORD_SHARE", "augment_texts",
           "augment_training_split", "augment_transfer_texts", "augmented_split", "perturbed_copies", "perturb"]
