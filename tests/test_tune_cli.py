"""``distilora tune`` on a finished run: bad input refused in one line with nothing written; two trials of one route
on the tiny run, ``tune.json``, the best model installed and evaluated as ``odd-tuned``, a rerun at the same
budget that runs no new trial, and a run that reuses the installed model. That a trial never reads the test split
is tests/test_train_route.py's (every trial goes through ``train_route``)."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import distilora
from distilora.cli import main
from distilora.tune import open_storage

# The tiny run trains 1 epoch at lr 1e-3: the space file widens the route's ranges to contain those defaults.
TINY_SPACE = {"odd": {"train.epochs": {"low": 1, "high": 2},
                      "train.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
                      "train.batch_size": {"choices": [16, 32]}}}


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A copy of the session's tiny run (tuning writes into the run directory)."""
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    return copy


def space_file(tmp_path: Path, ranges: dict) -> str:
    path = tmp_path / "space.json"
    path.write_text(json.dumps(ranges))
    return str(path)


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("distilora tune: error: ")
    return lines[0]


@pytest.mark.parametrize(("flags", "message"), [
    (["--routes", "nosuch"], "unknown route 'nosuch'"),
    (["--routes", "majority"], "route majority has nothing to tune"),
    (["--routes", "teacher"], "route teacher has nothing to tune"),
    (["--routes", "odd", "--trials", "0"], "--trials must be > 0, got 0"),
    (["--routes", "odd", "--space", "SPACE:{\"odd\": {\"lora.r\": {\"choices\": [4]}}}"], "lora.r"),
    (["--routes", "odd", "--space", "SPACE:{\"odd\": {\"train.epochs\": {\"low\": 3, \"high\": 2}}}"],
     "train.epochs"),
    (["--routes", "odd", "--space", "TINY", "--storage", "nosuchdialect://x"],
     "--storage nosuchdialect://x: cannot open it"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_is_written(flags, message, run_copy, tmp_path, capsys):
    spaces = {"TINY": TINY_SPACE} | {f: json.loads(f[len("SPACE:"):]) for f in flags if f.startswith("SPACE:")}
    flags = [space_file(tmp_path, spaces[f]) if f in spaces else f for f in flags]
    before = listing(run_copy)
    assert main(["tune", "--run", str(run_copy), *flags]) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert listing(run_copy) == before


def test_a_directory_without_results_json_is_refused(tmp_path, capsys):
    assert main(["tune", "--run", str(tmp_path), "--routes", "odd"]) == 2
    assert "no results.json" in one_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_tune_installs_the_best_trial_a_rerun_runs_no_new_trial_and_a_run_reuses_the_tuned_model(
        run_copy, tmp_path, capsys, caplog):
    from distilora import run_experiment
    from distilora.tune.run_tuning import read_run_config

    teacher_files = {p.name: p.stat().st_mtime_ns for p in (run_copy / "teacher").glob("*.safetensors")}
    flags = ["-q", "tune", "--run", str(run_copy), "--routes", "odd", "--trials", "2",
             "--space", space_file(tmp_path, TINY_SPACE)]
    assert main(flags) == 0
    summary = [line for line in capsys.readouterr().out.splitlines() if line.startswith("odd: ")]
    assert len(summary) == 1 and "validation macro-F1" in summary[0] and "2 trials" in summary[0]
    record = json.loads((run_copy / "tune.json").read_text())["routes"]["odd"]
    assert record["trials"] == 2 and record["complete"] + record["pruned"] + record["failed"] == 2
    assert record["default_trial"] == 0 and record["best_macro_f1"] >= record["default_macro_f1"]
    assert set(record["best_settings"]) == {"train.learning_rate", "train.epochs", "train.warmup_ratio",
                                            "train.weight_decay", "train.batch_size", "distil.temperature",
                                            "distil.w_ce", "distil.w_kd", "distil.w_cos", "distil.w_hidden"}
    assert (Path(record["model_dir"]) / "config.json").is_file()
    assert not (run_copy / ".tune" / "work").exists()
    assert teacher_files and {p.name: p.stat().st_mtime_ns  # the teacher's weights reused, not trained again
                              for p in (run_copy / "teacher").glob("*.safetensors")} == teacher_files

    results = json.loads((run_copy / "results.json").read_text())["models"]
    tuned = results["odd-tuned"]
    assert "macro_f1" in tuned["metrics"]["test"] and "tuned (trial" in tuned["description"]
    assert "distil.temperature=" in tuned["description"] and set(results) > {"teacher", "odd", "even", "lora"}
    stage = json.loads((run_copy / "odd-tuned" / "stage.json").read_text())
    assert stage["details"]["tuned_from"] == "odd" and stage["details"]["trial"] == record["best_trial"]
    assert stage["details"]["settings"] == record["best_settings"]
    report = (run_copy / "report.md").read_text()
    assert "Tuned at equal budget" in report and "Budget: 2 trials per route" in report
    assert "Which half-depth route loses least" in report and (run_copy / "plots" / "tuning_odd.png").is_file()
    comparisons = json.loads((run_copy / "results.json").read_text())["statistics"]["comparisons"]
    assert [(c["a"], c["b"]) for c in comparisons if c["kind"] == "tuned vs default"] == [("odd-tuned", "odd")]
    assert len(record["history"]) == 2 and record["history"][0]["default"]
    assert (run_copy / "odd-tuned" / "model.safetensors").read_bytes() == (
        Path(record["model_dir"]) / "model.safetensors").read_bytes()

    capsys.readouterr()
    assert main(flags) == 0, capsys.readouterr().err[-600:]
    again = json.loads((run_copy / "tune.json").read_text())["routes"]["odd"]
    assert again["trials"] == 2 and again["best_trial"] == record["best_trial"]
    assert again["best_macro_f1"] == record["best_macro_f1"]

    # `distilora run` with the tuned route listed reuses the installed stage instead of training it again.
    installed = (run_copy / "odd-tuned" / "model.safetensors").stat().st_mtime_ns
    config = read_run_config(run_copy)
    config.report = False
    assert "odd-tuned" in config.routes
    with caplog.at_level(logging.INFO):
        run_experiment(config)
    assert "[odd-tuned] reusing finished stage" in caplog.text
    assert (run_copy / "odd-tuned" / "model.safetensors").stat().st_mtime_ns == installed


def test_tfidf_is_tuned_from_the_c_its_run_chose_and_refused_without_one(run_copy):
    from transformers import AutoConfig

    from distilora.config import TuneConfig
    from distilora.models import resolve_checkpoint
    from distilora.models.architectures import encoder_depth
    from distilora.tune import TuneError
    from distilora.tune.run_tuning import plan_tuning, read_run_config

    depth = encoder_depth(AutoConfig.from_pretrained(resolve_checkpoint(read_run_config(run_copy).teacher)))
    with pytest.raises(TuneError, match="c_grid"):  # the run's six-value grid cannot be one trial
        plan_tuning(run_copy, TuneConfig(routes=("tfidf",), trials=2), depth)
    results = json.loads((run_copy / "results.json").read_text())
    results["models"]["tfidf"] = {"route": "baseline", "tfidf_search": {"C": 3.0}}
    (run_copy / "results.json").write_text(json.dumps(results))
    plan = plan_tuning(run_copy, TuneConfig(routes=("tfidf",), trials=2), depth)
    assert plan.routes[0].defaults["tfidf.c_grid"] == (3.0,)


@pytest.mark.distributed
def test_under_torchrun_the_main_process_picks_each_trial_and_both_processes_train_it(run_copy, tmp_path):
    import optuna

    source = Path(distilora.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "distilora", "tune", "--run-dir", str(run_copy), "--routes", "odd", "--trials", "2",
               "--space", space_file(tmp_path, TINY_SPACE)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("odd: validation macro-F1") == 1, "the main process alone runs the study"
    assert json.loads((run_copy / "tune.json").read_text())["routes"]["odd"]["trials"] == 2
    study = optuna.load_study(study_name="odd", storage=open_storage(None, run_copy))
    rows = json.loads((run_copy / "results.json").read_text())["data_report"]["train"]["rows"]
    for trial in study.trials:  # each epoch took the steps of half the rows: both processes trained the trial
        batch, first = trial.params["train.batch_size"], trial.user_attrs["history"][0]
        steps_per_epoch = first["step"] / first["epoch"]
        assert steps_per_epoch == pytest.approx(math.ceil(math.ceil(rows / 2) / batch)), (first, rows, batch)
        assert steps_per_epoch < rows / batch
    assert (run_copy / "odd-tuned" / "model.safetensors").is_file()
