"""Strict manifests and durable stage swaps: each case the reliability review reproduced, as a test."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import tiny_experiment_config

from distilora.artifacts import MANIFEST, ArtifactError, verified_snapshot, verify_manifest, write_atomic
from distilora.inference import load_classifier


@pytest.fixture
def odd_dir(tiny_run, tmp_path) -> Path:
    target = tmp_path / "odd"
    shutil.copytree(tiny_run / "odd", target)
    return target


def _rewrite_manifest(directory: Path, **changes) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest.update(changes)
    (directory / MANIFEST).write_text(json.dumps(manifest))


# ---- strict manifests ----------------------------------------------------------------------------------------------
def test_an_empty_file_list_verifies_nothing_and_is_refused(odd_dir):
    """Before: ``"files": {}`` verified (nothing was checked)."""
    _rewrite_manifest(odd_dir, files={})
    with pytest.raises(ArtifactError, match="lists no config file"):
        load_classifier(odd_dir)


def test_a_manifest_without_weights_or_tokenizer_is_refused(odd_dir):
    files = json.loads((odd_dir / MANIFEST).read_text())["files"]
    _rewrite_manifest(odd_dir, files={k: v for k, v in files.items() if not k.endswith(".safetensors")})
    with pytest.raises(ArtifactError, match="lists no weights file"):
        verify_manifest(odd_dir)


def test_an_unlisted_adapter_config_is_refused(odd_dir, tiny_run):
    """Before: an unlisted adapter_config.json dropped into a model directory changed what from_pretrained loaded."""
    shutil.copy(tiny_run / "lora" / "adapter" / "adapter_config.json", odd_dir / "adapter_config.json")
    with pytest.raises(ArtifactError, match="adapter_config.json is not in the manifest"):
        load_classifier(odd_dir)
    (odd_dir / "adapter_config.json").unlink()
    (odd_dir / "model-00002-of-00002.safetensors").write_bytes(b"extra shard")
    with pytest.raises(ArtifactError, match="model-00002-of-00002.safetensors is not in the manifest"):
        verify_manifest(odd_dir)


def test_a_symlink_is_refused_even_to_identical_bytes(odd_dir, tmp_path):
    """Before: symlinks were followed."""
    elsewhere = tmp_path / "elsewhere.safetensors"
    shutil.copy(odd_dir / "model.safetensors", elsewhere)
    (odd_dir / "model.safetensors").unlink()
    (odd_dir / "model.safetensors").symlink_to(elsewhere)
    with pytest.raises(ArtifactError, match="model.safetensors is a symbolic link"):
        load_classifier(odd_dir)


@pytest.mark.parametrize("name", ["../outside.json", "/etc/hostname"])
def test_names_outside_the_directory_are_refused(odd_dir, name):
    files = json.loads((odd_dir / MANIFEST).read_text())["files"]
    _rewrite_manifest(odd_dir, files={**files, name: "0" * 64})
    with pytest.raises(ArtifactError, match="outside the model directory"):
        verify_manifest(odd_dir)


@pytest.mark.parametrize("text", ["{", "[]", '{"files": ["config.json"]}', '{"files": {"config.json": 1}}'])
def test_a_malformed_manifest_is_an_artifact_error(odd_dir, text):
    (odd_dir / MANIFEST).write_text(text)
    with pytest.raises(ArtifactError, match="manifest"):
        verify_manifest(odd_dir)


def test_a_malformed_manifest_retrains_the_stage_instead_of_a_traceback(tiny_run, tiny_dataset, tiny_teacher,
                                                                        tmp_path, caplog):
    """Before: a malformed manifest crashed ``completed()`` with a traceback."""
    from distilora import run_experiment

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "teacher" / MANIFEST).write_text('{"files": [')
    results = run_experiment(tiny_experiment_config(tiny_dataset, tiny_teacher, run, routes=(),
                                                report=False))
    assert results["reused_stages"] == [] and "unreadable manifest" in caplog.text
    verify_manifest(run / "teacher")


def test_what_is_loaded_is_the_bytes_that_were_hashed(odd_dir):
    original = (odd_dir / "config.json").read_bytes()
    with verified_snapshot(odd_dir) as snapshot:
        (odd_dir / "config.json").write_text('{"changed": "after the check"}')  # a swap between hash and load
        assert (snapshot / "config.json").read_bytes() == original
    with pytest.raises(ArtifactError, match="checksum mismatch for config.json"), verified_snapshot(odd_dir):
        pass


# ---- durable writes and half-done swaps ------------------------------------------------------------------------------
def test_atomic_writes_fsync_the_file_and_its_folder(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def record(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    write_atomic(tmp_path / "results.json", "{}")
    assert len(synced) == 2
    assert Path(synced[0]).name.startswith(".results.json.") and synced[1] == str(tmp_path)


def _rerun_teacher_only(run: Path, dataset: Path, teacher: Path) -> dict:
    from distilora import run_experiment

    return run_experiment(tiny_experiment_config(dataset, teacher, run, routes=(), report=False))


def test_a_crash_between_the_two_renames_adopts_the_finished_partial(tiny_run, tiny_dataset, tiny_teacher, tmp_path):
    """Before: a finished ``.partial`` beside an ``.old`` was thrown away and the stage trained again."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "teacher").rename(run / "teacher.old")          # first rename done …
    shutil.copytree(run / "teacher.old", run / "teacher.partial")  # … the finished new stage not yet renamed
    weights = (run / "teacher.partial" / "model.safetensors").stat().st_mtime_ns
    results = _rerun_teacher_only(run, tiny_dataset, tiny_teacher)
    assert results["reused_stages"] == ["teacher"]
    assert (run / "teacher" / "model.safetensors").stat().st_mtime_ns == weights
    assert not (run / "teacher.old").exists() and not (run / "teacher.partial").exists()


def test_an_old_stage_left_alone_by_a_crash_is_restored(tiny_run, tiny_dataset, tiny_teacher, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "teacher").rename(run / "teacher.old")
    (run / "teacher.partial").mkdir()  # the new stage was still being saved: not finished
    (run / "teacher.partial" / "config.json").write_text("{}")
    results = _rerun_teacher_only(run, tiny_dataset, tiny_teacher)
    assert results["reused_stages"] == ["teacher"]
    assert not (run / "teacher.old").exists()
    verify_manifest(run / "teacher")


# ---- loading while the evaluation swaps a directory ----------------------------------------------------------------
def test_loading_a_model_while_its_directory_is_swapped_reads_the_new_one(odd_dir, monkeypatch):
    """Before: a load that began before the evaluation swapped in a refitted calibration read the old manifest and
    the new calibration.json, and blamed the good directory ("checksum mismatch … delete the directory")."""
    from distilora import artifacts
    from distilora.run_dir import CALIBRATION_FILE, StageStore

    refitted = json.loads((odd_dir / CALIBRATION_FILE).read_text())
    refitted["temperature"] = 1.2345
    real_hash, swaps = artifacts.sha256_bytes, []

    def hash_then_swap(data: bytes) -> str:  # the swap lands after the loader read its first file
        if not swaps:
            swaps.append(StageStore().add_to_stage(odd_dir, {CALIBRATION_FILE: json.dumps(refitted)}))
        return real_hash(data)

    monkeypatch.setattr(artifacts, "sha256_bytes", hash_then_swap)
    classifier = load_classifier(odd_dir)
    assert swaps == [True]
    assert classifier.calibration.temperature == 1.2345


def test_loading_a_model_between_the_two_renames_of_a_swap_waits_for_it(odd_dir, monkeypatch):
    """Before: a load in the moment between the two renames said "no saved model here"."""
    import time

    partial = Path(shutil.copytree(odd_dir, odd_dir.with_name("odd.partial")))
    odd_dir.rename(odd_dir.with_name("odd.old"))
    waits = []

    def finish_the_swap(seconds: float) -> None:  # what the evaluation does while the loader waits
        waits.append(seconds)
        if not odd_dir.exists():
            partial.rename(odd_dir)

    monkeypatch.setattr(time, "sleep", finish_the_swap)
    assert load_classifier(odd_dir).calibration is not None
    assert waits


def test_a_changed_file_in_a_directory_left_in_place_is_still_blamed_at_once(odd_dir, monkeypatch):
    import time

    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail("waited for a directory nobody swaps"))
    (odd_dir / "config.json").write_text('{"changed": true}')
    with pytest.raises(ArtifactError, match="checksum mismatch for config.json"):
        load_classifier(odd_dir)


# ---- file modes ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_get_the_mode_the_umask_gives_a_new_file(tmp_path, umask, mode):
    """Before: every atomically written file (results.json, manifests, calibration.json, model cards, report.html,
    checks) was 0600, mkstemp's mode: unreadable to the group that serves the run."""
    previous = os.umask(umask)
    try:
        write_atomic(tmp_path / "results.json", "{}")
        write_atomic(tmp_path / "results.json", "{}")  # replacing a file gives the same
    finally:
        os.umask(previous)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_every_file_of_a_finished_run_has_the_mode_of_a_plain_open(tiny_run):
    umask = os.umask(0o022)
    os.umask(umask)
    written = [tiny_run / "results.json", tiny_run / "results.md", tiny_run / "report.html", tiny_run / "report.md"]
    for name in ("teacher", "odd", "lora"):
        written += [tiny_run / name / file for file in (MANIFEST, "calibration.json", "README.md")]
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
