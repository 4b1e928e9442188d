"""``torchrun --nproc_per_node 2 -m distilora run …`` on the tiny teacher (gloo on CPU): one complete run directory,
written by the main process alone, from training that really ran in two processes."""

from __future__ import annotations

import fcntl
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import distilora
from distilora.artifacts import verify_manifest

pytestmark = pytest.mark.distributed

SOURCE = Path(distilora.__file__).resolve().parents[1]
PROCESSES = 2
TRAIN_ROWS, BATCH = 96, 16


def torchrun(dataset: Path, teacher: Path, output: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SOURCE), os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(PROCESSES),
               "-m", "distilora", "run", "--dataset", str(dataset), "--teacher", str(teacher), "--output-dir",
               str(output), "--routes", "odd,lora,tfidf", "--epochs", "1", "--batch-size", str(BATCH),
               "--max-length", "32", "--no-speed", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)


def test_two_processes_make_one_complete_run(tiny_teacher, tiny_dataset, tmp_path):
    output = tmp_path / "run"
    proc = torchrun(tiny_dataset, tiny_teacher, output)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count(f"Saved to {output}") == 1, "the main process alone prints the table"
    assert proc.stderr.count("[teacher] training") == 1, "the other process logs warnings only"
    assert "find_unused_parameters" not in proc.stderr, "every parameter gets a gradient: no search for unused ones"

    results = json.loads((output / "results.json").read_text())
    assert results["world_size"] == PROCESSES
    assert list(results["models"]) == ["teacher", "odd", "lora", "tfidf"]
    steps = math.ceil(TRAIN_ROWS / (BATCH * PROCESSES))  # each process takes BATCH per step: half the steps
    for name in ("teacher", "odd", "lora"):
        entry = results["models"][name]
        assert entry["world_size"] == PROCESSES, name
        assert max(e["step"] for e in entry["history"]) == steps, name
        assert json.loads((output / name / "stage.json").read_text())["world_size"] == PROCESSES
    assert results["models"]["tfidf"]["world_size"] == 1, "fitted by the main process alone"

    for name in results["models"]:
        verify_manifest(output / name)  # complete, and every checksum holds
        assert (output / "predictions" / f"{name}.json").is_file()
    for name in ("results.md", "report.html", "report.md"):
        assert (output / name).is_file(), name
    assert len(list((output / ".cache").glob("teacher-targets-*.safetensors"))) == 1
    assert not list(output.glob("*.partial")) and not (output / ".work").exists(), "nothing half-done left"
    assert not list(output.glob(".write-test*"))


def test_every_process_stops_when_the_run_is_locked(tiny_teacher, tiny_dataset, tmp_path):
    output = tmp_path / "run"
    output.mkdir()
    with (output / ".lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("4242")
        lock.flush()
        proc = torchrun(tiny_dataset, tiny_teacher, output)
    assert proc.returncode != 0
    # The main process says so; the other stops too (torchrun may end it before it says so as well).
    assert "distilora run: error: " in proc.stderr and "in use by another distilora run (PID 4242)" in proc.stderr, \
        proc.stderr[-4000:]
    assert not (output / "teacher").exists()


def test_every_route_trains_under_ddp_without_searching_for_unused_parameters(tiny_teacher, tiny_dataset, tmp_path):
    # The Trainer runs DDP with find_unused_parameters=False: a route that left a trainable parameter without a
    # gradient would stop DDP with an error at its next step, so every route is trained here once.
    from distilora.routes import route_groups

    output = tmp_path / "run"
    proc = torchrun(tiny_dataset, tiny_teacher, output, "--routes", "all", "--no-report")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "find_unused_parameters" not in proc.stderr
    results = json.loads((output / "results.json").read_text())
    assert set(results["models"]) == {"teacher", *route_groups()["all"]}
    trained = {name for name, entry in results["models"].items() if entry["world_size"] == PROCESSES}
    assert trained == set(results["models"]) - {"tfidf", "majority"}, "every gradient route trained in 2 processes"
