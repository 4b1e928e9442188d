"""Behavioural checks of a multi-label run: one 0/1 gold column per label (as in the training data), a case right
when all its labels are right, each label's F1 overall, and one-line errors for missing or ill-valued gold
columns."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from distilora.checks.compute import summarise
from distilora.checks.render import overall_table, terminal_summary
from distilora.checks.suite import load_suite
from distilora.config import CheckConfig
from tests.multi_label_model import LABELS

ROWS = [("you idiot", "1", "0", "0", "insults"), ("I will hurt you", "0", "1", "0", "threats"),
        ("damn idiot", "1.0", "0.0", "1.0", "insults"), ("lovely garden", "false", "FALSE", "False", "none"),
        ("   ", "1", "1", "1", "none"), ("burn it, moron", "True", "true", "0", "threats")]


def suite_file(path: Path, rows=ROWS, header=("text", *LABELS, "kind")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_a_label_no_case_has_on_is_named_in_the_notes(tmp_path):
    rows = [(text, insult, threat, "0", kind) for text, insult, threat, _, kind in ROWS]
    suite = load_suite(suite_file(tmp_path / "s.csv", rows), LABELS, multi_label=True)
    check = summarise(suite, {"teacher": suite.gold}, list(LABELS), "teacher")
    assert any("no case with 'obscene' in the suite: that label's F1 is 0" in note for note in check["notes"])


def test_gold_columns_named_as_the_labels_give_0_1_rows_in_label_order(tmp_path):
    shuffled = [(r[0], r[3], r[1], r[2], r[4]) for r in ROWS]
    suite = load_suite(suite_file(tmp_path / "s.csv", shuffled, ("text", "obscene", "insult", "threat", "kind")),
                       LABELS, CheckConfig(group_columns=("kind",)), multi_label=True)
    assert suite.gold == [[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 0], [1, 1, 0]]  # the blank text dropped
    assert suite.label_mapping == {label: label for label in LABELS}
    assert suite.label_column == "insult,threat,obscene" and suite.dropped_total == 1


def test_a_label_map_names_the_gold_column_of_a_label(tmp_path):
    path = suite_file(tmp_path / "s.csv", header=("text", "abusive", "threat", "obscene", "kind"))
    suite = load_suite(path, LABELS, multi_label=True, label_map={"abusive": "insult"})
    assert suite.label_mapping == {"abusive": "insult", "threat": "threat", "obscene": "obscene"}
    assert suite.gold[0] == [1, 0, 0]


@pytest.mark.parametrize(("rows", "header", "label_map", "phrase"), [
    (ROWS, ("text", "insult", "menace", "obscene", "kind"), None, "no gold column for 'threat'"),
    ([("you idiot", "1", "yes", "0", "x")], None, None, "s.csv case 1: column 'threat' holds 'yes'"),
    ([("ok", "1", "0", "0", "x"), ("you idiot", "1", "", "0", "x")], None, None,
     "s.csv case 2: column 'threat' is empty"),
    (ROWS, None, {"insult": "hate"}, "names labels the run lacks: hate"),
    (ROWS, None, {"abusive": "insult"}, "names columns s.csv lacks: abusive"),
    (ROWS, None, {"insult": "threat", "threat": "threat"}, "maps several columns onto threat"),
])
def test_missing_or_ill_valued_gold_columns_are_one_line_errors(tmp_path, rows, header, label_map, phrase):
    path = suite_file(tmp_path / "s.csv", rows, header or ("text", *LABELS, "kind"))
    with pytest.raises(ValueError) as error:
        load_suite(path, LABELS, multi_label=True, label_map=label_map)
    assert phrase in str(error.value) and "\n" not in str(error.value)


def test_a_case_is_right_when_all_its_labels_are_and_each_labels_f1_is_reported(tmp_path):
    suite = load_suite(suite_file(tmp_path / "s.csv"), LABELS, CheckConfig(group_columns=("kind",)),
                       multi_label=True)
    gold = np.array(suite.gold)
    odd = gold.copy()
    odd[0, 1] = 1  # one wrong label on an insult case: that case is wrong
    odd[2, 2] = 0
    check = summarise(suite, {"teacher": gold.tolist(), "odd": odd.tolist()}, list(LABELS), "teacher",
                      CheckConfig(examples_per_group=2))
    assert check["threshold"] == "0.5 per label"
    assert check["gold_counts"] == {"insult": 3, "threat": 2, "obscene": 1}
    overall = check["overall"]["odd"]
    assert overall["accuracy"] == pytest.approx(3 / 5)
    assert overall["macro_f1"] == pytest.approx(f1_score(gold, odd, average="macro", zero_division=0))
    expected = f1_score(gold, odd, average=None, zero_division=0)
    assert overall["per_label_f1"] == pytest.approx(dict(zip(LABELS, expected, strict=True)))
    assert check["overall"]["teacher"]["per_label_f1"] == dict.fromkeys(LABELS, 1.0)
    assert not any("F1 is 0" in note for note in check["notes"])
    grouping = check["groupings"][0]
    assert [r["accuracy"] for r in grouping["accuracy"]["odd"]] == [0.0, 1.0, 1.0]  # insults, threats, none
    worst = grouping["broke"]["odd"][0]
    assert worst["group"] == "insults" and worst["teacher_only_correct"] == 2
    assert worst["examples"][0] == {"text": "you idiot", "gold": "insult", "teacher": "insult",
                                    "model": "insult, threat"}
    assert worst["examples"][1]["model"] == "insult"
    table = overall_table({"name": "mini", **check})
    assert table.headers[-3:] == ["F1 insult", "F1 threat", "F1 obscene"]
    assert "accuracy (all labels right)" in terminal_summary({"name": "mini", **check}, 3)
