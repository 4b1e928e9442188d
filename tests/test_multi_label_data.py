"""Multi-label datasets (one 0/1 column per label, Jigsaw's layout) are read, cleaned and counted like single-label
ones, and the objectives and baselines train them with sigmoids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distilora.config import DataConfig, DistillationConfig, TfidfConfig
from distilora.data.loading import DataError, load_task_data
from distilora.data.multi_label import JIGSAW_LABELS
from distilora.models.text_baselines import TextBaseline, fit_majority, fit_tfidf
from distilora.training.losses import IGNORE_INDEX, distillation_loss, row_weights, softened_divergence
from tests.conftest import MULTI_LABELS, SHARED_DATASETS, make_multi_label_dataset, write_csv

MLMA = SHARED_DATASETS / "mlma_en"


@pytest.mark.skipif(not MLMA.exists(), reason="needs ../shared/datasets/mlma_en")
def test_mlma_en_is_read_as_six_labels_with_positive_counts_per_split():
    data = load_task_data(DataConfig(dataset=str(MLMA)))
    assert data.multi_label
    assert data.labels == ["abusive", "disrespectful", "fearful", "hateful", "normal", "offensive"]
    assert data.label_counts("train") == [538, 622, 450, 1023, 1087, 3215]  # the dataset README's table
    assert data.label_counts("test") == [64, 78, 57, 125, 135, 401]
    assert len(data.splits["train"]) == 4516 and data.report["train"]["dropped"] == 0


def test_labels_txt_naming_columns_makes_a_dataset_multi_label(tmp_path):
    data = load_task_data(DataConfig(dataset=str(make_multi_label_dataset(tmp_path))))
    assert data.multi_label and data.labels == list(MULTI_LABELS)
    first = data.splits["train"][0]
    assert len(first["label"]) == 3 and set(first["label"]) <= {0, 1}


def test_a_single_label_dataset_is_unchanged(tiny_dataset):
    data = load_task_data(DataConfig(dataset=str(tiny_dataset)))
    assert not data.multi_label and isinstance(data.splits["train"][0]["label"], int)


def _jigsaw(root, rows_per_split=40):
    header = ("id", "comment_text", *JIGSAW_LABELS)
    for split, seed in (("train", 0), ("validation", 1), ("test", 2)):
        rng = np.random.default_rng(seed)
        rows = [(f"{split}{i}", f"comment {i} words", *rng.integers(0, 2, len(JIGSAW_LABELS)).tolist())
                for i in range(rows_per_split)]
        write_csv(root / f"{split}.csv", rows, header=header)
    return root


def test_jigsaw_columns_are_recognised_by_name_with_only_the_text_column_given(tmp_path):
    data = load_task_data(DataConfig(dataset=str(_jigsaw(tmp_path)), text_column="comment_text"))
    assert data.multi_label and data.labels == list(JIGSAW_LABELS)


def test_label_columns_pick_some_columns_and_accept_true_false_and_decimal_spellings(tmp_path):
    rows = [("a b", "True", "0.0", "x"), ("c d", "false", "1.0", "y"), ("e f", "1", "0", "z"), ("g h", "0", "1", "w")]
    for split in ("train", "validation", "test"):
        write_csv(tmp_path / f"{split}.csv", rows, header=("text", "rude", "mean", "other"))
    data = load_task_data(DataConfig(dataset=str(tmp_path), label_columns=("rude", "mean")))
    assert data.labels == ["rude", "mean"]
    assert data.splits["train"]["label"] == [[1, 0], [0, 1], [1, 0], [0, 1]]


def test_a_blank_label_cell_drops_the_row_and_counts_it(tmp_path):
    make_multi_label_dataset(tmp_path)
    lines = (tmp_path / "train.csv").read_text().splitlines()
    lines[1] = ",".join(lines[1].split(",")[:-1] + [""])
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    data = load_task_data(DataConfig(dataset=str(tmp_path)))
    assert data.report["train"]["reasons"] == {"missing_label": 1}
    assert data.report["train"]["rows"] == data.report["train"]["rows_read"] - 1


def test_a_label_value_other_than_zero_or_one_is_an_error_naming_file_line_and_column(tmp_path):
    make_multi_label_dataset(tmp_path)
    lines = (tmp_path / "test.csv").read_text().splitlines()
    lines[3] = ",".join(lines[3].split(",")[:-1] + ["2"])
    (tmp_path / "test.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"test\.csv, line 4: column 'obscene' holds '2'"):
        load_task_data(DataConfig(dataset=str(tmp_path)))


def test_a_label_never_on_in_train_is_refused_by_name(tmp_path):
    make_multi_label_dataset(tmp_path)
    lines = (tmp_path / "train.csv").read_text().splitlines()
    lines = [lines[0]] + [",".join(line.split(",")[:-2] + ["0", line.split(",")[-1]]) for line in lines[1:]]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"\['threat'\] are never on in the train split"):
        load_task_data(DataConfig(dataset=str(tmp_path)))


def test_label_columns_the_file_lacks_are_named(tmp_path):
    make_multi_label_dataset(tmp_path)
    with pytest.raises(DataError, match=r"--label-columns names \['rude'\]"):
        load_task_data(DataConfig(dataset=str(tmp_path), label_columns=("insult", "rude")))


def test_a_test_split_without_a_label_is_warned_about(tmp_path):
    make_multi_label_dataset(tmp_path)
    lines = (tmp_path / "test.csv").read_text().splitlines()
    lines = [lines[0]] + [",".join(line.split(",")[:-1] + ["0"]) for line in lines[1:]]
    (tmp_path / "test.csv").write_text("\n".join(lines) + "\n")
    data = load_task_data(DataConfig(dataset=str(tmp_path)))
    assert "no items with label 'obscene'" in data.report["test"]["warnings"][0]


def test_the_bernoulli_kl_is_the_sum_over_labels_of_each_labels_two_outcome_kl():
    student, teacher = torch.tensor([[0.3, -1.2, 2.0]]), torch.tensor([[1.0, 0.5, -0.7]])
    temperature = 2.0
    expected = 0.0
    for s, t in zip(student[0] / temperature, teacher[0] / temperature, strict=True):
        p, q = torch.sigmoid(t), torch.sigmoid(s)
        expected += float(p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q)))
    got = softened_divergence(student, teacher, temperature, multi_label=True)
    assert float(got[0]) == pytest.approx(expected, rel=1e-5)
    assert float(softened_divergence(teacher, teacher, temperature, multi_label=True)[0]) == pytest.approx(0, abs=1e-6)


def test_multi_label_distillation_uses_bce_with_pos_weight_and_skips_transfer_rows():
    logits = torch.tensor([[0.2, -0.4], [1.5, 0.3], [0.0, 0.0]])
    labels = torch.tensor([[1, 0], [0, 1], [IGNORE_INDEX, IGNORE_INDEX]])
    pos_weight = torch.tensor([3.0, 0.5])
    cls = torch.randn(3, 4)
    losses = distillation_loss(logits, logits + 0.1, labels, cls, cls, DistillationConfig(), pos_weight,
                               row_weights(labels, 1.0))
    expected = F.binary_cross_entropy_with_logits(logits[:2], labels[:2].float(), pos_weight=pos_weight)
    assert float(losses["ce"]) == pytest.approx(float(expected), rel=1e-5)
    assert row_weights(labels, 0.25).tolist() == [1.0, 1.0, 0.25]
    only_transfer = distillation_loss(logits[2:], logits[2:], labels[2:], cls[2:], cls[2:], DistillationConfig())
    assert float(only_transfer["ce"]) == 0.0


def test_tfidf_fits_one_vs_rest_and_majority_the_per_label_prior(tmp_path, multi_label_dataset):
    data = load_task_data(DataConfig(dataset=str(multi_label_dataset)))
    train = (data.splits["train"]["text"], data.splits["train"]["label"])
    validation = (data.splits["validation"]["text"], data.splits["validation"]["label"])
    model, search = fit_tfidf(data.labels, train, validation, TfidfConfig(c_grid=(1.0, 10.0)))
    model.save(tmp_path / "tfidf")
    loaded = TextBaseline.load(tmp_path / "tfidf")
    assert loaded.multi_label and loaded.weights["coef"].shape[0] == 3
    decided = (loaded.logits(validation[0]) > 0).astype(int)
    majority = fit_majority(data.labels, train[1])
    always_prior = (majority.logits(validation[0]) > 0).astype(int)
    gold = np.asarray(validation[1])
    assert (decided == gold).mean() > (always_prior == gold).mean() + 0.15  # each label's words decide it
    prior = 1 / (1 + np.exp(-majority.logits(["anything"])[0]))
    assert prior == pytest.approx(np.asarray(train[1]).mean(axis=0), abs=1e-6)
