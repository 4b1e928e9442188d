"""Transfer texts (``--transfer-texts``): unlabelled texts the fine-tuned teacher labels for the distillation routes.

They add the teacher terms only (no CE), are cleaned against the evaluation splits and counted, are scored by the
teacher once (cached), are part of the distilled stages' fingerprints, and are refused in one line when unusable.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import synthetic_rows, write_csv

from distilora.cli import main
from distilora.config import DataConfig, DistillationConfig, TransferConfig
from distilora.data import load_task_data
from distilora.data.loading import DataError
from distilora.data.perturb import augment_transfer_texts
from distilora.data.transfer import load_transfer_texts
from distilora.training.losses import (
    CE,
    IGNORE_INDEX,
    KD,
    TEACHER_CLS,
    TEACHER_LAYER_CLS,
    TEACHER_LOGITS,
    DistillationObjective,
)

# ---- the objective on a batch of labelled and transfer rows ------------------------------------------------------


def _batch(seed: int = 0, rows: int = 6, depth: int = 2, hidden: int = 8):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, 2, generator=generator, requires_grad=True)
    states = [torch.randn(rows, 4, hidden, generator=generator) for _ in range(depth + 1)]
    teacher = {TEACHER_LOGITS: torch.randn(rows, 2, generator=generator),
               TEACHER_LAYER_CLS: torch.randn(rows, depth + 1, hidden, generator=generator)}
    teacher[TEACHER_CLS] = teacher[TEACHER_LAYER_CLS][:, -1]
    return SimpleNamespace(logits=logits, hidden_states=states), teacher


LABELS = torch.tensor([0, 1, 1, IGNORE_INDEX, IGNORE_INDEX, 0])
TRANSFER_ROWS = [3, 4]
OBJECTIVE = DistillationObjective(DistillationConfig(w_hidden=0.5), layer_map=[1, 2])


def test_the_ce_term_is_the_mean_over_the_labelled_rows_only():
    outputs, teacher = _batch()
    losses = OBJECTIVE(outputs, LABELS, teacher)
    labelled = LABELS != IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(outputs.logits[labelled], LABELS[labelled])
    assert torch.allclose(losses[CE.key], expected)
    (gradient,) = torch.autograd.grad(losses[CE.key], outputs.logits)
    assert torch.count_nonzero(gradient[TRANSFER_ROWS]) == 0, "a transfer row's logits get no CE gradient"


def test_a_transfer_rows_own_logits_leave_the_ce_as_it_is_and_its_teacher_logits_change_the_loss():
    outputs, teacher = _batch()
    before = OBJECTIVE(outputs, LABELS, teacher)
    moved = SimpleNamespace(logits=outputs.logits.detach().clone(), hidden_states=outputs.hidden_states)
    moved.logits[TRANSFER_ROWS[0]] += torch.tensor([5.0, -5.0])
    assert torch.equal(OBJECTIVE(moved, LABELS, teacher)[CE.key], before[CE.key])
    other_teacher = {key: value.clone() for key, value in teacher.items()}
    other_teacher[TEACHER_LOGITS][TRANSFER_ROWS[0]] += torch.tensor([3.0, -3.0])
    after = OBJECTIVE(outputs, LABELS, other_teacher)
    assert torch.equal(after[CE.key], before[CE.key])
    assert not torch.isclose(after[KD.key], before[KD.key]) and not torch.isclose(after["loss"], before["loss"])


def test_the_teacher_terms_weigh_transfer_rows_by_the_transfer_weight():
    outputs, teacher = _batch()
    plain = OBJECTIVE(outputs, LABELS, teacher)
    heavier = DistillationObjective(DistillationConfig(w_hidden=0.5), [1, 2], transfer_weight=3.0)(
        outputs, LABELS, teacher)
    assert torch.equal(heavier[CE.key], plain[CE.key]) and not torch.isclose(heavier[KD.key], plain[KD.key])
    all_labelled = LABELS.clamp(min=0)
    assert torch.isclose(OBJECTIVE(outputs, all_labelled, teacher)[KD.key], plain[KD.key]), \
        "at weight 1 a transfer row counts in the teacher terms as a labelled row does"


def test_a_batch_of_transfer_rows_only_has_no_ce_and_a_finite_loss():
    outputs, teacher = _batch()
    losses = OBJECTIVE(outputs, torch.full((6,), IGNORE_INDEX), teacher)
    assert losses[CE.key].item() == 0 and torch.isfinite(losses["loss"])
    (gradient,) = torch.autograd.grad(losses["loss"], outputs.logits)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0


# ---- reading and cleaning --------------------------------------------------------------------------------------

def _texts(dataset: Path, split: str) -> list[str]:
    return [line.split(",")[0] for line in (dataset / f"{split}.csv").read_text().splitlines()[1:]]


def test_transfer_texts_that_repeat_evaluation_train_or_each_other_are_removed_and_counted(tiny_dataset, tmp_path):
    validation, test, train = (_texts(tiny_dataset, split) for split in ("validation", "test", "train"))
    fresh = ["a fresh text about coffee", "another one, about the garden", "a third"]
    texts = [f"  {validation[0].upper()}  ", validation[1].replace(" ", "   "), test[0], train[0], "", "   ",
             fresh[0], fresh[0].title(), *fresh[1:], None]
    source = tmp_path / "transfer.csv"
    write_csv(source, [(text, "x") for text in texts], header=("tweet", "other"))
    data = load_task_data(DataConfig(dataset=str(tiny_dataset)))
    transfer = load_transfer_texts(TransferConfig(files=(str(source),), text_column="tweet"), data, seed=42)
    report = transfer.report
    assert transfer.texts == fresh
    assert (report.rows_read, report.blank, report.duplicates_of_evaluation, report.duplicates_of_train,
            report.duplicates_within, report.kept) == (len(texts), 3, 3, 1, 1, 3)
    sampled = load_transfer_texts(TransferConfig(files=(str(source),), text_column="tweet", max_texts=2), data, 42)
    assert len(sampled.texts) == 2 and sampled.report.over_max == 1 and sampled.fingerprint != transfer.fingerprint


def test_augment_adds_perturbed_copies_of_transfer_texts_and_changes_their_fingerprint(tiny_dataset, tmp_path):
    source = tmp_path / "transfer.txt"
    source.write_text("\n".join(f"some unlabelled text number {i} about gardens" for i in range(20)) + "\n")
    data = load_task_data(DataConfig(dataset=str(tiny_dataset)))
    transfer = load_transfer_texts(TransferConfig(files=(str(source),)), data, seed=42)
    clean, fingerprint = list(transfer.texts), transfer.fingerprint
    augment_transfer_texts(transfer, DataConfig(dataset=str(tiny_dataset), augment=("char",), augment_rate=0.5), 42)
    copies = transfer.texts[len(clean):]
    assert transfer.texts[:len(clean)] == clean and transfer.report.augmented == len(copies) == 10
    assert all(copy not in clean for copy in copies) and transfer.fingerprint != fingerprint
    assert "plus 10 perturbed copies (--augment)" in transfer.report.summary()
    unchanged = load_transfer_texts(TransferConfig(files=(str(source),)), data, seed=42)
    augment_transfer_texts(unchanged, DataConfig(dataset=str(tiny_dataset)), 42)
    assert unchanged.texts == clean and unchanged.fingerprint == fingerprint and unchanged.report.augmented == 0


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".jsonl", ".parquet"])
def test_transfer_texts_are_read_from_text_csv_jsonl_and_parquet_files(suffix, tiny_dataset, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["one unlabelled text", "NA", "a third, with a comma"]
    source = tmp_path / f"transfer{suffix}"
    if suffix == ".txt":
        source.write_text("\n".join(texts) + "\n")
    elif suffix == ".csv":
        write_csv(source, [(text,) for text in texts], header=("text",))
    elif suffix == ".jsonl":
        source.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    else:
        pq.write_table(pa.table({"text": texts}), source)
    data = load_task_data(DataConfig(dataset=str(tiny_dataset)))
    transfer = load_transfer_texts(TransferConfig(files=(str(source),)), data, seed=42)
    assert transfer.texts == texts and len(transfer.report.files[0].sha256) == 64


# ---- a run with transfer texts -----------------------------------------------------------------------------------

def _transfer_file(path: Path, n: int = 36, seed: int = 7) -> Path:
    """A few dozen unlabelled texts, two of them copies of validation texts and two blank lines."""
    validation = [text for text, _ in synthetic_rows(32, seed=1)]
    lines = [text for text, _ in synthetic_rows(n, seed=seed)] + ["", "  ", validation[0].upper(), validation[1]]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run_args(dataset: Path, teacher: Path, output: Path, *extra: str) -> list[str]:
    return ["-q", "run", "--dataset", str(dataset), "--teacher", str(teacher), "--output-dir", str(output),
            "--epochs", "1", "--max-length", "32", "--no-speed", "--precision", "fp32", *extra]


@pytest.fixture(scope="module")
def transfer_run(tmp_path_factory, tiny_dataset, tiny_teacher) -> Path:
    """``distilora run --routes odd --transfer-texts FILE`` on the tiny teacher."""
    root = tmp_path_factory.mktemp("transfer-run")
    source = _transfer_file(root / "transfer.txt")
    output = root / "run"
    assert main(_run_args(tiny_dataset, tiny_teacher, output, "--routes", "odd", "--transfer-texts",
                          str(source))) == 0
    return output


def test_a_run_with_transfer_texts_records_their_counts_in_results_the_report_and_the_model_card(transfer_run):
    results = json.loads((transfer_run / "results.json").read_text())
    transfer = results["transfer"]
    assert (transfer["rows_read"], transfer["blank"], transfer["duplicates_of_evaluation"], transfer["kept"]) == \
        (40, 2, 2, transfer["rows_read"] - 4)
    assert transfer["models"] == ["odd"] and transfer["weight"] == 1.0
    assert transfer["files"][0]["path"].endswith("transfer.txt") and len(transfer["files"][0]["sha256"]) == 64
    steps = {name: max(entry.get("step", 0) for entry in results["models"][name]["history"])
             for name in ("teacher", "odd")}
    assert steps["odd"] > steps["teacher"], "the student trained on the labelled rows and the transfer rows"
    method = (transfer_run / "report.md").read_text().split("## Method")[1]
    assert f"Transfer texts: {transfer['kept']} of 40 unlabelled texts from transfer.txt" in method
    assert "2 duplicates of validation / test" in method and "trained on by odd" in method
    assert "transfer texts (no labels)" in (transfer_run / "odd" / "README.md").read_text()
    assert "transfer texts" not in (transfer_run / "teacher" / "README.md").read_text()


def test_results_without_transfer_texts_still_load_and_keep_no_transfer_key(transfer_run):
    from distilora.results import RunResults

    data = json.loads((transfer_run / "results.json").read_text())
    del data["transfer"]
    results = RunResults.from_json(data)
    assert results.transfer is None and results.to_json() == data


def test_the_teacher_pass_on_transfer_texts_is_cached_and_not_computed_again(transfer_run, tiny_dataset,
                                                                             tiny_teacher, tmp_path, monkeypatch):
    from distilora.training import teacher_targets

    output = tmp_path / "run"
    shutil.copytree(transfer_run, output)
    caches = {path.name: path.stat().st_mtime_ns for path in (output / ".cache").iterdir()}
    assert len(caches) == 2, "the training split's targets and the transfer texts' targets"
    passes = []
    real = teacher_targets.compute_teacher_targets
    monkeypatch.setattr(teacher_targets, "compute_teacher_targets",
                        lambda *args, **kwargs: passes.append(1) or real(*args, **kwargs))
    source = transfer_run.parent / "transfer.txt"
    assert main(_run_args(tiny_dataset, tiny_teacher, output, "--routes", "odd,even", "--no-report",
                          "--transfer-texts", str(source))) == 0
    results = json.loads((output / "results.json").read_text())
    assert results["reused_stages"] == ["teacher", "odd"] and results["transfer"]["models"] == ["odd", "even"]
    assert passes == [], "even trained on the cached teacher targets"
    assert {path.name: path.stat().st_mtime_ns for path in (output / ".cache").iterdir()} == caches


# ---- the stage fingerprint ---------------------------------------------------------------------------------------

def _fingerprints(dataset: Path, teacher: Path, output: Path, source: Path | None) -> dict[str, str]:
    from conftest import tiny_experiment_config

    from distilora.experiment import RunContext

    config = tiny_experiment_config(dataset, teacher, output, routes=("odd", "lora"))
    if source is not None:
        config.transfer = TransferConfig(files=(str(source),))
    context = RunContext(config, check_writable=False)
    context.teacher.identity = ("teacher-fingerprint", "teacher-weights")
    return {route.name: route.fingerprint(context, 42) for route in context.routes}


def test_the_distilled_stages_fingerprint_changes_with_the_transfer_files_content(tiny_dataset, tiny_teacher,
                                                                                  tmp_path):
    output = tmp_path / "run"
    without = _fingerprints(tiny_dataset, tiny_teacher, output, None)
    source = _transfer_file(tmp_path / "transfer.txt")
    first = _fingerprints(tiny_dataset, tiny_teacher, output, source)
    again = _fingerprints(tiny_dataset, tiny_teacher, output, source)
    _transfer_file(source, seed=8)
    changed = _fingerprints(tiny_dataset, tiny_teacher, output, source)
    assert first == again
    assert len({without["odd"], first["odd"], changed["odd"]}) == 3
    assert without["lora"] == first["lora"] == changed["lora"] and without["teacher"] == changed["teacher"], \
        "routes that do not distil ignore the transfer texts"


def test_a_trial_refuses_a_context_built_for_other_transfer_texts(tiny_dataset, tiny_teacher, tmp_path):
    from conftest import tiny_experiment_config

    from distilora.experiment import RunContext, train_route

    config = tiny_experiment_config(tiny_dataset, tiny_teacher, tmp_path / "run", routes=("odd",))
    context = RunContext(config, check_writable=False)
    other = tiny_experiment_config(tiny_dataset, tiny_teacher, tmp_path / "run", routes=("odd",))
    other.transfer = TransferConfig(files=(str(_transfer_file(tmp_path / "transfer.txt")),))
    with pytest.raises(ValueError, match="the context was built for another transfer than the config's"):
        train_route(other, "odd", context=context)


# ---- bad input: one line, exit status 2, nothing written ---------------------------------------------------------

def _bad_transfer(kind: str, root: Path, dataset: Path) -> tuple[Path, list[str], str]:
    """A transfer file of ``kind``, extra flags, and what the error line must say."""
    if kind == "missing":
        return root / "nowhere.txt", [], "nowhere.txt: no such file"
    if kind == "unreadable text":
        path = root / "bytes.txt"
        path.write_bytes(b"fine\n\xff\xfe not UTF-8\n")
        return path, [], "bytes.txt: could not be read as UTF-8 text"
    if kind == "unreadable csv":
        path = root / "bytes.csv"
        path.write_bytes(b"text\nfine\n\xff\xfe not UTF-8\n")
        return path, [], "bytes.csv: could not be read as CSV"
    if kind == "blank":
        path = root / "blank.txt"
        path.write_text("\n   \n\t\n")
        return path, [], "no transfer texts left after cleaning (3 blank)"
    if kind == "only evaluation texts":
        path = root / "copies.txt"
        path.write_text("\n".join(_texts(dataset, "test")[:3]) + "\n")
        return path, [], "no transfer texts left after cleaning (3 duplicates of validation / test)"
    if kind == "no text column":
        path = root / "tweets.csv"
        write_csv(path, [("some tweet",)], header=("tweet",))
        return path, [], "tweets.csv: no column 'text' (found ['tweet']); name the column of the texts with " \
                         "--transfer-text-column"
    path = _transfer_file(root / "transfer.txt")
    return path, ["--routes", "lora,tfidf"], ("--transfer-texts: none of the selected routes (teacher, lora, tfidf) "
                                              "distils from the teacher")


@pytest.mark.parametrize("kind", ["missing", "unreadable text", "unreadable csv", "blank", "only evaluation texts",
                                  "no text column", "no distillation route"])
def test_an_unusable_transfer_input_is_refused_in_one_line_before_anything_is_written(kind, tiny_dataset,
                                                                                     tiny_teacher, tmp_path, capsys):
    source, extra, message = _bad_transfer(kind, tmp_path, tiny_dataset)
    output = tmp_path / "run"
    code = main(_run_args(tiny_dataset, tiny_teacher, output, "--routes", "odd", *extra,
                          "--transfer-texts", str(source)))
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("distilora run: error: ") and message in lines[0], lines
    assert not output.exists(), "nothing may be written before the transfer texts are checked"


def test_an_unknown_transfer_file_format_names_the_formats(tiny_dataset, tmp_path):
    source = tmp_path / "texts.docx"
    source.write_text("x")
    data = load_task_data(DataConfig(dataset=str(tiny_dataset)))
    with pytest.raises(DataError, match=r"texts.docx: transfer texts must be \.txt \(one a line\)"):
        load_transfer_texts(TransferConfig(files=(str(source),)), data, seed=42)
