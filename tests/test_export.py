"""``distilora export``: ONNX fp32 / int8 exports of a tiny student, parity.json, the parity gate, bad input, a plain
onnxruntime reload, and ``distilora serve --backend onnx``."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from distilora.artifacts import verify_manifest
from distilora.cli import main as cli
from distilora.config import INT8_VARIANTS, ExportConfig, ServeConfig
from distilora.export import ExportRejected, OnnxClassifier, export_model
from distilora.export.files import PARITY_LABELS_FILE, RunExports
from distilora.inference import load_classifier
from distilora.results import RunResults
from distilora.run_dir import ONNX_FILE, PARITY_FILE, RunLayout, StageStore, read_results, write_results
from distilora.serve import create_app

LOCAL = "http://127.0.0.1"
SPLIT_KEYS = {"n", "agreement", "disagreements", "max_abs_dp", "mean_abs_dp", "macro_f1", "macro_f1_difference"}


def _run(dataset: Path, teacher: Path, output: Path, **overrides) -> None:
    """``distilora run`` of a student and the two baselines that are not transformers models (``overrides``: of the
    run's config; an existing run is reused stage by stage, as a rerun is)."""
    from conftest import tiny_experiment_config

    from distilora import run_experiment

    config = tiny_experiment_config(dataset, teacher, output, routes=("odd", "tfidf", "majority"), report=False,
                                    **overrides)
    for training in config.trainings():  # long enough to learn the synthetic task (not one class for everything)
        training.epochs, training.learning_rate, training.early_stopping_patience = 8, 3e-3, 100
    run_experiment(config)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, tiny_teacher, tiny_dataset) -> Path:
    """A finished tiny run with a student and the two baselines that are not transformers models."""
    output = tmp_path_factory.mktemp("export-run") / "run"
    _run(tiny_dataset, tiny_teacher, output)
    return output


@pytest.fixture(scope="module")
def exported(base_run, tmp_path_factory) -> Path:
    """A copy of the run with ``odd`` exported in fp32 and in int8."""
    run = tmp_path_factory.mktemp("exported") / "run"
    shutil.copytree(base_run, run)
    export_model(run, "odd", ExportConfig(min_agreement=0.99))
    export_model(run, "odd", ExportConfig(quantize="int8", min_agreement=0.5))
    return run


@pytest.fixture()
def run_copy(base_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    return run


@pytest.fixture()
def exported_copy(exported, tmp_path) -> Path:
    run = tmp_path / "exported"
    shutil.copytree(exported, run)
    return run


def test_fp32_export_matches_pytorch_and_records_its_parity(exported):
    run = RunLayout(exported)
    directory = RunExports(run).path("odd")
    assert directory == exported / "export" / "odd"
    manifest = verify_manifest(directory)  # installed whole, checksummed
    assert {ONNX_FILE, PARITY_FILE, PARITY_LABELS_FILE, "config.json", "tokenizer.json"} <= set(manifest["files"])
    assert manifest["passed"] is True and manifest["quantize"] is None
    assert sorted(p.name for p in (exported / "export").iterdir()) == ["odd", "odd-int8"]  # no .partial left

    parity = json.loads((directory / PARITY_FILE).read_text())
    results = read_results(run)
    assert parity["passed"] is True and parity["model"] == "odd" and parity["export"] == "odd"
    for split in ("validation", "test"):
        numbers = parity[split]
        assert set(numbers) >= SPLIT_KEYS
        assert numbers["n"] == results["models"]["odd"]["metrics"][split]["n"] == 32
        assert numbers["agreement"] == 1.0 and numbers["disagreements"] == 0
        assert numbers["decision_agreement"] == 1.0 and numbers["decision_disagreements"] == 0
        assert numbers["max_abs_dp"] < 1e-4  # fp32 ONNX computes the same function
        # The same items as the run's evaluation: the PyTorch macro-F1 is the one results.json holds.
        assert numbers["macro_f1"]["pytorch"] == pytest.approx(results["models"]["odd"]["metrics"][split]["macro_f1"])
        assert numbers["macro_f1"]["onnx"] == pytest.approx(numbers["macro_f1"]["pytorch"])
        difference = numbers["macro_f1_difference"]
        assert difference["low"] <= difference["estimate"] <= difference["high"]
        assert difference["estimate"] == pytest.approx(0.0)
        assert parity["metrics"][split]["macro_f1"] == pytest.approx(numbers["macro_f1"]["onnx"])
    assert parity["gate"] == {"min_agreement": 0.99, "agreement": 1.0, "split": "validation", "labels": "argmax",
                              "argmax_agreement": 1.0, "decision_agreement": 1.0, "rule": parity["gate"]["rule"]}
    settings = parity["settings"]
    assert settings["opset"] == ExportConfig().opset and settings["quantization"] is None
    assert settings["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert settings["versions"]["onnxruntime"] and settings["versions"]["onnx"]
    assert "cpu" in settings and parity["int8_variants"] is None
    assert parity["source"]["weights"] == StageStore.weights_hash(exported / "odd")
    assert parity["source"]["calibration"] == verify_manifest(exported / "odd")["files"]["calibration.json"]
    calibration = json.loads((exported / "odd" / "calibration.json").read_text())
    assert calibration["threshold"] is not None  # served at a threshold: the gate checks the labels as served
    assert parity["decision"]["rule"] == "threshold" and parity["decision"]["threshold"] == calibration["threshold"]
    assert parity["decision"]["temperature"] == calibration["temperature"]
    # The export's own scores at its threshold, as results.json has the PyTorch model's.
    at_threshold = results["models"]["odd"]["metrics_at_threshold"]
    for split in ("validation", "test"):
        assert parity["metrics_at_threshold"][split]["macro_f1"] == pytest.approx(at_threshold[split]["macro_f1"])


def test_int8_export_tries_every_variant_on_validation_and_keeps_the_best(exported):
    parity = json.loads((exported / "export" / "odd-int8" / PARITY_FILE).read_text())
    assert parity["export"] == "odd-int8" and parity["passed"] is True
    quantization = parity["settings"]["quantization"]
    assert quantization["type"] == "int8" and quantization["variant"] in INT8_VARIANTS
    tried = parity["int8_variants"]
    assert set(tried) == set(INT8_VARIANTS)
    chosen = tried[quantization["variant"]]
    passing = [v for v in tried.values()  # the gate of this export, on the labels at the argmax and as served
               if min(v["validation_agreement"], v["validation_decision_agreement"]) >= 0.5]
    assert chosen in passing and chosen["quantized_weight_share"] == max(v["quantized_weight_share"] for v in passing)
    assert tried["per-channel"]["quantized_weight_share"] == 1.0
    # The tiny BERT per layer: 4 attention projections 32 × 32, a feed-forward widening 32 → 64 and narrowing back.
    assert tried["per-channel-fp32-ffn-out"]["quantized_weight_share"] == pytest.approx(1 - 2048 / 8192)
    assert tried["per-channel-fp32-ffn"]["quantized_weight_share"] == pytest.approx(1 - 4096 / 8192)
    assert parity["validation"]["agreement"] == pytest.approx(chosen["validation_agreement"])
    assert parity["validation"]["decision_agreement"] == pytest.approx(chosen["validation_decision_agreement"])
    for split in ("validation", "test"):
        for kind in ("", "decision_"):
            assert 0.5 <= parity[split][f"{kind}agreement"] <= 1
            assert parity[split][f"{kind}disagreements"] == round((1 - parity[split][f"{kind}agreement"])
                                                                  * parity[split]["n"])
    import onnx

    ops = {node.op_type for node in onnx.load(str(exported / "export" / "odd-int8" / ONNX_FILE)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops  # int8 weights, activations quantized at run time


@pytest.mark.parametrize("export", ["odd", "odd-int8"])
def test_plain_onnxruntime_and_tokenizer_reproduce_the_parity_labels(exported, tiny_dataset, export):
    # Only onnxruntime, transformers and the export directory: no distilora code loads or runs the model.
    import numpy as np
    import onnxruntime
    from transformers import AutoTokenizer

    directory = exported / "export" / export
    with (tiny_dataset / "test.csv").open(newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    session = onnxruntime.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
    tokenizer = AutoTokenizer.from_pretrained(directory)
    batch = tokenizer(texts, truncation=True, padding=True, return_tensors="np")
    feed = {node.name: batch[node.name].astype(np.int64) for node in session.get_inputs()}
    labels = session.run(["logits"], feed)[0].argmax(axis=1).tolist()

    recorded = json.loads((directory / "parity_labels.json").read_text())
    assert labels == recorded["test"]["onnx"]
    parity = json.loads((directory / "parity.json").read_text())
    assert np.mean(np.array(labels) == recorded["test"]["pytorch"]) == pytest.approx(parity["test"]["agreement"])
    decided = np.array(recorded["test"]["onnx_decision"]) == recorded["test"]["pytorch_decision"]
    assert np.mean(decided) == pytest.approx(parity["test"]["decision_agreement"])


@pytest.mark.parametrize("export", ["odd", "odd-int8"])
def test_every_export_has_a_model_card_with_its_parity_and_code_that_runs(exported, export):
    import re

    import numpy as np
    from huggingface_hub import ModelCard

    directory = exported / "export" / export
    assert "README.md" in verify_manifest(directory)["files"]  # covered by the export's checksums
    card = ModelCard.load(directory / "README.md")
    parity = json.loads((directory / PARITY_FILE).read_text())
    data = card.data.to_dict()
    assert data["library_name"] == "onnx" and data["pipeline_tag"] == "text-classification"
    assert "onnx" in data["tags"] and ("int8" in data["tags"]) == (export == "odd-int8")
    # The model-index holds the export's own test macro-F1, not its PyTorch model's.
    (index,) = data["model-index"]
    f1 = {r["dataset"]["split"]: r["metrics"][0]["value"] for r in index["results"]
          if r["metrics"][0]["type"] == "f1"}
    assert f1["test"] == pytest.approx(parity["metrics"]["test"]["macro_f1"], abs=1e-4)
    rows = {m.group(1): m.group(2, 3) for m in re.finditer(r"^\| (validation|test) \| \d+ \| ([0-9.]+) \| ([0-9.]+) \|",
                                                          card.text, re.MULTILINE)}
    assert {split: tuple(map(float, v)) for split, v in rows.items()} == {  # at the argmax, and as served
        split: (pytest.approx(parity[split]["agreement"], abs=1e-4),
                pytest.approx(parity[split]["decision_agreement"], abs=1e-4)) for split in ("validation", "test")}
    assert f"calibrated probability is ≥ {parity['decision']['threshold']:.4f}" in card.text
    assert ("variant `" in card.text) == (export == "odd-int8") and "Parity gate**: passed" in card.text

    # The card's plain-onnxruntime snippet, run as written (with this directory), gives the export's logits.
    snippet = re.findall(r"```python\n(.*?)```", card.text, re.DOTALL)[1]
    namespace: dict = {}
    exec(snippet.replace("path/to/this/directory", str(directory)), namespace)  # noqa: S102 - the card's own code
    expected = OnnxClassifier.from_directory(directory).logits(["some text"])
    np.testing.assert_allclose(namespace["logits"], expected, atol=1e-5)


def test_classifier_load_of_an_export_is_an_onnx_classifier(exported):
    onnx = load_classifier(exported / "export" / "odd")
    torch_model = load_classifier(exported, "odd")
    assert isinstance(onnx, OnnxClassifier) and onnx.backend == "onnxruntime" and torch_model.backend == "pytorch"
    assert onnx.labels == torch_model.labels and onnx.layers == torch_model.layers == [1, 3]
    assert onnx.max_length == torch_model.max_length
    texts = ["you are so kind", "hate trash vermin " * 30, "coffee"]
    for long_text in ("windows", "truncate"):
        ours, theirs = onnx.predict(texts, long_text=long_text), torch_model.predict(texts, long_text=long_text)
        assert [p.label for p in ours] == [p.label for p in theirs]
        assert [p.windows for p in ours] == [p.windows for p in theirs]
        assert [p.truncated for p in ours] == [False, long_text == "truncate", False]
        assert (ours[1].windows > 1) == (long_text == "windows")
        for a, b in zip(ours, theirs, strict=True):
            assert a.scores == pytest.approx(b.scores, abs=1e-4)


def _broken_exporter(monkeypatch, answer: int) -> None:
    """An exporter that writes a model answering class ``answer`` for every text."""
    import copy

    import torch

    from distilora.export import build

    real = build.export_onnx

    def export(model, tokenizer, path, opset):
        broken = copy.deepcopy(model)
        with torch.no_grad():
            broken.classifier.bias[answer] += 1000.0
        return real(broken, tokenizer, path, opset)

    monkeypatch.setattr(build, "export_onnx", export)


def test_below_the_gate_the_numbers_are_written_and_the_exit_status_is_1(run_copy, monkeypatch, capsys):
    predicted = json.loads((run_copy / "predictions" / "odd.json").read_text())["validation"]["probs"]
    share_of_class_1 = sum(p[1] > p[0] for p in predicted) / len(predicted)
    _broken_exporter(monkeypatch, answer=int(share_of_class_1 < 0.5))  # the class PyTorch predicts least

    assert cli(["export", "--run", str(run_copy), "--model", "odd"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("distilora")]  # not progress bars
    assert len(err) == 1 and "parity gate failed" in err[0] and "below --min-agreement 0.99" in err[0]
    directory = run_copy / "export" / "odd"
    parity = json.loads((directory / PARITY_FILE).read_text())
    assert parity["passed"] is False and parity["gate"]["agreement"] < 0.99
    assert verify_manifest(directory)["passed"] is False
    with pytest.raises(ExportRejected, match="failed its parity gate"):
        load_classifier(directory)
    with pytest.raises(FileNotFoundError, match="no ONNX export that passed"):
        create_app(run_copy, settings=ServeConfig(backend="onnx", model_process=False))


@pytest.mark.parametrize(("args", "phrase"), [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--model", "even"], "the run has no model 'even'"),
    (["--model", "tfidf"], "not exportable to ONNX; exportable models of this run: teacher, odd"),
    (["--model", "majority"], "not exportable to ONNX"),
    (["--model", "odd", "--min-agreement", "0"], "--min-agreement must be in (0, 1]"),
    (["--model", "odd", "--min-agreement", "1.5"], "--min-agreement must be in (0, 1]"),
])
def test_bad_input_is_one_line_and_leaves_nothing_in_export(run_copy, capsys, args, phrase):
    assert cli(["export", "--run", str(run_copy), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("distilora export: error: ") and phrase in err[0], err
    assert not (run_copy / "export").exists()


def test_a_run_without_results_and_a_failing_export_leave_nothing(run_copy, tmp_path, monkeypatch, capsys):
    assert cli(["export", "--run", str(tmp_path / "nothing"), "--model", "odd"]) == 2
    assert "results.json: not found" in capsys.readouterr().err

    from distilora.export import build

    def crash(*args, **kwargs):
        raise RuntimeError("exporter exploded\nwith a long story")

    monkeypatch.setattr(build, "export_onnx", crash)
    assert cli(["export", "--run", str(run_copy), "--model", "odd"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("distilora")]
    assert err == ["distilora export: error: --model odd: the ONNX export failed (RuntimeError: exporter exploded)"]
    assert not (run_copy / "export").exists()


def test_serve_backend_onnx_serves_the_exports(exported):
    app = create_app(exported, settings=ServeConfig(backend="onnx"))  # the models in a child process, as served
    with TestClient(app, base_url=LOCAL) as client:
        info = client.get("/api/v1/models").json()
        by_name = {model["name"]: model for model in info["models"]}
        assert list(by_name) == ["odd", "odd-int8"] and info["default_model"] == "odd"
        assert {m["backend"] for m in by_name.values()} == {"onnxruntime"}
        assert {m["precision"] for m in by_name.values()} == {None}  # no torch precision applies to onnxruntime
        assert by_name["odd"]["quantization"] is None and by_name["odd-int8"]["quantization"] == "int8"
        assert by_name["odd"]["parity"] == {"validation": 1.0, "test": 1.0}
        assert by_name["odd"]["route"] == "distil" and by_name["odd"]["layers"] == [1, 3]
        assert by_name["odd"]["size_mb"] > 0 and by_name["odd-int8"]["parity"]["test"] >= 0.5
        assert by_name["odd"]["decision_parity"] == {"validation": 1.0, "test": 1.0}
        assert {(m["stale"], m["stale_reason"]) for m in by_name.values()} == {(False, None)}
        for name, model in by_name.items():  # each export's own scores at its threshold, not its PyTorch model's
            parity = json.loads((exported / "export" / name / PARITY_FILE).read_text())
            assert model["decision"]["threshold"] == parity["decision"]["threshold"] is not None
            assert model["metrics_at_threshold"]["test"]["macro_f1"] == pytest.approx(
                parity["metrics_at_threshold"]["test"]["macro_f1"])
        for name in ("odd", "odd-int8"):
            response = client.post("/api/v1/classify", json={"texts": ["you are so kind", "vermin"], "model": name})
            assert response.status_code == 200, response.text
            results = response.json()["results"]
            assert len(results) == 2 and all(r["label"] in info["labels"] for r in results)
            assert all(sum(r["scores"].values()) == pytest.approx(1.0, abs=1e-4) for r in results)


def test_parity_is_refused_on_data_other_than_the_runs(run_copy, tiny_dataset, tmp_path, capsys):
    other = tmp_path / "other-data"
    shutil.copytree(tiny_dataset, other)
    test_csv = other / "test.csv"
    test_csv.write_text(test_csv.read_text().replace("coffee", "tea", 1))
    assert cli(["export", "--run", str(run_copy), "--model", "odd", "--dataset", str(other)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("distilora")]
    assert len(err) == 1 and "not the data this run was trained and evaluated on" in err[0]
    assert not (run_copy / "export").exists()


# ---- what is served is what was gated -----------------------------------------------------------------------------
def _set_calibration(run: Path, name: str, **changes) -> dict:
    """Refit model ``name``'s calibration as ``distilora run`` writes it (calibration.json added to the finished
    model directory, results.json's ``calibration`` and ``metrics_at_threshold``); the new results.json entry."""
    import dataclasses

    from distilora.evaluation.calibration import Calibration, calibration_summary
    from distilora.export.build import run_splits
    from distilora.run_dir import CALIBRATION_FILE

    run_dir = RunLayout(run)
    results = read_results(run_dir)
    calibration = Calibration.from_json((run / name / CALIBRATION_FILE).read_text())
    calibration = dataclasses.replace(calibration, **changes)
    splits = run_splits(results)
    model = load_classifier(run, name)
    summary, at_threshold = calibration_summary(calibration, {s: model.logits(t) for s, (t, _) in splits.items()},
                                                {s: y for s, (_, y) in splits.items()})
    assert StageStore().add_to_stage(run / name, {CALIBRATION_FILE: calibration.to_json()})
    results["models"][name].update(calibration=summary, metrics_at_threshold=at_threshold)
    write_results(run_dir, RunResults.of(results))
    return results["models"][name]


def test_an_export_is_gated_on_the_labels_it_serves_at_its_threshold_not_only_at_the_argmax(
        run_copy, monkeypatch, capsys):
    import copy

    import numpy as np
    import torch

    from distilora.export import build
    from distilora.export.build import run_splits

    # The PyTorch margins (logit of `toxic` − logit of `neutral`) on the gated items; the smallest sets a shift that
    # changes no argmax, and the threshold is put just below one validation item's score, within that shift.
    model = load_classifier(run_copy, "odd")
    splits = run_splits(read_results(RunLayout(run_copy)))
    margins = {split: np.diff(model.logits(texts), axis=1)[:, 0] for split, (texts, _) in splits.items()}
    shift = 0.5 * float(np.abs(np.concatenate(list(margins.values()))).min())
    temperature = model.calibration.temperature
    item = float(margins["validation"][margins["validation"] > 0].min())
    threshold = float(1 / (1 + np.exp(-(item - shift / 2) / temperature)))
    assert shift > 1e-3 and 0.5 < threshold < 1  # an item that the shift moves across the threshold, clearly
    _set_calibration(run_copy, "odd", threshold=threshold, positive_index=1)

    real = build.export_onnx

    def export(model, tokenizer, path, opset):  # a model whose `neutral` logit is a little higher everywhere
        shifted = copy.deepcopy(model)
        with torch.no_grad():
            shifted.classifier.bias[0] += shift
        return real(shifted, tokenizer, path, opset)

    monkeypatch.setattr(build, "export_onnx", export)
    assert cli(["export", "--run", str(run_copy), "--model", "odd"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("distilora")]
    assert len(err) == 1 and "at the served decision on validation is below --min-agreement 0.99" in err[0], err
    parity = json.loads((run_copy / "export" / "odd" / PARITY_FILE).read_text())
    assert parity["validation"]["agreement"] == parity["test"]["agreement"] == 1.0  # the argmax gate alone passes
    assert parity["validation"]["decision_disagreements"] >= 1
    assert parity["gate"]["labels"] == "decision" and parity["gate"]["decision_agreement"] < 0.99
    assert parity["passed"] is False and parity["decision"]["threshold"] == threshold
    card = (run_copy / "export" / "odd" / "README.md").read_text()
    assert "Parity gate**: **failed**" in card and "(decision labels, on validation)" in card


def test_a_failed_re_export_goes_beside_the_passing_export_which_stays_served(exported_copy, monkeypatch, capsys):
    from distilora.artifacts import sha256_file

    passing = exported_copy / "export" / "odd"
    onnx_sum = sha256_file(passing / ONNX_FILE)
    _broken_exporter(monkeypatch, answer=0)

    assert cli(["export", "--run", str(exported_copy), "--model", "odd"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("distilora")]
    assert len(err) == 1 and f"the passing {passing} is kept and still served" in err[0], err
    assert verify_manifest(passing)["passed"] is True and sha256_file(passing / ONNX_FILE) == onnx_sum
    (rejected,) = (exported_copy / "export").glob("odd.rejected-*")
    assert rejected.name[len("odd.rejected-"):].endswith("Z") and str(rejected / PARITY_FILE) in err[0]
    assert verify_manifest(rejected)["passed"] is False
    assert json.loads((rejected / PARITY_FILE).read_text())["passed"] is False
    with pytest.raises(ExportRejected):
        load_classifier(rejected)
    assert list(RunExports(RunLayout(exported_copy)).finished()) == ["odd", "odd-int8"]
    app = create_app(exported_copy, settings=ServeConfig(backend="onnx", model_process=False))
    with TestClient(app, base_url=LOCAL) as client:
        assert [m["name"] for m in client.get("/api/v1/models").json()["models"]] == ["odd", "odd-int8"]
        assert client.post("/api/v1/classify", json={"texts": ["vermin"], "model": "odd"}).status_code == 200


def test_a_re_export_never_deletes_files_it_did_not_write(exported_copy, caplog):
    previous = exported_copy / "export" / "odd"
    (previous / "NOTES.md").write_text("my notes on this export")

    export_model(exported_copy, "odd")
    (aside,) = (exported_copy / "export").glob("odd.old-*")
    assert (aside / "NOTES.md").read_text() == "my notes on this export" and (aside / ONNX_FILE).is_file()
    assert any("NOTES.md" in r.getMessage() and aside.name in r.getMessage() for r in caplog.records)
    assert verify_manifest(previous)["passed"] is True and not (previous / "NOTES.md").exists()
    served = RunExports(RunLayout(exported_copy)).finished()
    assert list(served) == ["odd", "odd-int8"]  # what was set aside is not served

    export_model(exported_copy, "odd")  # over an export holding only what it wrote: replaced, nothing set aside
    assert sorted(p.name for p in (exported_copy / "export").iterdir()) == ["odd", "odd-int8", aside.name]


def test_an_export_whose_models_calibration_was_refitted_is_served_stale_with_its_own_decision_and_metrics(
        exported_copy, caplog):
    gated = json.loads((exported_copy / "export" / "odd" / "calibration.json").read_text())
    before = read_results(RunLayout(exported_copy))["models"]["odd"]["metrics_at_threshold"]
    refitted = _set_calibration(exported_copy, "odd", threshold=0.999, policy="target-precision", target=1.0,
                                temperature=1.0)  # what `distilora run --target-precision 1` could write

    app = create_app(exported_copy, settings=ServeConfig(backend="onnx", model_process=False))
    with TestClient(app, base_url=LOCAL) as client:
        odd = {m["name"]: m for m in client.get("/api/v1/models").json()["models"]}["odd"]
        answer = client.post("/api/v1/classify", json={"texts": ["vermin"], "model": "odd"}).json()
    # It serves the decision it was gated at, and says so with its own scores at that threshold (an fp32 export's
    # are its PyTorch model's before the refit), not the refitted PyTorch model's.
    assert odd["decision"]["threshold"] == answer["decision"]["threshold"] == gated["threshold"]
    assert odd["decision"]["policy"] == gated["policy"] and odd["decision"]["temperature"] == gated["temperature"]
    assert odd["metrics_at_threshold"]["test"]["loss"] == pytest.approx(before["test"]["loss"], rel=1e-4)
    refitted_loss = refitted["metrics_at_threshold"]["test"]["loss"]
    assert odd["metrics_at_threshold"]["test"]["loss"] != pytest.approx(refitted_loss)
    stale = [r.getMessage() for r in caplog.records if "is stale" in r.getMessage()]
    assert len(stale) == 2 and all("export it again" in message for message in stale), stale  # odd and odd-int8
    assert any(str(exported_copy / "export" / "odd") in m and "P(toxic) ≥ 0.999" in m for m in stale)
    assert odd["stale"] is True
    assert "calibration of odd was refitted" in odd["stale_reason"] and "0.999" in odd["stale_reason"]


def test_an_export_gated_at_the_argmax_only_is_named_in_the_log(exported_copy, caplog):
    from distilora.artifacts import add_to_manifest

    directory = exported_copy / "export" / "odd"
    parity = json.loads((directory / PARITY_FILE).read_text())
    for split in ("validation", "test"):  # parity.json as an export made before both labels were gated
        del parity[split]["decision_agreement"], parity[split]["decision_disagreements"]
    (directory / PARITY_FILE).write_text(json.dumps(parity))
    add_to_manifest(directory, json.loads((directory / "manifest.json").read_text()), [PARITY_FILE])

    models = create_app(exported_copy, settings=ServeConfig(backend="onnx", model_process=False)
                        ).state.registry.describe_all()["models"]
    assert [m["name"] for m in models] == ["odd", "odd-int8"]  # still served
    assert models[0]["decision_parity"] is None and set(models[1]["decision_parity"]) == {"validation", "test"}
    (warning,) = [r.getMessage() for r in caplog.records if "argmax only" in r.getMessage()]
    assert warning.startswith(f"{directory} was gated on its labels at the argmax only")
    assert "export it again" in warning


def test_rerunning_with_a_target_policy_makes_the_export_stale(exported_copy, tiny_dataset, tiny_teacher, caplog):
    from distilora.config import CalibrationConfig

    _run(tiny_dataset, tiny_teacher, exported_copy, calibration=CalibrationConfig(target_recall=1.0))
    registry_models = create_app(exported_copy, settings=ServeConfig(backend="onnx", model_process=False)
                                 ).state.registry.describe_all()["models"]
    assert {m["name"]: m["stale"] for m in registry_models} == {"odd": True, "odd-int8": True}
    assert all("recall ≥ 1" in m["stale_reason"] and m["decision"]["policy"] == "max-macro-f1"
               for m in registry_models)
