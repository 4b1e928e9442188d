"""The route registry and the run directory: a new route is one registration, the teacher-target cache follows
the teacher's weights, and one run at a time holds an output directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import tiny_experiment_config

from distilora.config import DistillationConfig, ExperimentConfig
from distilora.routes import (
    DistilledStudent,
    RouteError,
    RouteKind,
    configured_routes,
    create_route,
    register_route,
    registered_routes,
    unregister_route,
)
from distilora.run_dir import RunDirectory
from distilora.training.losses import DistillationObjective


# ---- the registry ------------------------------------------------------------------------------------------------
def test_the_default_routes_come_from_the_registry_in_run_order():
    routes = configured_routes(ExperimentConfig(), teacher_depth=6)
    assert [(r.name, r.kind, r.layers) for r in routes] == [
        ("teacher", RouteKind.FINE_TUNE, None), ("odd", RouteKind.DISTIL, [1, 3, 5]),
        ("even", RouteKind.DISTIL, [2, 4, 6]), ("lora", RouteKind.LORA, None)]
    assert [r.main_seed_only for r in routes] == [True, False, False, False]
    assert [r.needs_teacher_targets for r in routes] == [False, True, True, False]
    assert {"teacher", "odd", "even", "lora"} <= set(registered_routes())


def test_layer_lists_become_students_and_bad_selections_are_refused():
    routes = configured_routes(ExperimentConfig(students=("6,1",), run_lora=False), teacher_depth=6)
    assert [(r.name, r.layers) for r in routes] == [("teacher", None), ("layers-6-1", [6, 1])]
    with pytest.raises(RouteError, match="same student layers"):
        configured_routes(ExperimentConfig(students=("odd", "1,3,5")), teacher_depth=6)
    with pytest.raises(RouteError, match="unknown route 'nope'; registered: even, lora, odd, teacher"):
        configured_routes(ExperimentConfig(extra_routes=("nope",)), teacher_depth=6)
    with pytest.raises(RouteError, match="selected twice"):
        configured_routes(ExperimentConfig(extra_routes=("lora",)), teacher_depth=6)
    with pytest.raises(RouteError, match="already registered"):
        register_route("odd", lambda depth: create_route("odd", depth))


def test_unknown_extra_route_is_refused_before_anything_is_written(tiny_teacher, tiny_dataset, tmp_path, capsys):
    from distilora.cli import main

    output = tmp_path / "run"
    code = main(["run", "--dataset", str(tiny_dataset), "--teacher", str(tiny_teacher), "--output-dir", str(output),
                 "--route", "no-such-route"])
    assert code == 2
    assert "unknown route 'no-such-route'" in capsys.readouterr().err
    assert not output.exists()


# ---- a new route is one registration -----------------------------------------------------------------------------
class LastLayerKD(DistilledStudent):
    """A toy route: a one-layer student from the teacher's last layer, distilled on the KL term alone."""

    def objective(self, config: ExperimentConfig) -> DistillationObjective:
        temperature = config.distillation.temperature
        return DistillationObjective(DistillationConfig(w_ce=0, w_kd=1, w_cos=0, temperature=temperature))

    def fingerprint_parts(self, ctx) -> tuple:
        return (*super().fingerprint_parts(ctx), "kl-only")


@pytest.fixture
def toy_route():
    register_route("last-kd", lambda depth: LastLayerKD("last-kd", [depth]))
    yield "last-kd"
    unregister_route("last-kd")


def test_a_registered_route_is_trained_evaluated_reported_served_and_reused(toy_route, tiny_teacher, tiny_dataset,
                                                                            tmp_path):
    from transformers import AutoModelForSequenceClassification

    from distilora.experiment import Experiment
    from distilora.serve import ModelRegistry

    config = tiny_experiment_config(tiny_dataset, tiny_teacher, tmp_path / "run", students=("odd",),
                                    run_lora=False, extra_routes=(toy_route,))
    results = Experiment(config).run()
    assert list(results["models"]) == ["teacher", "odd", "last-kd"]
    entry = results["models"]["last-kd"]
    assert (entry["route"], entry["layers"], entry["num_layers"]) == ("distil", [4], 1)
    assert entry["metrics"]["test"]["n"] == 32
    # Its own objective: with w_ce = w_cos = 0 the logged total is the KL term alone.
    logged = [h for h in entry["history"] if "loss" in h]
    assert logged and all(h["loss"] == pytest.approx(h["loss_kd"], rel=1e-4, abs=1e-6) for h in logged)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "last-kd")
    assert model.config.num_hidden_layers == 1
    assert (tmp_path / "run" / "predictions" / "last-kd.json").is_file()
    pairs = {(c["a"], c["b"]) for c in results["statistics"]["comparisons"]}
    assert {("odd", "last-kd"), ("last-kd", "teacher")} <= pairs
    assert "| last-kd |" in (tmp_path / "run" / "report.md").read_text()
    assert ModelRegistry.load(tmp_path / "run").names == ["teacher", "odd", "last-kd"]

    again = Experiment(config).run()
    assert again["reused_stages"] == ["teacher", "odd", "last-kd"]


# ---- the teacher-target cache follows the teacher's weights --------------------------------------------------------
def test_teacher_targets_are_rebuilt_when_the_weights_change_but_the_settings_do_not(tiny_run, tiny_dataset,
                                                                                   tiny_teacher, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from distilora.artifacts import verify_manifest, write_manifest
    from distilora.experiment import Experiment
    from distilora.training.teacher_targets import compute_teacher_targets

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    teacher_dir = run / "teacher"
    # The same stage (same settings fingerprint, manifest valid) with other weights: what a teacher retrained
    # after its directory was deleted, or on nondeterministic GPU kernels, looks like.
    manifest = verify_manifest(teacher_dir)
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir)
    with torch.no_grad():
        teacher.classifier.weight.add_(torch.randn_like(teacher.classifier.weight))
    teacher.save_pretrained(teacher_dir)
    write_manifest(teacher_dir, {k: v for k, v in manifest.items() if k not in ("files", "versions")})
    old_cache = sorted((run / ".cache").glob("teacher-targets-*.safetensors"))
    assert len(old_cache) == 1

    experiment = Experiment(tiny_experiment_config(tiny_dataset, tiny_teacher, run, students=("odd",),
                                                   run_lora=False, report=False))
    results = experiment.run()
    assert results["reused_stages"] == ["teacher"], "same settings: the teacher stage itself is reused"
    expected = compute_teacher_targets(teacher.eval(), experiment.tokenizer, experiment.encoded["train"])
    used = np.asarray(experiment.distillation_train()["teacher_logits"])
    np.testing.assert_allclose(used, expected["teacher_logits"], atol=1e-5)
    stale = RunDirectory(run)
    assert not np.allclose(used, _cached_logits(old_cache[0])), "the perturbation must change the targets"
    assert len(sorted(stale.root.glob(".cache/teacher-targets-*.safetensors"))) == 2
    assert "odd" not in results["reused_stages"], "students of a changed teacher are trained again"


def _cached_logits(path) -> np.ndarray:
    from safetensors.numpy import load_file

    return load_file(str(path))["teacher_logits"]


# ---- one run at a time per output directory ------------------------------------------------------------------------
def test_a_second_run_on_a_locked_directory_stops_at_once_naming_the_holder(tiny_dataset, tiny_teacher, tmp_path,
                                                                            capsys):
    from distilora.cli import main

    output = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from distilora.run_dir import RunDirectory
            with RunDirectory({str(output)!r}).lock():
                print("locked", flush=True)
                time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = main(["run", "--dataset", str(tiny_dataset), "--teacher", str(tiny_teacher), "--output-dir",
                     str(output), "--epochs", "1", "--max-length", "32"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert err[-1] == (f"distilora run: error: {output} is in use by another distilora run (PID {holder.pid}); "
                           "wait for it to end or choose another --output-dir")
        assert not (output / "teacher").exists() and not (output / "teacher.partial").exists()
    finally:
        holder.kill()
        holder.wait()
    with RunDirectory(output).lock():  # the holder's death released it
        assert (output / ".lock").read_text() == str(os.getpid())


def test_results_and_predictions_are_written_atomically(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.ensure_writable()
    run.write_results({"models": {}}, table="# table\n")
    run.write_predictions("odd", {"test": {"y_true": [1], "probs": [[0.2, 0.8]]}})
    assert run.read_results() == {"models": {}}
    assert run.read_predictions("odd")["test"]["y_true"] == [1] and run.read_predictions("even") is None
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == {"models": {}}
    assert not list((tmp_path / "run").rglob("*.tmp")), "no temporary files left behind"
