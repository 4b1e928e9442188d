"""Data loading: bad rows dropped and counted, every format and column name, splits made and refused as documented."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import datasets
import pytest
from conftest import SHARED_DATASETS, make_dataset, synthetic_rows, write_csv

from distilora.config import DataConfig
from distilora.data import DataError, load_task_data

TWEET_EVAL = SHARED_DATASETS / "tweet_eval_hate"


def q(path: Path) -> str:
    """``path`` as a literal inside a regular expression."""
    return re.escape(str(path))


def load(path: Path, seed: int = 42, **kwargs):
    return load_task_data(DataConfig(dataset=str(path), **kwargs), seed)


def rows_of(data, split: str) -> list[tuple[str, int]]:
    return list(zip(data.splits[split]["text"], data.splits[split]["label"], strict=True))


def good_rows(n: int, seed: int = 0) -> list[tuple[str, object]]:
    return synthetic_rows(n, 2, seed)


# ---- dropped rows are counted, per split --------------------------------------------------------------------------

def test_bad_rows_are_dropped_and_counted_per_split(tmp_path):
    write_csv(tmp_path / "train.csv", good_rows(20) + [("", 1), ("   ", 0), ("\t\n", 1), ("no label here", "")])
    write_csv(tmp_path / "validation.csv", good_rows(10, 1) + [("", 0), ("fine text", " ")])
    write_csv(tmp_path / "test.csv", good_rows(10, 2))
    (tmp_path / "labels.txt").write_text("neutral\ntoxic\n")
    data = load(tmp_path)
    report = data.report
    assert report["train"]["rows"] == 20 and report["train"]["dropped"] == 4
    assert report["train"]["reasons"] == {"empty_text": 3, "missing_label": 1}
    assert report["validation"]["rows"] == 10 and report["validation"]["dropped"] == 2
    assert report["validation"]["reasons"] == {"empty_text": 1, "missing_label": 1}
    assert report["test"]["rows"] == 10 and report["test"]["dropped"] == 0
    assert rows_of(data, "train") == [(t, int(y)) for t, y in good_rows(20)]
    assert all(text.strip() for split in data.splits.values() for text in split["text"])


def test_unknown_label_in_test_is_an_error_not_a_quiet_drop(tmp_path):
    rows = [(f"text {i}", "toxic" if i % 2 else "neutral") for i in range(12)]
    write_csv(tmp_path / "train.csv", rows)
    write_csv(tmp_path / "validation.csv", rows[:4])
    write_csv(tmp_path / "test.csv", rows[:4] + [("a spammy one", "spam")])
    with pytest.raises(DataError, match=q(tmp_path / "test.csv") + r", line 6: label 'spam' is not one of the 2 "
                       r"classes \['neutral', 'toxic'\] found in train"):
        load(tmp_path)


# ---- labels are read as text and normalised once (the reliability review's reproductions) ----------------------------
def test_float_written_labels_with_a_blank_cell_keep_every_test_row(tmp_path):
    """Reproduced before: test.csv with 0.0 / 1.0 and one empty label cell became strings, and all 20 test rows
    were dropped as unknown_label, leaving nothing to evaluate on."""
    write_csv(tmp_path / "train.csv", good_rows(40))
    write_csv(tmp_path / "validation.csv", good_rows(10, 1))
    test_rows = [(text, f"{label}.0") for text, label in good_rows(20, 2)]
    test_rows[7] = (test_rows[7][0], "")
    write_csv(tmp_path / "test.csv", test_rows)
    data = load(tmp_path)
    assert data.report["test"]["rows"] == 19 and data.report["test"]["reasons"] == {"missing_label": 1}
    expected = [label for i, (_, label) in enumerate(good_rows(20, 2)) if i != 7]
    assert data.splits["test"]["label"] == expected


@pytest.mark.parametrize("spelling", ["1", "1.0", " 1 ", "+1", "1.00", "1e0"])
def test_spellings_of_one_class_id_are_the_same_class(tmp_path, spelling):
    write_csv(tmp_path / "train.csv", good_rows(20))
    write_csv(tmp_path / "test.csv", [("some text", spelling), ("other text", "0")])
    (tmp_path / "labels.txt").write_text("neutral\ntoxic\n")
    assert load(tmp_path).splits["test"]["label"] == [1, 0]


def test_non_integral_number_label_is_an_error_naming_file_and_row(tmp_path):
    write_csv(tmp_path / "train.csv", good_rows(20))
    write_csv(tmp_path / "test.csv", [("fine", "0"), ("half", "0.5")])
    with pytest.raises(DataError, match=q(tmp_path / "test.csv") + r", line 3: label '0.5' is not a whole number"):
        load(tmp_path)


def test_a_blank_label_far_down_the_file_is_a_counted_drop(tmp_path):
    """Reproduced before: a blank label in row 15,000 (a later CSV chunk) failed with an Arrow cast error."""
    rows = good_rows(15_000)
    rows[14_998] = (rows[14_998][0], "")
    write_csv(tmp_path / "train.csv", rows)
    write_csv(tmp_path / "test.csv", good_rows(10, 2))
    data = load(tmp_path)
    assert data.report["train"]["reasons"] == {"missing_label": 1}
    assert data.report["train"]["rows"] + len(data.splits["validation"]) == 14_999


def test_labels_txt_with_a_byte_order_mark(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / "labels.txt").write_bytes("\ufeffneutral\ntoxic\n".encode())
    assert load(tmp_path).labels == ["neutral", "toxic"]


def test_an_eval_split_missing_a_class_is_a_stated_warning(tmp_path, caplog):
    write_csv(tmp_path / "train.csv", good_rows(20))
    write_csv(tmp_path / "validation.csv", good_rows(10, 1))
    write_csv(tmp_path / "test.csv", [(text, 0) for text, _ in good_rows(6, 2)])
    (tmp_path / "labels.txt").write_text("neutral\ntoxic\n")
    data = load(tmp_path)
    assert data.report["test"]["warnings"] == ["the test split has no items of class 'toxic': that class's F1 is 0 "
                                               "there and caps macro-F1 at 0.50"]
    assert "warnings" not in data.report["validation"]
    assert "caps macro-F1 at 0.50" in caplog.text


@pytest.mark.skipif(not TWEET_EVAL.exists(), reason="the shared datasets are not present")
def test_real_tweet_eval_hate_empty_texts_are_counted():
    data = load(TWEET_EVAL)
    assert data.labels == ["not-hate", "hate"]
    assert data.report["train"]["reasons"] == {"empty_text": 7}
    assert (data.report["train"]["rows"], data.report["train"]["dropped"]) == (8993, 7)
    assert data.report["validation"]["reasons"] == {"empty_text": 1}
    assert (data.report["validation"]["rows"], data.report["validation"]["dropped"]) == (999, 1)
    assert (data.report["test"]["rows"], data.report["test"]["dropped"]) == (2970, 0)
    assert Counter(data.splits["test"]["label"]) == {0: 1718, 1: 1252}


# ---- labels ----------------------------------------------------------------------------------------------------------

def test_integer_labels_with_labels_txt_are_class_ids(tiny_dataset):
    data = load(tiny_dataset)
    assert data.labels == ["neutral", "toxic"]
    assert rows_of(data, "test") == synthetic_rows(32, 2, 2)


def test_string_labels_map_through_labels_txt_in_its_order(tmp_path):
    rows = [(f"sentence {i}", ["neutral", "toxic", "mixed"][i % 3]) for i in range(15)]
    for split in ("train", "validation", "test"):
        write_csv(tmp_path / f"{split}.csv", rows)
    (tmp_path / "labels.txt").write_text("neutral\ntoxic\nmixed\n")
    data = load(tmp_path)
    assert data.labels == ["neutral", "toxic", "mixed"]
    assert data.splits["train"]["label"] == [i % 3 for i in range(15)]


def test_string_labels_without_labels_txt_are_sorted(tmp_path):
    rows = [(f"sentence {i}", ["toxic", "neutral"][i % 2]) for i in range(10)]
    for split in ("train", "validation", "test"):
        write_csv(tmp_path / f"{split}.csv", rows)
    data = load(tmp_path)
    assert data.labels == ["neutral", "toxic"]
    assert data.splits["train"]["label"] == [1, 0] * 5


def test_integer_labels_without_labels_txt(tmp_path):
    """0-based ids stay ids; other integers become class names in sorted order."""
    zero_based = tmp_path / "a"
    for split in ("train", "validation", "test"):
        write_csv(zero_based / f"{split}.csv", [(f"t{i}", i % 2) for i in range(8)])
    data = load(zero_based)
    assert data.labels == ["0", "1"] and data.splits["train"]["label"] == [0, 1] * 4

    other = tmp_path / "b"
    for split in ("train", "validation", "test"):
        write_csv(other / f"{split}.csv", [(f"t{i}", [5, -1, 2][i % 3]) for i in range(9)])
    data = load(other)
    assert data.labels == ["-1", "2", "5"]
    assert data.splits["train"]["label"] == [2, 0, 1] * 3


def test_label_outside_labels_txt_is_an_error_naming_the_file(tmp_path):
    make_dataset(tmp_path)
    write_csv(tmp_path / "test.csv", good_rows(5) + [("odd one", 2)])
    with pytest.raises(DataError, match=rf"{q(tmp_path / 'test.csv')}, line 7: label 2 is not one of.*labels\.txt"):
        load(tmp_path)
    write_csv(tmp_path / "test.csv", good_rows(5) + [("odd one", "spam")])
    with pytest.raises(DataError, match=rf"{q(tmp_path / 'test.csv')}.*'spam'"):
        load(tmp_path)


def test_single_class_train_is_refused(tmp_path):
    for split in ("train", "validation", "test"):
        write_csv(tmp_path / f"{split}.csv", [(f"t{i}", 0) for i in range(6)])
    with pytest.raises(DataError, match="fewer than 2 distinct labels"):
        load(tmp_path)


# ---- formats and columns -----------------------------------------------------------------------------------------

def write_all_formats(root: Path, splits: dict[str, list[tuple[str, object]]]) -> dict[str, Path]:
    dirs = {fmt: root / fmt for fmt in ("csv", "jsonl", "parquet")}
    for split, rows in splits.items():
        write_csv(dirs["csv"] / f"{split}.csv", rows)
        dirs["jsonl"].mkdir(parents=True, exist_ok=True)
        with (dirs["jsonl"] / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
            for text, label in rows:
                handle.write(json.dumps({"text": text, "label": label if label != "" else None}) + "\n")
        datasets.Dataset.from_dict(
            {"text": [t for t, _ in rows], "label": [y if y != "" else None for _, y in rows]},
            features=datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")}),
        ).to_parquet(str(root / "parquet" / f"{split}.parquet"))
    for path in dirs.values():
        (path / "labels.txt").write_text("neutral\ntoxic\n")
    return dirs


def test_jsonl_and_parquet_load_the_same_as_csv(tmp_path):
    splits = {
        "train": good_rows(30) + [("", 1), ("   ", 0), ("has no label", "")],
        "validation": good_rows(10, 1) + [("", 0)],
        "test": good_rows(10, 2) + [("null", 1), ("NA", 0), ("café ünïcode ✓", 1)],
    }
    dirs = write_all_formats(tmp_path, splits)
    loaded = {fmt: load(path) for fmt, path in dirs.items()}
    reference = loaded["csv"]
    assert reference.report["train"]["reasons"] == {"empty_text": 2, "missing_label": 1}
    assert reference.report["test"]["rows"] == 13
    for fmt in ("jsonl", "parquet"):
        data = loaded[fmt]
        assert data.labels == reference.labels, fmt
        for split in ("train", "validation", "test"):
            assert rows_of(data, split) == rows_of(reference, split), (fmt, split)
            assert data.report[split] == reference.report[split], (fmt, split)
        assert data.fingerprint == reference.fingerprint, fmt


MISSING_SPELLINGS = ["NA", "NaN", "null", "None", "nan", ""]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_missing_value_spellings_in_the_label_column_are_counted_drops_in_every_format(tmp_path, fmt):
    """Before: a CSV label written ``NA`` (R's missing value) became a third class, and a 2-class dataset trained a
    3-class model without a word."""
    splits = {"train": good_rows(20) + [(f"unlabelled {i}", value) for i, value in enumerate(MISSING_SPELLINGS)],
              "validation": good_rows(6, 1) + [("NA", 1)], "test": good_rows(6, 2) + [("no label", "NA")]}
    root = tmp_path / fmt
    for split, rows in splits.items():
        if fmt == "csv":
            write_csv(root / f"{split}.csv", rows)
        else:
            table = datasets.Dataset.from_dict({"text": [t for t, _ in rows], "label": [str(y) for _, y in rows]})
            if fmt == "jsonl":
                table.to_json(str(root / f"{split}.jsonl"))
            else:
                table.to_parquet(str(root / f"{split}.parquet"))
    data = load(root)
    assert data.labels == ["0", "1"]
    assert data.report["train"]["reasons"] == {"missing_label": len(MISSING_SPELLINGS)}
    assert data.report["test"]["reasons"] == {"missing_label": 1}
    assert ("NA", 1) in rows_of(data, "validation"), "the text column keeps NA as text"


def test_a_declared_class_spelled_like_a_missing_value_stays_a_class(tmp_path):
    rows = [(text, ["None", "hate"][label]) for text, label in good_rows(12)]
    for split in ("train", "validation", "test"):
        write_csv(tmp_path / f"{split}.csv", rows)
    (tmp_path / "labels.txt").write_text("None\nhate\n")
    data = load(tmp_path)
    assert data.labels == ["None", "hate"] and data.report["train"]["dropped"] == 0


def test_custom_text_and_label_columns(tmp_path):
    for split, seed in (("train", 0), ("validation", 1), ("test", 2)):
        write_csv(tmp_path / f"{split}.csv", [(i, text, label) for i, (text, label) in enumerate(good_rows(10, seed))],
                  header=("id", "tweet", "class"))
    data = load(tmp_path, text_column="tweet", label_column="class")
    assert rows_of(data, "test") == good_rows(10, 2)
    with pytest.raises(DataError, match=rf"{q(tmp_path / 'train.csv')}: missing column\(s\) \['text', 'label'\]"):
        load(tmp_path)


def test_missing_column_is_an_error_naming_the_file(tmp_path):
    make_dataset(tmp_path)
    write_csv(tmp_path / "validation.csv", [(t, y) for t, y in good_rows(4)], header=("text", "target"))
    message = rf"{q(tmp_path / 'validation.csv')}: missing column\(s\) \['label'\].*--label-column"
    with pytest.raises(DataError, match=message):
        load(tmp_path)


def test_undecodable_file_is_an_error_naming_the_file(tmp_path):
    make_dataset(tmp_path)
    # Latin-1 bytes: "café" as 0x63 0x61 0x66 0xE9 is not valid UTF-8.
    (tmp_path / "test.csv").write_bytes("text,label\nun café noir,0\nsoy señor,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"{q(tmp_path / 'test.csv')}: could not be read as CSV"):
        load(tmp_path)


def test_na_and_null_texts_are_kept_as_text(tmp_path):
    specials = ["NA", "null", "NULL", "N/A", "nan", "NaN", "None", "#N/A", "-nan", "0"]
    make_dataset(tmp_path)
    write_csv(tmp_path / "test.csv", [(text, i % 2) for i, text in enumerate(specials)])
    data = load(tmp_path)
    assert data.splits["test"]["text"] == specials
    assert data.report["test"]["dropped"] == 0


# ---- splits ------------------------------------------------------------------------------------------------------

def test_missing_validation_split_is_a_seeded_stratified_tenth_of_train(tmp_path):
    rows = [(f"sentence number {i}", 1 if i % 4 == 0 else 0) for i in range(200)]  # 150 : 50
    write_csv(tmp_path / "train.csv", rows)
    write_csv(tmp_path / "test.csv", rows[:20])
    (tmp_path / "labels.txt").write_text("neutral\ntoxic\n")
    first, again, other = load(tmp_path, seed=1), load(tmp_path, seed=1), load(tmp_path, seed=2)
    val, train = rows_of(first, "validation"), rows_of(first, "train")
    assert len(val) == 20 and len(train) == 180
    assert Counter(y for _, y in val) == {0: 15, 1: 5}, "the class ratio of train is kept"
    assert Counter(y for _, y in train) == {0: 135, 1: 45}
    assert sorted(val + train) == sorted(rows), "a partition of the original train split"
    assert rows_of(again, "validation") == val and rows_of(again, "train") == train
    assert rows_of(other, "validation") != val
    assert first.report["validation"]["rows"] == 20 and first.report["train"]["rows"] == 180
    assert "stratified" in first.report["validation"]["note"]
    custom = load(tmp_path, seed=1, validation_fraction=0.25)
    assert len(rows_of(custom, "validation")) == 50


def test_tiny_train_without_validation_still_splits(tmp_path):
    """10 rows, 2 classes: a 10 % split is one row, too few to stratify; it must still split, not crash."""
    write_csv(tmp_path / "train.csv", good_rows(10))
    write_csv(tmp_path / "test.csv", good_rows(4, 2))
    data = load(tmp_path)
    assert (len(data.splits["train"]), len(data.splits["validation"])) == (9, 1)
    assert sorted(rows_of(data, "train") + rows_of(data, "validation")) == sorted(good_rows(10))


def test_validation_aliases_are_recognised(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / "validation.csv").rename(tmp_path / "dev.csv")
    data = load(tmp_path)
    assert data.report["validation"]["rows"] == 32 and "note" not in data.report["validation"]


def test_missing_test_split_is_an_error(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / "test.csv").unlink()
    with pytest.raises(DataError, match=rf"{q(tmp_path)}: no test split found"):
        load(tmp_path)


def test_missing_train_split_and_bad_paths_are_errors(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / "train.csv").unlink()
    with pytest.raises(DataError, match="no train split"):
        load(tmp_path)
    with pytest.raises(DataError, match="no such directory"):
        load(tmp_path / "does-not-exist")
    with pytest.raises(DataError, match="must be a directory"):
        load(tmp_path / "test.csv")


def test_two_files_for_one_split_is_an_error(tmp_path):
    make_dataset(tmp_path)
    write_csv(tmp_path / "val.csv", good_rows(4))
    with pytest.raises(DataError, match="several files for split 'validation'"):
        load(tmp_path)


@pytest.mark.parametrize(("content", "message"), [("only\n", "at least 2 class names"), ("a\nb\na\n", "unique")])
def test_bad_labels_txt_is_an_error(tmp_path, content, message):
    make_dataset(tmp_path)
    (tmp_path / "labels.txt").write_text(content)
    with pytest.raises(DataError, match=rf"{q(tmp_path / 'labels.txt')}.*{message}"):
        load(tmp_path)


def test_subsampling_is_seeded_and_reported(tiny_dataset):
    a = load(tiny_dataset, max_train_samples=40, max_eval_samples=10)
    b = load(tiny_dataset, max_train_samples=40, max_eval_samples=10)
    assert [len(a.splits[s]) for s in ("train", "validation", "test")] == [40, 10, 10]
    assert rows_of(a, "train") == rows_of(b, "train") and rows_of(a, "test") == rows_of(b, "test")
    assert (a.report["train"]["rows"], a.report["train"]["sampled_from"]) == (40, 96)
    assert (a.report["test"]["rows"], a.report["test"]["sampled_from"]) == (10, 32)
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != load(tiny_dataset).fingerprint


# ---- a hub dataset (datasets.load_dataset is replaced: no network) ----------------------------------------------

def fake_hub(monkeypatch, label_feature):
    def table(rows):
        return datasets.Dataset.from_dict(
            {"text": [t for t, _ in rows], "label": [y for _, y in rows]},
            features=datasets.Features({"text": datasets.Value("string"), "label": label_feature}),
        )

    def fake_load_dataset(name, config=None, **kwargs):
        assert name == "someone/hub-data"
        return datasets.DatasetDict({"train": table([("a", 1), ("b", 2), ("c", 1), ("d", 2)]),
                                     "test": table([("e", 2), ("f", 1)])})

    monkeypatch.setattr("distilora.data.loading.datasets.load_dataset", fake_load_dataset)


def test_hub_dataset_with_class_names(monkeypatch):
    fake_hub(monkeypatch, datasets.ClassLabel(names=["zero", "one", "two"]))
    data = load_task_data(DataConfig(dataset="someone/hub-data", validation_fraction=0.5), seed=0)
    assert data.labels == ["zero", "one", "two"]
    assert rows_of(data, "test") == [("e", 2), ("f", 1)]


def test_hub_dataset_with_plain_integer_labels(monkeypatch):
    """Without declared class names, labels 1 and 2 are two classes named "1" and "2" (ids 0 and 1)."""
    fake_hub(monkeypatch, datasets.Value("int64"))
    data = load_task_data(DataConfig(dataset="someone/hub-data", validation_fraction=0.5), seed=0)
    assert data.labels == ["1", "2"]
    assert rows_of(data, "test") == [("e", 1), ("f", 0)]
    assert data.report["test"]["dropped"] == 0
