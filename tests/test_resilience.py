"""Crash-safety and integrity: resume after SIGKILL, checksummed artifacts, clear refusals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_dataset

from distilora.artifacts import ArtifactError, verify_manifest
from distilora.cli import main as cli_main
from distilora.inference import load_classifier
from distilora.training.trainer import last_complete_checkpoint


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "distilora.cli", *args]


def _run_args(dataset: Path, teacher: Path, output: Path) -> list[str]:
    return ["run", "--dataset", str(dataset), "--teacher", str(teacher), "--output-dir", str(output),
            "--epochs", "4", "--batch-size", "16", "--max-length", "32", "--routes", "odd,even"]


@pytest.fixture(scope="module")
def larger_dataset(tmp_path_factory) -> Path:
    # Enough steps that a student is reliably still training when the test kills the run.
    return make_dataset(tmp_path_factory.mktemp("larger-data"), sizes=(400, 64, 64))


def test_sigkill_during_student_then_rerun_resumes(tmp_path, tiny_teacher, larger_dataset):
    output = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen(_cli(*_run_args(larger_dataset, tiny_teacher, output)), stdout=log,
                               stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 240
    checkpoint = None
    try:
        while time.monotonic() < deadline and process.poll() is None:
            # a checkpoint the Trainer finished writing (trainer_state.json is its last file)
            checkpoint = next(iter(sorted((output / ".work").glob("odd-*/checkpoint-*/trainer_state.json"))), None)
            if checkpoint is not None:
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert checkpoint is not None, "the student never wrote a checkpoint: " + (tmp_path / "first.log").read_text()
    assert not (output / "odd" / "manifest.json").exists(), "odd finished before the kill; nothing was tested"
    verify_manifest(output / "teacher")
    teacher_weights = output / "teacher" / "model.safetensors"
    teacher_mtime = teacher_weights.stat().st_mtime_ns

    second = subprocess.run(_cli(*_run_args(larger_dataset, tiny_teacher, output)), capture_output=True,
                            text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Resuming from" in second.stderr
    assert teacher_weights.stat().st_mtime_ns == teacher_mtime
    results = json.loads((output / "results.json").read_text())
    assert "teacher" in results["reused_stages"] and "odd" not in results["reused_stages"]
    assert set(results["models"]) == {"teacher", "odd", "even"}
    for name in results["models"]:
        verify_manifest(output / name)
        assert results["models"][name]["metrics"]["test"]["n"] == 64
    assert not list((output / ".work").glob("odd-*")), "the finished stage's checkpoints were not cleaned up"

    # The resumed run against an uninterrupted one with the same seed: same predictions up to float noise.
    reference = tmp_path / "reference"
    third = subprocess.run(_cli(*_run_args(larger_dataset, tiny_teacher, reference)), capture_output=True,
                           text=True, env=env, timeout=300)
    assert third.returncode == 0, third.stderr[-3000:]
    for name in ("odd", "even"):
        resumed = np.array(json.loads((output / "predictions" / f"{name}.json").read_text())["test"]["probs"])
        uninterrupted = np.array(json.loads((reference / "predictions" / f"{name}.json").read_text())["test"]["probs"])
        print(f"{name}: max |resumed - uninterrupted| = {np.abs(resumed - uninterrupted).max():.2e}")
        assert np.abs(resumed - uninterrupted).max() < 1e-4, name


def test_incomplete_checkpoint_is_removed_not_resumed_from(tmp_path):
    for step, complete in ((5, True), (10, False)):
        checkpoint = tmp_path / f"checkpoint-{step}"
        checkpoint.mkdir()
        (checkpoint / "model.safetensors").write_bytes(b"x")
        if complete:
            (checkpoint / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-5")
    assert not (tmp_path / "checkpoint-10").exists()
    assert last_complete_checkpoint(tmp_path / "missing") is None


def test_one_corrupted_byte_is_refused(tmp_path, tiny_run):
    model_dir = tmp_path / "odd"
    shutil.copytree(tiny_run / "odd", model_dir)
    load_classifier(model_dir)  # intact: loads
    weights = model_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum mismatch for model.safetensors"):
        load_classifier(model_dir)


def test_directory_without_manifest_is_refused(tmp_path, tiny_run):
    model_dir = tmp_path / "even"
    shutil.copytree(tiny_run / "even", model_dir)
    (model_dir / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="incomplete"):
        load_classifier(model_dir)


def test_full_disk_fails_the_stage_and_keeps_the_previous_model(tmp_path, tiny_run, tiny_dataset, tiny_teacher,
                                                                  monkeypatch, capsys):
    output = tmp_path / "run"
    shutil.copytree(tiny_run, output)
    before = verify_manifest(output / "odd")["files"]

    def disk_full(route, model, directory):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("distilora.routes.base.TrainerRoute.save", disk_full)
    # Another temperature changes the students' fingerprint, so they are retrained (and their save fails).
    code = cli_main(["-q", *_run_args(tiny_dataset, tiny_teacher, output)[:-2], "--routes", "odd,even,lora",
                     "--epochs", "1", "--temperature", "3", "--max-length", "32"])
    assert code == 2
    assert "No space left on device" in capsys.readouterr().err
    assert verify_manifest(output / "odd")["files"] == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "-1"], "must be > 0"),
        (["--dataset", "/nonexistent/data"], "no such directory"),
        (["--layers", "0"], "do not exist"),
        (["--output-dir", "/proc/distilora-cannot-write"], "cannot write there"),
    ],
)
def test_cli_refuses_impossible_arguments_before_any_work(args, message, tmp_path, capsys):
    argv = ["run", "--output-dir", str(tmp_path / "out"), *args]
    try:
        code = cli_main(argv)
    except SystemExit as exit_:  # argparse refuses type errors itself
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    assert not (tmp_path / "out" / "teacher").exists()


@pytest.mark.parametrize("flag", ["--target-precision", "--target-recall"])
def test_a_threshold_target_on_a_multi_class_run_is_refused_before_any_training(flag, tiny_teacher, tmp_path,
                                                                                capsys):
    """Before: a 3-class run took --target-precision, trained every model and ignored it with an INFO line."""
    dataset = make_dataset(tmp_path / "data", num_classes=3)
    output = tmp_path / "out"
    code = cli_main(["run", "--dataset", str(dataset), "--teacher", str(tiny_teacher), "--output-dir", str(output),
                     "--routes", "", "--epochs", "1", "--max-length", "32", "--no-report", "--no-speed",
                     flag, "0.9"])
    assert code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"distilora run: error: {flag} sets a threshold for the positive class of a binary task")
    assert "3 classes (neutral, toxic, mixed)" in line and line.endswith(f"drop {flag}")
    assert not output.exists(), "refused before the run directory is made"
