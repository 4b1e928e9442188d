"""Spelling perturbations (distilora.data.perturb) and ``--augment``: seeded, each kind doing what it says, labels
kept, part of the stage fingerprint, and a bad value refused naming the flag."""

from __future__ import annotations

import itertools

import datasets
import pytest

from distilora.cli import main
from distilora.config import PERTURBATION_KINDS, DataConfig, perturbation_kinds
from distilora.data.perturb import LEET, augment_texts, augmented_split, perturb

TEXTS = ["I really hate those people, they should all go back where they came from",
         "what a lovely sunny morning with coffee and good friends in the garden",
         "you are a stupid worthless idiot and everybody knows it"]


@pytest.mark.parametrize("kind", PERTURBATION_KINDS)
def test_the_same_seed_gives_the_same_perturbation_and_another_seed_another(kind):
    for text in TEXTS:
        assert perturb(text, kind, seed=7) == perturb(text, kind, seed=7)
        outputs = {perturb(text, kind, seed) for seed in range(6)}
        assert len(outputs) > 1, (kind, text)
        assert text not in outputs


def test_augmented_texts_are_seeded_whatever_their_order_or_batch():
    once = augment_texts(TEXTS, ["char", "word"], seed=3)
    assert once == augment_texts(TEXTS, ["char", "word"], seed=3)
    assert augment_texts(TEXTS[::-1], ["char", "word"], seed=3) == once[::-1]
    assert [augment_texts([t], ["char", "word"], seed=3)[0] for t in TEXTS] == once
    assert augment_texts(TEXTS, ["char", "word"], seed=4) != once


def _words(text: str) -> list[str]:
    return text.split()


def _collapsed_runs(text: str) -> str:
    return "".join(char for char, _ in itertools.groupby(text))


def _is_subsequence(short: str, long: str) -> bool:
    remaining = iter(long)
    return all(char in remaining for char in short)


def test_leet_replaces_letters_by_their_look_alikes_one_for_one():
    for text in TEXTS:
        out = perturb(text, "leet", 0)
        assert len(out) == len(text) and out != text
        for before, after in zip(text, out, strict=True):
            assert after == before or after in LEET[before.lower()]


def test_repeat_writes_letters_again_and_nothing_else():
    for text in TEXTS:
        out = perturb(text, "repeat", 0)
        assert len(out) > len(text)
        assert _collapsed_runs(out) == _collapsed_runs(text)


def test_swap_exchanges_neighbouring_characters_within_words():
    for text in TEXTS:
        out = perturb(text, "swap", 0)
        assert out != text and len(_words(out)) == len(_words(text))
        for before, after in zip(_words(text), _words(out), strict=True):
            differ = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
            assert differ == [] or (len(differ) == 2 and differ[1] == differ[0] + 1
                                    and before[differ[0]] == after[differ[1]])


def test_drop_leaves_letters_out():
    for text in TEXTS:
        out = perturb(text, "drop", 0)
        assert len(out) < len(text) and _is_subsequence(out, text)
        assert len(_words(out)) == len(_words(text))
        assert all(len(b) - len(a) in (0, 1) for a, b in zip(_words(out), _words(text), strict=True))


def test_case_changes_only_the_case():
    for text in TEXTS:
        out = perturb(text, "case", 0)
        assert out != text and out.lower() == text.lower()


def test_spaced_inserts_spaces_inside_words_and_joined_removes_spaces_between_them():
    for text in TEXTS:
        spaced, joined = perturb(text, "spaced", 0), perturb(text, "joined", 0)
        assert spaced.replace(" ", "") == text.replace(" ", "") == joined.replace(" ", "")
        assert spaced.count(" ") > text.count(" ") > joined.count(" ")


def test_about_word_share_of_the_words_are_changed_and_at_least_one():
    text = " ".join(["hateful"] * 200)
    changed = sum(a != b for a, b in zip(_words(text), _words(perturb(text, "case", 0, word_share=0.2)), strict=True))
    assert 20 <= changed <= 60
    assert sum(a != b for a, b in zip(_words("one two three"), _words(perturb("one two three", "case", 0, 0.0)),
                                       strict=True)) == 1


def test_a_text_no_kind_can_change_is_returned_as_it_is():
    for kind in PERTURBATION_KINDS:
        if kind not in ("joined", "spaced", "swap"):
            assert perturb("123 !!", kind, 0) == "123 !!"
    assert perturb("", "joined", 0) == "" and perturb("word", "joined", 0) == "word"


def test_augmentation_adds_perturbed_copies_that_keep_their_labels():
    split = datasets.Dataset.from_dict({"text": TEXTS * 4, "label": [1, 0, 1] * 4})
    augmented = augmented_split(split, ["char"], rate=1.0, seed=5)
    assert augmented[:12] == split[:]
    added = augmented[12:]
    assert added["text"] == augment_texts(TEXTS * 4, ["char"], seed=5)
    assert added["label"] == [1, 0, 1] * 4
    half = augmented_split(split, ["char"], rate=0.5, seed=5)
    assert len(half) == 18
    for text, label in zip(half[12:]["text"], half[12:]["label"], strict=True):
        source = next(i for i, t in enumerate(TEXTS) if augment_texts([t], ["char"], 5)[0] == text)
        assert label == [1, 0, 1][source]


def test_augment_takes_families_and_kinds():
    assert perturbation_kinds(["char"]) == ("leet", "repeat", "swap", "drop", "case")
    assert perturbation_kinds(["word", "leet", "spaced"]) == ("spaced", "joined", "leet")
    assert DataConfig(augment=["char", "word"]).augmentation() == {"kinds": list(PERTURBATION_KINDS), "rate": 0.5}
    assert DataConfig().augmentation() is None


def test_a_bad_augment_value_is_one_clear_error_naming_the_flag(capsys):
    with pytest.raises(ValueError, match=r"--augment 'chars': choose from char, word, leet"):
        DataConfig(augment=("chars",))
    assert main(["run", "--augment", "char,typo"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--augment 'typo': choose from char, word" in lines[0], lines
    with pytest.raises(SystemExit):
        main(["run", "--augment", "char", "--augment-rate", "1.5"])
    assert "--augment-rate" in capsys.readouterr().err
