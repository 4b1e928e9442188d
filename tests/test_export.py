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
from distilora.inference import Classifier
from distilora.run_dir import ONNX_FILE, PARITY_FILE, PARITY_LABELS_FILE, RunDirectory
from distilora.serve import create_app

LOCAL = "http://127.0.0.1"
SPLIT_KEYS = {"n", "agreement", "disagreements", "max_abs_dp", "mean_abs_dp", "macro_f1", "macro_f1_difference"}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, tiny_teacher, tiny_dataset) -> Path:
    """A finished tiny run with a student and the two baselines that are not transformers models."""
    from conftest import tiny_experiment_config

    from distilora.experiment import Experiment

    output = tmp_path_factory.mktemp("export-run") / "run"
    config = tiny_experiment_config(tiny_dataset, tiny_teacher, output, routes=("odd", "tfidf", "majority"),
                                    report=False)
    for training in config.trainings():  # long enough to learn the synthetic task (not one class for everything)
        training.epochs, training.learning_rate, training.early_stopping_patience = 8, 3e-3, 100
    Experiment(config).run()
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


def test_fp32_export_matches_pytorch_and_records_its_parity(exported):
    run = RunDirectory(exported)
    directory = run.export_dir("odd")
    assert directory == exported / "export" / "odd"
    manifest = verify_manifest(directory)  # installed whole, checksummed
    assert {ONNX_FILE, PARITY_FILE, PARITY_LABELS_FILE, "config.json", "tokenizer.json"} <= set(manifest["files"])
    assert manifest["passed"] is True and manifest["quantize"] is None
    assert sorted(p.name for p in (exported / "export").iterdir()) == ["odd", "odd-int8"]  # no .partial left

    parity = json.loads((directory / PARITY_FILE).read_text())
    results = run.read_results()
    assert parity["passed"] is True and parity["model"] == "odd" and parity["export"] == "odd"
    for split in ("validation", "test"):
        numbers = parity[split]
        assert set(numbers) >= SPLIT_KEYS
        assert numbers["n"] == results["models"]["odd"]["metrics"][split]["n"] == 32
        assert numbers["agreement"] == 1.0 and numbers["disagreements"] == 0
        assert numbers["max_abs_dp"] < 1e-4  # fp32 ONNX computes the same function
        # The same items as the run's evaluation: the PyTorch macro-F1 is the one results.json holds.
        assert numbers["macro_f1"]["pytorch"] == pytest.approx(results["models"]["odd"]["metrics"][split]["macro_f1"])
        assert numbers["macro_f1"]["onnx"] == pytest.approx(numbers["macro_f1"]["pytorch"])
        difference = numbers["macro_f1_difference"]
        assert difference["low"] <= difference["estimate"] <= difference["high"]
        assert difference["estimate"] == pytest.approx(0.0)
        assert parity["metrics"][split]["macro_f1"] == pytest.approx(numbers["macro_f1"]["onnx"])
    assert parity["gate"] == {"min_agreement": 0.99, "agreement": 1.0, "split": "validation",
                              "rule": parity["gate"]["rule"]}
    settings = parity["settings"]
    assert settings["opset"] == ExportConfig().opset and settings["quantization"] is None
    assert settings["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert settings["versions"]["onnxruntime"] and settings["versions"]["onnx"]
    assert "cpu" in settings and parity["int8_variants"] is None
    assert parity["source"]["weights"] == RunDirectory.weights_hash(exported / "odd")


def test_int8_export_tries_every_variant_on_validation_and_keeps_the_best(exported):
    parity = json.loads((exported / "export" / "odd-int8" / PARITY_FILE).read_text())
    assert parity["export"] == "odd-int8" and parity["passed"] is True
    quantization = parity["settings"]["quantization"]
    assert quantization["type"] == "int8" and quantization["variant"] in INT8_VARIANTS
    tried = parity["int8_variants"]
    assert set(tried) == set(INT8_VARIANTS)
    chosen = tried[quantization["variant"]]
    passing = [v for v in tried.values() if v["validation_agreement"] >= 0.5]  # the gate of this export
    assert chosen in passing and chosen["quantized_weight_share"] == max(v["quantized_weight_share"] for v in passing)
    assert tried["per-channel"]["quantized_weight_share"] == 1.0
    # The tiny BERT per layer: 4 attention projections 32 × 32, a feed-forward widening 32 → 64 and narrowing back.
    assert tried["per-channel-fp32-ffn-out"]["quantized_weight_share"] == pytest.approx(1 - 2048 / 8192)
    assert tried["per-channel-fp32-ffn"]["quantized_weight_share"] == pytest.approx(1 - 4096 / 8192)
    assert parity["validation"]["agreement"] == pytest.approx(chosen["validation_agreement"])
    for split in ("validation", "test"):
        assert 0.5 <= parity[split]["agreement"] <= 1
        assert parity[split]["disagreements"] == round((1 - parity[split]["agreement"]) * parity[split]["n"])
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
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (validation|test) \| \d+ \| ([0-9.]+) \|", card.text,
                                                       re.MULTILINE)}
    assert {split: float(v) for split, v in rows.items()} == {
        split: pytest.approx(parity[split]["agreement"], abs=1e-4) for split in ("validation", "test")}
    assert ("variant `" in card.text) == (export == "odd-int8") and "Parity gate**: passed" in card.text

    # The card's plain-onnxruntime snippet, run as written (with this directory), gives the export's logits.
    snippet = re.findall(r"```python\n(.*?)```", card.text, re.DOTALL)[1]
    namespace: dict = {}
    exec(snippet.replace("path/to/this/directory", str(directory)), namespace)  # noqa: S102 - the card's own code
    expected = OnnxClassifier.from_directory(directory).logits(["some text"])
    np.testing.assert_allclose(namespace["logits"], expected, atol=1e-5)


def test_classifier_load_of_an_export_is_an_onnx_classifier(exported):
    onnx = Classifier.load(exported / "export" / "odd")
    torch_model = Classifier.load(exported, "odd")
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
        Classifier.load(directory)
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
