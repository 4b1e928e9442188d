"""The route registry and the run directory: adding a route is one registration, the teacher-target cache follows
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
from distilora.results import RunResults
from distilora.routes import (
    DistilledStudent,
    RouteError,
    RouteKind,
    RouteSetup,
    configured_routes,
    create_route,
    register_route,
    registered_routes,
    route_groups,
    routes_tagged,
    unregister_route,
)
from distilora.run_dir import RunLayout, RunLock, read_predictions, read_results, write_predictions, write_results
from distilora.training.losses import DistillationObjective


# ---- the registry ------------------------------------------------------------------------------------------------
def test_the_default_routes_come_from_the_registry_in_run_order():
    routes = configured_routes(ExperimentConfig(), teacher_depth=6)
    assert [(r.name, r.kind, r.layers) for r in routes] == [
        ("teacher", RouteKind.FINE_TUNE, None), ("odd", RouteKind.DISTIL, [1, 3, 5]),
        ("even", RouteKind.DISTIL, [2, 4, 6]), ("lora", RouteKind.LORA, None),
        ("odd-no-kd", RouteKind.BASELINE, [1, 3, 5]), ("tfidf", RouteKind.BASELINE, None),
        ("majority", RouteKind.BASELINE, None)]
    assert [r.main_seed_only for r in routes] == [True, False, False, False, False, True, True]
    assert [r.needs_teacher_targets for r in routes] == [False, True, True, False, False, False, False]
    assert set(route_groups()["all"]) <= set(registered_routes())


def test_the_groups_are_derived_from_the_registrations_in_run_order():
    assert route_groups() == {
        "default": ("teacher", "odd", "even", "lora", "odd-no-kd", "tfidf", "majority"),
        "all": ("teacher", "odd", "even", "first", "last", "importance", "odd-no-kd", "tfidf", "majority", "lora",
                "lora-dora", "lora-rslora", "lora-pissa", "lora-adalora", "lora-kd", "odd-lora")}
    assert sorted(route_groups()["all"]) == registered_routes()
    register_route("extra", lambda setup: create_route("odd", setup), groups=("default", "extras"))
    try:
        groups = route_groups()
        assert groups["default"][-2:] == ("majority", "extra") and groups["all"][-1] == "extra"
        assert groups["extras"] == ("extra",) and list(groups)[-1] == "all"
    finally:
        unregister_route("extra")
    assert "extra" not in route_groups()["all"] and "extras" not in route_groups()


def test_lora_variants_are_found_through_the_registry():
    assert routes_tagged("lora-variant") == {"lora": "lora", "dora": "lora-dora", "rslora": "lora-rslora",
                                             "pissa": "lora-pissa", "adalora": "lora-adalora"}
    assert {create_route(name, RouteSetup(4, 2)).variant for name in routes_tagged("lora-variant").values()} == {
        "lora", "dora", "rslora", "pissa", "adalora"}


def test_route_kinds_and_the_registry_import_without_torch():
    """The report, the service and the checks need only the kinds: importing them must not load the trainer."""
    code = ("import sys, distilora.routes.kinds, distilora.routes.registry, distilora.routes; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "[]"


def test_the_all_group_and_layer_strategies_follow_the_teacher_and_student_depth():
    routes = {r.name: r for r in configured_routes(ExperimentConfig(routes=("all",)), teacher_depth=12)}
    assert len(routes) == 16
    assert routes["first"].layers == [1, 2, 3, 4, 5, 6] and routes["last"].layers == [7, 8, 9, 10, 11, 12]
    assert routes["odd"].layers == routes["odd-no-kd"].layers == routes["odd-lora"].layers == [1, 3, 5, 7, 9, 11]
    assert routes["importance"].layers is None  # chosen from the trained teacher
    assert {routes[n].kind for n in ("lora-kd", "odd-lora")} == {RouteKind.HYBRID}
    assert [routes[f"lora-{v}"].variant for v in ("dora", "rslora", "pissa", "adalora")] == [
        "dora", "rslora", "pissa", "adalora"]
    deep = {r.name: r.layers for r in configured_routes(
        ExperimentConfig(routes=("first", "last"), student_depth=2), teacher_depth=6)}
    assert deep == {"teacher": None, "first": [1, 2], "last": [5, 6]}


def test_layer_lists_become_students_and_bad_selections_are_refused():
    routes = configured_routes(ExperimentConfig(routes=(), students=("6,1",)), teacher_depth=6)
    assert [(r.name, r.layers) for r in routes] == [("teacher", None), ("layers-6-1", [6, 1])]
    with pytest.raises(RouteError, match="'odd' and 'layers-1-3-5' select the same student layers"):
        configured_routes(ExperimentConfig(students=("odd", "1,3,5")), teacher_depth=6)
    with pytest.raises(RouteError, match="unknown route 'nope'; registered: .*groups: all, default"):
        configured_routes(ExperimentConfig(routes=("nope",)), teacher_depth=6)
    with pytest.raises(RouteError, match="already registered"):
        register_route("odd", lambda setup: create_route("odd", setup))
    for depth in (0, 6, 7):
        with pytest.raises((RouteError, ValueError), match="student-depth"):
            configured_routes(ExperimentConfig(student_depth=depth), teacher_depth=6)
    # A group and its members, or a strategy named twice, select each route once.
    assert [r.name for r in configured_routes(ExperimentConfig(routes=("default", "odd"), students=("odd",)),
                                              teacher_depth=6)] == list(route_groups()["default"])


@pytest.mark.parametrize(("flags", "message"), [
    (["--routes", "teacher,nope"], "unknown route 'nope'"),
    (["--layers", "middle"], "unknown route 'middle'"),
    (["--lora-variant", "qlora"], "invalid choice: 'qlora'"),
    (["--student-depth", "0"], "--student-depth must be > 0"),
    (["--student-depth", "4"], "--student-depth 4: a student of a 4-layer teacher needs 1 to 3 layers"),
    (["--w-hidden", "-1"], "--w-hidden must be >= 0"),
    (["--class-weight", "inverse"], "invalid choice: 'inverse'"),
])
def test_bad_route_choices_are_one_clear_line_before_any_training(flags, message, tiny_teacher, tiny_dataset,
                                                                  tmp_path, capsys):
    from distilora.cli import main

    output = tmp_path / "run"
    try:
        code = main(["run", "--dataset", str(tiny_dataset), "--teacher", str(tiny_teacher), "--output-dir",
                     str(output), *flags])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not output.exists()


def test_unknown_extra_route_is_refused_before_anything_is_written(tiny_teacher, tiny_dataset, tmp_path, capsys):
    from distilora.cli import main

    output = tmp_path / "run"
    code = main(["run", "--dataset", str(tiny_dataset), "--teacher", str(tiny_teacher), "--output-dir", str(output),
                 "--routes", "no-such-route"])
    assert code == 2
    assert "unknown route 'no-such-route'" in capsys.readouterr().err
    assert not output.exists()


# ---- a route defined in this module, registered with its group, needs no edit anywhere else ------------------------
class LastLayerKD(DistilledStudent):
    """A toy route: a one-layer student from the teacher's last layer, distilled on the KL term alone."""

    def objective(self, ctx) -> DistillationObjective:
        temperature = ctx.config.distillation.temperature
        return DistillationObjective(DistillationConfig(w_ce=0, w_kd=1, w_cos=0, temperature=temperature))

    def fingerprint_parts(self, ctx) -> tuple:
        return (*super().fingerprint_parts(ctx), "kl-only")


@pytest.fixture
def toy_route():
    register_route("last-kd", lambda setup: LastLayerKD("last-kd", [setup.teacher_depth]), groups=("toys",))
    yield "last-kd"
    unregister_route("last-kd")


def test_a_registered_route_is_trained_evaluated_reported_served_and_reused(toy_route, tiny_teacher, tiny_dataset,
                                                                            tmp_path):
    from fastapi.testclient import TestClient
    from transformers import AutoModelForSequenceClassification

    from distilora import run_experiment
    from distilora.serve import ModelRegistry, create_app

    assert route_groups()["toys"] == (toy_route,) and toy_route in route_groups()["all"]
    config = tiny_experiment_config(tiny_dataset, tiny_teacher, tmp_path / "run", routes=("odd", "toys"))
    results = run_experiment(config)
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
    registry = ModelRegistry.load(tmp_path / "run")
    assert registry.names == ["teacher", "odd", "last-kd"]
    with TestClient(create_app(registry=registry), base_url="http://127.0.0.1") as client:
        answer = client.post("/api/v1/classify", json={"texts": ["hello there"], "model": "last-kd"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "last-kd"

    again = run_experiment(config)
    assert again["reused_stages"] == ["teacher", "odd", "last-kd"]


# ---- the teacher-target cache follows the teacher's weights --------------------------------------------------------
def test_teacher_targets_are_rebuilt_when_the_weights_change_but_the_settings_do_not(tiny_run, tiny_dataset,
                                                                                   tiny_teacher, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from distilora import run_experiment
    from distilora.artifacts import verify_manifest, write_manifest
    from distilora.experiment import RunContext
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

    config = tiny_experiment_config(tiny_dataset, tiny_teacher, run, routes=("odd",), report=False)
    results = run_experiment(config)
    assert results["reused_stages"] == ["teacher"], "same settings: the teacher stage itself is reused"
    ctx = RunContext(config)
    expected = compute_teacher_targets(teacher.eval(), ctx.tokenizer, ctx.encoded["train"])
    caches = sorted((run / ".cache").glob("teacher-targets-*.safetensors"))
    assert len(caches) == 2
    [used_file] = [path for path in caches if path != old_cache[0]]
    used = _cached_logits(used_file)
    np.testing.assert_allclose(used, expected["teacher_logits"], atol=1e-5)
    assert not np.allclose(used, _cached_logits(old_cache[0])), "the perturbation must change the targets"
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
            from distilora.run_dir import RunLayout, RunLock
            with RunLock(RunLayout({str(output)!r})):
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
    with RunLock(RunLayout(output)):  # the holder's death released it
        assert (output / ".lock").read_text() == str(os.getpid())


def test_results_and_predictions_are_written_atomically(tmp_path):
    run = RunLayout(tmp_path / "run")
    run.ensure_writable()
    write_results(run, RunResults.of({"models": {}}), table="# table\n")
    write_predictions(run, "odd", {"test": {"y_true": [1], "probs": [[0.2, 0.8]]}})
    assert read_results(run) == {"models": {}}
    assert read_predictions(run, "odd")["test"]["y_true"] == [1] and read_predictions(run, "even") is None
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == {"models": {}}
    assert not list((tmp_path / "run").rglob("*.tmp")), "no temporary files left behind"
