"""``train_route``: one route trained with other settings and scored on validation, as a tuner's trial: it reuses the
run's teacher, writes only into its work directory, never reads the test split, and names an unknown setting."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from conftest import FOUR_ROUTES, tiny_experiment_config

from distilora.experiment import EvaluationCallback, RunContext, TrainedModel, train_route


class Unreadable:
    """Stands in for the test split: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was read ({name})")

    def __getitem__(self, key):
        raise AssertionError(f"the test split was read ({key!r})")

    def __len__(self):
        raise AssertionError("the test split was read (len)")

    def __iter__(self):
        raise AssertionError("the test split was read (iter)")


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


@pytest.fixture
def config(run_copy, tiny_dataset, tiny_teacher):
    return tiny_experiment_config(tiny_dataset, tiny_teacher, run_copy, routes=FOUR_ROUTES)


def test_a_trial_scores_the_route_on_validation_and_writes_only_into_its_work_dir(config, run_copy, tmp_path):
    before = snapshot(run_copy)
    work = tmp_path / "work"
    trained = train_route(config, "odd", {"train.learning_rate": 1e-4}, work_dir=work)
    assert isinstance(trained, TrainedModel) and trained.route == "odd"
    passes = [entry for entry in trained.history if "eval_macro_f1" in entry]
    assert passes, "the Trainer validated during training"
    best = max(passes, key=lambda entry: entry["eval_macro_f1"])
    assert trained.validation_macro_f1 == best["eval_macro_f1"] and 0 <= trained.validation_macro_f1 <= 1
    assert trained.validation_loss == best["eval_loss"] and math.isfinite(trained.validation_loss)
    assert trained.best_epoch == best["epoch"] and trained.train_seconds > 0
    assert trained.training.learning_rate == 1e-4 == trained.config.student_training.learning_rate
    assert config.student_training.learning_rate == 1e-3, "the caller's config is not changed"
    assert trained.overrides == {"student_training.learning_rate": 1e-4}
    assert trained.directory is None and trained.model.config.num_hidden_layers == 2
    assert snapshot(run_copy) == before, "nothing in the run directory was written"
    assert not (work / "teacher").exists(), "the run's own teacher was reused"
    assert not list(work.rglob("checkpoint-*")), "the Trainer's checkpoints are removed"


def test_a_trial_never_reads_the_test_split_and_reports_each_validation_pass(config, tmp_path):
    context = RunContext(config, check_writable=False)
    reference = train_route(config, "odd", {"distil.temperature": 4.0}, context=context)
    context.data.splits["test"] = Unreadable()
    context.encoded["test"] = Unreadable()
    reported: list[dict[str, float]] = []
    trained = train_route(config, "odd", {"distil.temperature": 4.0}, context=context, work_dir=tmp_path / "work",
                          callbacks=[EvaluationCallback(reported.append)], save=True)
    assert trained.config.distillation.temperature == 4.0
    assert trained.validation_macro_f1 == reference.validation_macro_f1
    assert trained.validation_loss == pytest.approx(reference.validation_loss)
    assert [entry["eval_macro_f1"] for entry in reported] == [
        entry["eval_macro_f1"] for entry in trained.history if "eval_macro_f1" in entry]
    assert trained.directory == tmp_path / "work" / "odd"
    assert (trained.directory / "model.safetensors").is_file() and (trained.directory / "tokenizer.json").is_file()


def test_a_callback_that_stops_the_trial_leaves_no_checkpoints(config, tmp_path):
    class Pruned(Exception):
        pass

    def prune(metrics: dict[str, float]) -> None:
        raise Pruned(metrics["eval_macro_f1"])

    work = tmp_path / "work"
    with pytest.raises(Pruned):
        train_route(config, "lora", {"lora.r": 4, "train.epochs": 1}, work_dir=work,
                    callbacks=[EvaluationCallback(prune)])
    assert not list(work.rglob("checkpoint-*"))


@pytest.mark.parametrize(("overrides", "named"), [
    ({"train.learnig_rate": 1e-4}, "'train.learnig_rate': TrainConfig has no field 'learnig_rate'"),
    ({"distil.temprature": 3}, "'distil.temprature': DistillationConfig has no field 'temprature'"),
    ({"data.max_length": 64}, "'data.max_length': unknown, or not a route setting"),
    ({"train.learning_rate": -1.0}, "'train.learning_rate': learning_rate must be > 0"),
])
def test_an_unknown_or_refused_setting_is_a_value_error_naming_it(config, overrides, named):
    context = RunContext(config, check_writable=False)
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        train_route(config, "odd", overrides, context=context)


def test_a_text_baseline_takes_its_own_settings_and_refuses_training_ones(config):
    context = RunContext(config, check_writable=False)
    trained = train_route(config, "tfidf", {"tfidf.c_grid": (1.0,)}, context=context)
    assert trained.history == [] and trained.best_epoch is None and trained.training is None
    assert 0 <= trained.validation_macro_f1 <= 1 and math.isfinite(trained.validation_loss)
    with pytest.raises(ValueError, match="'train.epochs': route 'tfidf' is fitted without the Trainer"):
        train_route(config, "tfidf", {"train.epochs": 1}, context=context)


def test_without_the_runs_teacher_a_trial_trains_one_in_its_work_dir_once(tiny_dataset, tiny_teacher, tmp_path):
    run = tmp_path / "no-run-yet"
    config = tiny_experiment_config(tiny_dataset, tiny_teacher, run)
    context = RunContext(config, check_writable=False)
    first = train_route(config, "odd-no-kd", context=context, work_dir=tmp_path / "first")
    assert (tmp_path / "first" / "teacher" / "manifest.json").is_file()
    second = train_route(config, "odd", context=context, work_dir=tmp_path / "second")
    assert not (tmp_path / "second" / "teacher").exists(), "the context keeps the teacher for the next trials"
    assert first.route == "odd-no-kd" and second.route == "odd"
    assert not run.exists(), "nothing is written where the run would be"
