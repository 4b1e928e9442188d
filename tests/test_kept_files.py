"""A rerun never deletes what it did not write: files a user put into a finished model directory, an edited model
card, and the stages a retrained teacher replaces downstream."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from conftest import tiny_experiment_config

from distilora.artifacts import verify_manifest
from distilora.inference import load_classifier
from distilora.run_dir import CALIBRATION_FILE, MODEL_CARD, RunLayout, StageStore

USER_FILES = {"NOTES.md": "why I keep this model\n", ".gitattributes": "*.safetensors filter=lfs\n",
              ".git/HEAD": "ref: refs/heads/main\n", ".git/objects/ab/cdef": "a git object\n"}


def add_user_files(stage: Path) -> None:
    for name, text in USER_FILES.items():
        (stage / name).parent.mkdir(parents=True, exist_ok=True)
        (stage / name).write_text(text)


def assert_user_files(stage: Path) -> None:
    for name, text in USER_FILES.items():
        assert (stage / name).read_text() == text, name


def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns(".work")))


def rerun(run: Path, dataset: Path, teacher: Path, routes: tuple[str, ...] = (), **overrides) -> dict:
    from distilora import run_experiment

    return run_experiment(tiny_experiment_config(dataset, teacher, run, routes=routes, report=False,
                                             **overrides))


def set_aside(run: Path, name: str) -> list[Path]:
    return sorted(run.glob(f"{name}.old-*"))


def test_a_rerun_reuses_a_stage_holding_user_files_and_leaves_them_alone(tiny_run, tiny_dataset, tiny_teacher,
                                                                         tmp_path, caplog):
    """Before: NOTES.md, .gitattributes or .git/ in a finished model directory made the stage unfinished: the
    directory was removed and the model trained again."""
    run = run_copy(tiny_run, tmp_path)
    add_user_files(run / "teacher")
    weights = (run / "teacher" / "model.safetensors").stat().st_mtime_ns
    with caplog.at_level(logging.WARNING):
        results = rerun(run, tiny_dataset, tiny_teacher)
    assert results["reused_stages"] == ["teacher"]
    assert (run / "teacher" / "model.safetensors").stat().st_mtime_ns == weights
    assert_user_files(run / "teacher")  # still there after the evaluation swapped in its calibration and card
    [warning] = [r.getMessage() for r in caplog.records if "did not write" in r.getMessage()]
    assert warning.endswith(".git/, .gitattributes, NOTES.md")
    verify_manifest(run / "teacher")
    assert load_classifier(run, "teacher").calibration is not None
    assert not set_aside(run, "teacher")


def test_an_edited_model_card_retrains_nothing_and_is_kept_beside_the_new_one(tiny_run, tiny_dataset, tiny_teacher,
                                                                             tmp_path):
    """Before: an edited README.md failed the manifest: the teacher (and everything downstream) was retrained and the
    edit deleted."""
    run = run_copy(tiny_run, tmp_path)
    edited = (run / "teacher" / MODEL_CARD).read_text() + "\nMy own words about this model.\n"
    (run / "teacher" / MODEL_CARD).write_text(edited)
    weights = (run / "teacher" / "model.safetensors").stat().st_mtime_ns
    results = rerun(run, tiny_dataset, tiny_teacher)
    assert results["reused_stages"] == ["teacher"]
    assert (run / "teacher" / "model.safetensors").stat().st_mtime_ns == weights
    [kept] = (run / "teacher").glob(f"{MODEL_CARD}.edited-*")
    assert kept.read_text() == edited
    assert "My own words" not in (run / "teacher" / MODEL_CARD).read_text()  # the run's card for this run
    assert MODEL_CARD in verify_manifest(run / "teacher")["files"]


def test_a_retrained_teacher_moves_aside_every_stage_holding_user_files(tiny_run, tiny_dataset, tiny_teacher,
                                                                       tmp_path):
    """Before: retraining the teacher removed its directory and, as every student is retrained after it, theirs,
    with whatever the user had put in them. A stage holding only the run's files is replaced as before."""
    run = run_copy(tiny_run, tmp_path)
    add_user_files(run / "teacher")
    (run / "odd" / "NOTES.md").write_text("odd is the one we ship\n")
    old_weights = {name: (run / name / "model.safetensors").read_bytes() for name in ("teacher", "odd")}
    config_overrides = {"teacher_training": tiny_experiment_config(tiny_dataset, tiny_teacher, run).teacher_training}
    config_overrides["teacher_training"].learning_rate = 5e-4  # a new teacher fingerprint
    results = rerun(run, tiny_dataset, tiny_teacher, routes=("odd", "even"), **config_overrides)
    assert results["reused_stages"] == []
    [teacher_aside], [odd_aside] = set_aside(run, "teacher"), set_aside(run, "odd")
    assert_user_files(teacher_aside)
    assert (odd_aside / "NOTES.md").read_text() == "odd is the one we ship\n"
    for name, aside in (("teacher", teacher_aside), ("odd", odd_aside)):
        assert (aside / "model.safetensors").read_bytes() == old_weights[name]
        verify_manifest(run / name)
        assert not (run / name / "NOTES.md").exists()
    assert not set_aside(run, "even"), "only the run's files: replaced, not kept"


def test_a_replaced_stage_is_removed_only_when_its_successor_keeps_every_user_file(tiny_run, tmp_path):
    from distilora.kept_files import retire

    stage = Path(shutil.copytree(tiny_run / "even", tmp_path / "even"))
    old = Path(shutil.copytree(stage, tmp_path / "even.old"))
    (old / "NOTES.md").write_text("mine")
    os.link(old / "NOTES.md", stage / "NOTES.md")  # carried over, as the evaluation's swap does
    retire(old, stage)
    assert not old.exists() and (stage / "NOTES.md").read_text() == "mine"

    old = Path(shutil.copytree(stage, tmp_path / "even.old"))
    (old / CALIBRATION_FILE).write_text('{"edited": true}')  # a listed file with other bytes is the user's too
    retire(old, stage)
    [aside] = set_aside(tmp_path, "even")
    assert json.loads((aside / CALIBRATION_FILE).read_text()) == {"edited": True}


def test_a_crash_left_old_stage_with_user_files_is_moved_aside_not_deleted(tiny_run, tmp_path):
    run = RunLayout(tmp_path / "run")
    stage = Path(shutil.copytree(tiny_run / "even", run.model_dir("even")))
    old = Path(shutil.copytree(stage, stage.with_name("even.old")))
    (old / "NOTES.md").write_text("mine")
    fingerprint = json.loads((stage / "stage.json").read_text())["fingerprint"]
    assert StageStore().completed(stage, fingerprint) is not None
    [aside] = set_aside(run.root, "even")
    assert (aside / "NOTES.md").read_text() == "mine" and not old.exists()


@pytest.mark.parametrize("name", ["adapter_config.json", "model-00002-of-00002.safetensors", "custom.py"])
def test_an_unlisted_file_a_loader_could_read_is_still_refused(tiny_run, tmp_path, name):
    stage = Path(shutil.copytree(tiny_run / "odd", tmp_path / "odd"))
    add_user_files(stage)
    verify_manifest(stage)  # the user's notes alone are fine
    (stage / name).write_text("{}")
    with pytest.raises(ValueError, match=f"{name} is not in the manifest"):
        load_classifier(stage)
