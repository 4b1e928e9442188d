"""The tuner (distilora.tune): search spaces and space files, studies (default first, seeded, resumed, shared by
processes, killed), the budget, pruning through a real Trainer, the best epoch, and the kept model."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from distilora.artifacts import write_manifest
from distilora.config import ExperimentConfig, TfidfConfig, TrainConfig, TuneConfig
from distilora.results import TunedRoute
from distilora.routes.space import ADAPTER_LEARNING_RATES, ALL_ATTENTION, ALL_LINEAR, QUERY_VALUE
from distilora.tune import (
    Budget,
    KeptModels,
    OverBudget,
    PruningCallback,
    RouteObjective,
    SearchSpace,
    SpaceError,
    TuneError,
    apply_space_file,
    best_trial,
    distillation_space,
    fail_orphaned_trials,
    lora_space,
    open_storage,
    open_study,
    tfidf_space,
    trainer_space,
    tune_route,
)
from distilora.tune.importance import parameter_importances
from distilora.tune.records import DEFAULT_ATTR, MACRO_F1_ATTR, OVER_BUDGET_ATTR, WORKER_ATTR
from distilora.tune.study import worker_identity
from tests.tune_fakes import (
    FAST,
    FakeRunner,
    fake_defaults,
    fake_history,
    fake_space,
    open_fake_study,
    save_fake_model,
)

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "tune_fakes.py"


def worker_env() -> dict[str, str]:
    paths = [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}


def tune(study: optuna.Study, runner: FakeRunner, trials: int, route: str = "fake", **options):
    return tune_route(study, route, fake_space(), runner, Budget(trials), progress=False, collect_garbage=False,
                      **options)


def journal(tmp_path: Path) -> str:
    return str(tmp_path / "journal.log")


def route_spaces(config: ExperimentConfig) -> dict[str, tuple[SearchSpace, dict]]:
    """Each kind of route's space as the routes will declare it, with its default settings of today."""
    sections = {"distil": config.distillation, "lora": config.lora, "tfidf": config.tfidf}
    distilled = trainer_space() + distillation_space()
    lora = trainer_space(ADAPTER_LEARNING_RATES) + lora_space()
    return {
        "odd": (distilled, distilled.defaults({**sections, "train": config.student_training})),
        "odd-no-kd": (trainer_space(), trainer_space().defaults({"train": config.student_training})),
        "lora": (lora, lora.defaults({**sections, "train": config.lora_training})),
        "tfidf": (tfidf_space(), tfidf_space().defaults(sections)),
    }


# ---- search spaces -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["cpu", "gpu"])
def test_the_default_spaces_contain_every_routes_default_settings(preset):
    config = ExperimentConfig()
    config.apply_preset(preset)
    for route, (space, defaults) in route_spaces(config).items():
        assert space.contains(defaults), (route, space.outside(defaults))
    seeds = {"train": TrainConfig(epochs=5, learning_rate=5e-5, batch_size=64), "distil": config.distillation,
             "lora": config.lora}
    assert (trainer_space() + distillation_space() + lora_space()).contains(
        (trainer_space() + distillation_space() + lora_space()).defaults(seeds))
    assert config.lora.r == 16 and config.lora.alpha == 32 and config.distillation.temperature == 2


def test_a_setting_outside_the_space_is_named():
    space = trainer_space() + lora_space()
    sections = {"train": TrainConfig(learning_rate=1e-3, batch_size=48), "lora": ExperimentConfig().lora}
    settings = space.defaults(sections)
    assert space.outside(settings) == ["train.learning_rate=0.001 lies outside [1e-05, 0.0003]",
                                       "train.batch_size=48 is not one of [16, 32, 64]"]


def test_a_trial_of_the_defaults_gives_back_the_default_settings():
    for route, (space, defaults) in route_spaces(ExperimentConfig()).items():
        if route == "tfidf":  # the default is a grid of C; the default model is the one C it chose
            defaults = {**defaults, "tfidf.c_grid": (1.0,)}
        params = space.trial_params(defaults)
        assert all(isinstance(v, int | float | str) for v in params.values()), params
        assert space.settings_of(params) == defaults, route
    lora = route_spaces(ExperimentConfig())["lora"][0]
    params = lora.trial_params(route_spaces(ExperimentConfig())["lora"][1])
    assert params["lora.alpha_per_r"] == 2 and params["lora.target_modules"] == "query,value"


def test_a_tfidf_grid_cannot_be_enqueued_as_one_trial():
    space = tfidf_space()
    with pytest.raises(SpaceError, match=r"tfidf.c_grid=.* holds 6 values: give the one the default chose"):
        space.trial_params(space.defaults({"tfidf": TfidfConfig()}))


def test_the_lora_target_module_choices_exist_in_a_bert_model():
    from transformers import BertConfig, BertForSequenceClassification

    from distilora.models.architectures import lora_target_modules

    model = BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=16))
    adapted = {}
    for choice in (QUERY_VALUE, ALL_ATTENTION, ALL_LINEAR):
        targets = lora_target_modules(model, choice)
        adapted[choice] = {n for n, _ in model.named_modules() if any(n.endswith("." + t) for t in targets)}
    assert len(adapted[QUERY_VALUE]) == 2 and len(adapted[ALL_ATTENTION]) == 4 and len(adapted[ALL_LINEAR]) == 6
    assert not any("pooler" in n or "classifier" in n for n in adapted[ALL_LINEAR])


def test_a_space_file_replaces_ranges_in_toml_and_json(tmp_path):
    spaces = {"odd": trainer_space() + distillation_space(), "lora": trainer_space() + lora_space()}
    toml = tmp_path / "space.toml"
    toml.write_text('[odd]\n"train.learning_rate" = { low = 2e-5, high = 1e-4 }\n'
                    '[odd.distil.temperature]\nchoices = [2, 4]\n'
                    '[lora]\n"lora.target_modules" = { choices = ["query,value", ["query", "key", "value"]] }\n')
    replaced = apply_space_file(toml, spaces)
    assert replaced["odd"].param("train.learning_rate").describe() == "train.learning_rate in [2e-05, 0.0001] (log)"
    assert replaced["odd"].param("distil.temperature").choices == (2.0, 4.0)
    assert replaced["lora"].param("lora.target_modules").choices == (("query", "value"), ("query", "key", "value"))
    assert replaced["odd"].param("train.epochs") == spaces["odd"].param("train.epochs")
    as_json = tmp_path / "space.json"
    as_json.write_text(json.dumps({"odd": {"train.epochs": {"low": 3, "high": 4}}}))
    assert apply_space_file(as_json, spaces)["odd"].param("train.epochs").describe() == "train.epochs in {3..4}"


@pytest.mark.parametrize(("content", "message"), [
    ('[odd]\n"lora.r" = { choices = [4] }',
     "route odd has no parameter lora.r (its parameters: train.learning_rate, "),
    ('[odd]\n"train.learning_rate" = { low = 1e-4, high = 1e-5 }',
     "route odd, parameter train.learning_rate: empty range: low 0.0001 must be < high 1e-05"),
    ('[odd]\n"distil.temperature" = { choices = [] }', "route odd, parameter distil.temperature: empty choices"),
    ('[odd]\n"train.epochs" = { low = 2.5, high = 6 }',
     "route odd, parameter train.epochs: low and high must be integers, got 2.5 and 6"),
    ('[odd]\n"train.learning_rate" = { low = "small", high = 1e-4 }',
     "route odd, parameter train.learning_rate: low and high must be numbers"),
    ('[odd]\n"distil.temperature" = { choices = ["hot"] }',
     "route odd, parameter distil.temperature: choice 'hot' is not of the kind of 1.0"),
    ('[odd]\n"train.learning_rate" = { low = 1e-5, hihg = 1e-4 }',
     "route odd, parameter train.learning_rate: unknown key(s) hihg"),
    ('[majority]\n"train.epochs" = { low = 2, high = 3 }', "route majority is not tuned here (routes: odd)"),
    ('odd = 3', "give a table per route"),
    ('[odd\n', "not valid TOML"),
])
def test_a_bad_space_file_fails_in_one_line_naming_the_route_and_parameter(tmp_path, content, message):
    path = tmp_path / "space.toml"
    path.write_text(content)
    with pytest.raises(SpaceError) as raised:
        apply_space_file(path, {"odd": trainer_space() + distillation_space()})
    assert message in str(raised.value) and str(path) in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_default_outside_a_narrowed_space_is_refused_by_name(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"fake": {"train.learning_rate": {"low": 1e-4, "high": 3e-4}}}))
    space = apply_space_file(path, {"fake": fake_space()})["fake"]
    with pytest.raises(TuneError, match=r"^route fake: the default settings lie outside its search space: "
                                        r"train.learning_rate=5e-05 lies outside \[0.0001, 0.0003\]$"):
        open_study(open_storage(journal(tmp_path), tmp_path), "fake", space, fake_defaults(), TuneConfig(**FAST))
    assert not (tmp_path / "journal.log").exists() or "fake" not in (tmp_path / "journal.log").read_text()


# ---- studies -------------------------------------------------------------------------------------------------------

def test_a_study_starts_with_the_default_and_finds_at_least_its_value(tmp_path):
    study, config = open_fake_study(journal(tmp_path), tmp_path, trials=10)
    runner = FakeRunner()
    result = tune(study, runner, config.trials)
    first = study.trials[0]
    assert first.user_attrs[DEFAULT_ATTR] and fake_space().settings_of(first.params) == fake_defaults()
    assert runner.calls[0] == fake_defaults()
    assert result.default_number == 0 and result.trials == 10 == len(runner.calls)
    assert result.best_macro_f1 > result.default_macro_f1
    assert result.best_settings == fake_space().settings_of(best_trial(study).params)


def test_a_trial_is_valued_at_its_best_epoch_not_its_last(tmp_path):
    study, config = open_fake_study(journal(tmp_path), tmp_path, trials=1)
    tune(study, FakeRunner(), 1)
    trial = study.trials[0]
    history = fake_history(fake_defaults())
    assert len(history) == 5 and history[-1].macro_f1 < history[3].macro_f1  # the fake peaks at epoch 4 of 5
    assert trial.user_attrs["best_epoch"] == 4.0 and trial.user_attrs[MACRO_F1_ATTR] == history[3].macro_f1
    assert trial.value == pytest.approx(history[3].macro_f1 - 1e-6 * history[3].loss)
    assert [h["macro_f1"] for h in trial.user_attrs["history"]] == [h.macro_f1 for h in history]
    assert trial.user_attrs["settings"] == fake_defaults()


def test_the_same_seed_gives_the_same_trials_and_another_seed_others(tmp_path):
    def params(name: str, seed: int) -> list[dict]:
        study, _ = open_fake_study(journal(tmp_path), tmp_path, trials=6, seed=seed, name=name)
        tune(study, FakeRunner(), 6, route=name)
        return [t.params for t in study.trials]

    first = params("a", 7)
    assert first == params("b", 7)
    assert first[1:] != params("c", 8)[1:]


def test_pruned_trials_stop_early_and_count_against_the_budget(tmp_path):
    study, config = open_fake_study(journal(tmp_path), tmp_path, trials=12)
    runner = FakeRunner()
    result = tune(study, runner, 12)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned and result.pruned == len(pruned) and result.complete + result.pruned + result.failed == 12
    for trial in pruned:
        assert len(trial.user_attrs["history"]) < trial.params["train.epochs"], "a pruned trial stops training"
        assert len(trial.user_attrs["history"]) == len(trial.intermediate_values) >= 2  # after the warm-up pass


def test_the_record_keeps_every_trial_and_the_importance_of_every_searched_parameter(tmp_path):
    study, _ = open_fake_study(journal(tmp_path), tmp_path, trials=12)
    record = tune(study, FakeRunner(), 12).record
    states = [point.state for point in record.history]
    assert [point.number for point in record.history] == list(range(12)) and record.history[0].default
    assert states.count("pruned") == record.pruned and states.count("complete") == record.complete
    assert all(point.macro_f1 is not None for point in record.history)
    assert set(record.importances) == set(study.trials[0].params) and record.importance_note is None
    assert sum(record.importances.values()) == pytest.approx(1.0, abs=1e-3)
    assert TunedRoute.from_json(record.to_json()) == record


def test_the_parameter_that_decides_the_value_is_the_most_important():
    study = optuna.create_study(direction="maximize")
    distributions = {"decides": FloatDistribution(0.0, 1.0), "irrelevant": FloatDistribution(0.0, 1.0)}
    generator = np.random.default_rng(0)
    for decides, irrelevant in generator.random((20, 2)):
        macro_f1 = 0.5 + 0.4 * decides
        study.add_trial(optuna.trial.create_trial(
            params={"decides": decides, "irrelevant": irrelevant}, distributions=distributions, value=macro_f1,
            user_attrs={MACRO_F1_ATTR: macro_f1}))
    importances = parameter_importances(study)
    assert importances.values["decides"] > 0.9 > importances.values["irrelevant"]
    assert parameter_importances(study) == importances  # seeded


def test_importances_need_two_finished_trials_and_say_so(tmp_path):
    study, _ = open_fake_study(journal(tmp_path), tmp_path, trials=1)
    record = tune(study, FakeRunner(), 1).record
    assert record.importances == {} and "at least 2" in record.importance_note


def test_a_resumed_study_keeps_its_trials_and_runs_only_the_remaining_ones(tmp_path):
    study, _ = open_fake_study(journal(tmp_path), tmp_path, trials=8)
    with pytest.raises(KeyboardInterrupt):
        tune(study, FakeRunner(interrupt_on_call=4), 8)
    before = [(t.number, t.state, t.params) for t in study.trials]
    assert all(s in (TrialState.COMPLETE, TrialState.PRUNED) for _, s, _ in before[:3])
    assert len(before) == 4 and before[3][1] == TrialState.FAIL

    resumed, _ = open_fake_study(journal(tmp_path), tmp_path, trials=8)
    runner = FakeRunner()
    result = tune(resumed, runner, 8)
    assert len(runner.calls) == 4 and result.trials == 8
    assert [(t.number, t.state, t.params) for t in resumed.trials[:4]] == before
    assert sum(bool(t.user_attrs.get(DEFAULT_ATTR)) for t in resumed.trials) == 1
    assert fake_defaults() not in runner.calls


def test_a_study_resumed_with_another_space_is_refused(tmp_path):
    open_fake_study(journal(tmp_path), tmp_path, trials=2)
    narrower = SearchSpace(tuple(p if p.name != "train.epochs" else type(p)("train.epochs", 2, 6)
                                 for p in fake_space().params))
    with pytest.raises(TuneError, match=r"^route fake: study fake was started with another search space "
                                        r"\(train.epochs in \{2..6\} differs\)"):
        open_study(open_storage(journal(tmp_path), tmp_path), "fake", narrower, fake_defaults(), TuneConfig(**FAST))


@pytest.mark.parametrize("url", ["postgresql://nobody@127.0.0.1:1/x", "sqlite:////nonexistent/dir/x.db",
                                 "/nonexistent/dir/journal.log", "nonsense://x"])
def test_a_storage_that_cannot_be_opened_gives_one_clear_error(tmp_path, url):
    with pytest.raises(TuneError, match=r"^--storage .*: cannot open (it|the journal file) \(.+\)$") as raised:
        open_storage(url, tmp_path)
    assert "\n" not in str(raised.value)


def test_a_storage_error_hides_the_password(tmp_path):
    with pytest.raises(TuneError) as raised:
        open_storage("postgresql://tuner:secret@127.0.0.1:1/x", tmp_path)
    assert "secret" not in str(raised.value) and "tuner:***@127.0.0.1" in str(raised.value)


def test_the_default_storage_is_a_journal_in_the_run_directory(tmp_path):
    study, _ = open_fake_study(None, tmp_path, trials=1)
    assert (tmp_path / ".tune" / "journal.log").is_file()
    assert study.study_name == "fake" and study.direction == optuna.study.StudyDirection.MAXIMIZE


def test_a_trial_created_after_the_cap_fails_without_running(tmp_path):
    study, _ = open_fake_study(journal(tmp_path), tmp_path, trials=2)
    for _ in range(2):  # two trials running in other processes take the budget
        study.ask().set_user_attr(WORKER_ATTR, worker_identity())
    runner = FakeRunner()
    late = study.ask()
    with pytest.raises(OverBudget, match="the study's 2 trials are taken"):
        RouteObjective(fake_space(), runner, Budget(2))(late)
    assert runner.calls == [] and late.user_attrs[OVER_BUDGET_ATTR]
    assert [t.number for t in Budget(2).counted(study)] == [0, 1] and Budget(2).remaining(study) == 0


@pytest.mark.parametrize(("budget", "message"), [
    (dict(trials=0), "--trials must be > 0, got 0"),
    (dict(trials=None), "give --trials or --timeout-per-route (or both)"),
    (dict(trials=None, timeout_per_route_s=-1), "--timeout-per-route must be > 0, got -1"),
])
def test_a_budget_without_an_end_or_with_no_trials_is_refused(budget, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TuneConfig(**budget)
    with pytest.raises(TuneError, match=re.escape(message)):
        Budget(budget["trials"], budget.get("timeout_per_route_s"))


def test_each_finished_trial_logs_one_line_with_its_value_the_best_and_its_params(tmp_path, caplog):
    study, _ = open_fake_study(journal(tmp_path), tmp_path, trials=3)
    with caplog.at_level(logging.INFO, logger="distilora.tune.progress"):
        tune_route(study, "fake", fake_space(), FakeRunner(), Budget(3), collect_garbage=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "distilora.tune.progress"]
    assert len(lines) == 3
    best = {t.number: t for t in study.trials}
    assert lines[0].startswith("fake trial 0 (default) complete: macro-F1 "
                               f"{best[0].user_attrs[MACRO_F1_ATTR]:.4f} · best ")
    assert all(f"fake trial {n} " in line and " · best " in line and "train.learning_rate=" in line
               for n, line in enumerate(lines))


# ---- processes: kill and share -------------------------------------------------------------------------------------

def test_a_trial_of_a_live_process_is_left_running_and_one_of_a_dead_process_is_retried(tmp_path):
    study, _ = open_fake_study(journal(tmp_path), tmp_path, trials=4)
    alive, dead = study.ask(), study.ask()
    for trial in (alive, dead):
        fake_space().suggest(trial)
    alive.set_user_attr(WORKER_ATTR, worker_identity())
    dead.set_user_attr(WORKER_ATTR, {**worker_identity(), "started": "another process of the same pid"})
    assert fail_orphaned_trials(study) == [dead.number]
    states = {t.number: t for t in study.trials}
    assert states[alive.number].state == TrialState.RUNNING and states[dead.number].state == TrialState.FAIL
    retry = study.trials[-1]
    assert retry.state == TrialState.WAITING and retry.params == states[dead.number].params
    assert retry.system_attrs["failed_trial"] == dead.number


def test_a_killed_tune_resumes_from_its_finished_trials(tmp_path):
    record = tmp_path / "calls.jsonl"
    killed = subprocess.run([sys.executable, str(WORKER), journal(tmp_path), "--trials", "5", "--record", str(record),
                             "--kill-on-call", "3"], env=worker_env(), capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    interrupted = [json.loads(line)["settings"] for line in record.read_text().splitlines()]
    assert len(interrupted) == 3

    study, _ = open_fake_study(journal(tmp_path), tmp_path, trials=5)
    runner = FakeRunner()
    result = tune(study, runner, 5)
    states = [t.state for t in study.trials]
    assert all(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states[:2])
    assert states[2] == TrialState.FAIL, "the killed trial failed"
    assert runner.calls[0] == interrupted[2], "the killed trial's settings run again first"
    assert len(runner.calls) == 2 and result.trials == 5 and result.complete + result.pruned == 4
    assert sum(bool(t.user_attrs.get(DEFAULT_ATTR)) for t in study.trials if t.state == TrialState.COMPLETE) == 1


def test_two_processes_on_one_journal_run_exactly_the_global_cap(tmp_path):
    record, barrier = tmp_path / "calls.jsonl", tmp_path / "barrier"
    barrier.mkdir()
    command = [sys.executable, str(WORKER), journal(tmp_path), "--trials", "7", "--record", str(record),
               "--barrier", str(barrier)]
    workers = [subprocess.Popen(command, env=worker_env(), stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr[-2000:]
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(calls) == 7 and len({c["pid"] for c in calls}) == 2, "both processes ran trials, 7 in all"
    study = optuna.load_study(study_name="fake", storage=open_storage(journal(tmp_path), tmp_path))
    counted = Budget(7).counted(study)
    assert len(counted) == 7 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in counted)
    assert len({t.number for t in counted}) == 7
    assert len({json.dumps(t.params, sort_keys=True) for t in counted}) == 7, "no parameter set ran twice"
    assert sum(bool(t.user_attrs.get(DEFAULT_ATTR)) for t in study.trials) == 1


# ---- the kept model ------------------------------------------------------------------------------------------------

def test_only_the_best_trials_model_is_kept(tmp_path):
    study, _ = open_fake_study(journal(tmp_path), tmp_path, trials=8)
    root = tmp_path / ".tune" / "fake"
    result = tune(study, FakeRunner(), 8, model_root=root)
    assert sorted(p.name for p in root.iterdir()) == [f"trial-{result.best_number}"]
    assert result.best_model_dir == root / f"trial-{result.best_number}"
    saved = json.loads((result.best_model_dir / "config.json").read_text())
    assert saved == json.loads(json.dumps(result.best_settings))
    manifest = json.loads((result.best_model_dir / "manifest.json").read_text())
    assert manifest["study"] == "fake" and manifest["trial"] == result.best_number


def test_overtaken_models_are_removed_only_when_the_tuner_wrote_every_file(tmp_path):
    study, _ = open_fake_study(journal(tmp_path), tmp_path, trials=4)
    tune(study, FakeRunner(), 4)
    best = best_trial(study).number
    others = [t.number for t in study.trials if t.number != best][:3]
    kept = KeptModels(tmp_path / "models", "fake")
    for number, study_name in zip([best, *others], ["fake", "fake", "fake", "another"], strict=True):
        directory = kept.trial_dir(number)
        directory.mkdir(parents=True)
        save_fake_model(directory, {})
        write_manifest(directory, {"study": study_name, "trial": number})
    (kept.trial_dir(others[1]) / "NOTES.md").write_text("the user's")
    removed = kept.remove_overtaken(study)
    assert removed == [kept.trial_dir(others[0])]
    assert all(kept.trial_dir(n).is_dir() for n in (best, others[1], others[2]))


# ---- pruning a real Trainer ------------------------------------------------------------------------------------------

def test_the_pruning_callback_stops_a_real_trainer_when_the_trial_says_prune(tiny_teacher, tiny_dataset, tmp_path):
    import torch

    from distilora.config import DataConfig
    from distilora.data import encode_splits, load_task_data
    from distilora.models import load_pretrained_classifier, load_tokenizer
    from distilora.training import train_model
    from distilora.training.losses import CrossEntropyObjective

    task = load_task_data(DataConfig(dataset=str(tiny_dataset), max_length=32))
    tokenizer = load_tokenizer(str(tiny_teacher))
    encoded = encode_splits(task.splits, tokenizer, 32)
    torch.manual_seed(0)
    model = load_pretrained_classifier(str(tiny_teacher), task.labels)
    # Every score is below 2: the threshold pruner prunes at the first pass after its warm-up of one.
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0,
                                                                                            n_warmup_steps=1))
    trial = study.ask()
    pruning = PruningCallback(trial)
    config = TrainConfig(epochs=3, learning_rate=1e-3, batch_size=16, eval_batch_size=32, logging_steps=2,
                         evals_per_epoch=2)
    result = train_model(model, tokenizer, encoded["train"], encoded["validation"], CrossEntropyObjective(), config,
                         tmp_path / "work", 0, task.labels, callbacks=[pruning], restore_best=False)
    evaluations = [e for e in result.history if "eval_macro_f1" in e]
    assert pruning.pruned_at == 1 and len(pruning.evaluations) == 2 == len(evaluations)
    assert sorted(study.trials[0].intermediate_values) == [0, 1]
    assert [e.macro_f1 for e in pruning.evaluations] == [e["eval_macro_f1"] for e in evaluations]
    assert evaluations[-1]["epoch"] < 3, "training stopped at the pruned pass, before its last epoch"
