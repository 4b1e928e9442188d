"""Inference backends: a backend added in one module is loaded, served and scores files; the built-in ones share the
base's facts; the dispatcher's order; ``distilora.inference`` stands below ``export`` and above ``evaluation``."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

import distilora
from distilora import ScoreConfig, score_file
from distilora.inference import (
    OnnxClassifier,
    TextBaselineClassifier,
    TorchClassifier,
    load_classifier,
    register_backend,
    registered_backends,
    unregister_backend,
)
from distilora.inference.registry import backend_for
from distilora.models.text_baselines import fit_majority
from distilora.results import RunResults
from distilora.run_dir import RunLayout, write_results
from distilora.serve import create_app
from tests.keyword_model import KEYWORD, long_text_with_keyword_at_end

LABELS = ["neutral", "toxic"]
TEXTS = ["you are kind", f"you are an {KEYWORD}", "sunny garden today", f"{KEYWORD} {KEYWORD}"]
FACTS = ("labels", "name", "tokenizer", "max_length", "batch_size", "device", "layers", "precision", "calibration")
"""What every classifier states, set once by ``Classifier.__init__``."""


@pytest.fixture
def rule_backend():
    """The keyword-rule backend, registered by importing its module (and removed again after the test)."""
    module = importlib.import_module("tests.keyword_rule_backend")
    if module.BACKEND not in {backend.name for backend in registered_backends()}:
        module = importlib.reload(module)
    yield module
    unregister_backend(module.BACKEND)


@pytest.fixture
def rule_run(rule_backend, keyword_model: Path, tmp_path: Path) -> Path:
    """A run whose one model, ``rule``, is a keyword-rule directory (the keyword model's tokenizer)."""
    run = tmp_path / "run"
    rule_backend.save_rule(run / "rule", keyword_model, KEYWORD, LABELS)
    write_results(RunLayout(run), RunResults.of({"labels": LABELS, "models": {"rule": {}}}))
    return run


def test_a_backend_registered_in_one_module_is_what_load_classifier_gives_for_its_directories(rule_run,
                                                                                              keyword_model):
    rule = load_classifier(rule_run, "rule")
    assert type(rule).__name__ == "KeywordRuleClassifier" and rule.backend == "keyword-rule"
    assert rule.labels == LABELS and rule.name == "rule" and rule.calibration is None
    keyword = load_classifier(keyword_model)
    assert [p.label for p in rule.predict(TEXTS)] == [p.label for p in keyword.predict(TEXTS)] == \
        ["neutral", "toxic", "neutral", "toxic"]
    long = long_text_with_keyword_at_end()
    windowed, = rule.predict([long])
    assert windowed.label == "toxic" and windowed.windows > 1  # the base's windows, for this backend too
    assert rule.predict([long], long_text="truncate")[0].label == "neutral"


def test_a_backend_registered_in_one_module_is_served_by_the_model_process(rule_run):
    expected = load_classifier(rule_run, "rule").predict(TEXTS)
    with TestClient(create_app(rule_run), base_url="http://127.0.0.1") as client:
        answer = client.post("/api/v1/classify", json={"texts": TEXTS, "model": "rule"})
        models = client.get("/api/v1/models").json()["models"]
    assert answer.status_code == 200, answer.text
    served = answer.json()["results"]
    assert [r["label"] for r in served] == [p.label for p in expected]
    for result, prediction in zip(served, expected, strict=True):
        assert result["scores"] == pytest.approx(prediction.scores, abs=1e-6)
    assert [(m["name"], m["backend"], m["labels"]) for m in models] == [("rule", "keyword-rule", LABELS)]


def test_a_backend_registered_in_one_module_scores_files(rule_run, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("text\n" + "\n".join(TEXTS) + "\n", encoding="utf-8")
    summary = score_file(rule_run, "rule", source, tmp_path / "out.parquet", ScoreConfig(progress=False))
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [row["label"] for row in rows] == ["neutral", "toxic", "neutral", "toxic"]
    assert summary.scored == len(TEXTS) and summary.flagged == 2
    assert summary.backend.startswith("backend keyword-rule:")


def tiny_onnx_model(path: Path) -> Path:
    """An ONNX graph of two int64 inputs whose logits are (-n, n), n the number of tokens read."""
    from onnx import TensorProto, helper, save

    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
              for name in ("input_ids", "attention_mask")]
    nodes = [helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
             helper.make_node("ReduceSum", ["mask", "axes"], ["length"], keepdims=1),
             helper.make_node("Neg", ["length"], ["negative"]),
             helper.make_node("Concat", ["negative", "length"], ["logits"], axis=1)]
    graph = helper.make_graph(nodes, "tokens_read", inputs,
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
                              initializer=[helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(path))
    return path


def test_every_built_in_backend_states_the_base_facts_through_its_init(tiny_run, tmp_path):
    torch_model = load_classifier(tiny_run, "odd", device="cpu")
    onnx_model = OnnxClassifier.from_file(tiny_onnx_model(tmp_path / "tiny.onnx"), torch_model.tokenizer,
                                          torch_model.model.config, name="odd")
    baseline = TextBaselineClassifier(fit_majority(LABELS, [0, 1, 1]), name="majority")
    for backend in (TorchClassifier, OnnxClassifier, TextBaselineClassifier):
        assert not set(FACTS) & set(vars(backend)), backend  # none re-defined as a class attribute or property
    for model in (torch_model, onnx_model, baseline):
        assert set(FACTS) <= set(vars(model)), model.backend
        assert [p.label for p in model.predict(TEXTS)] and set(model.predict(TEXTS)[0].scores) == set(LABELS)
    assert torch_model.labels == onnx_model.labels == baseline.labels == LABELS
    assert torch_model.layers == onnx_model.layers == [1, 3] and baseline.layers is None
    assert torch_model.device == onnx_model.device == baseline.device == "cpu"
    assert torch_model.max_length == onnx_model.max_length == 32 and baseline.tokenizer is None
    assert torch_model.precision == "fp32" and onnx_model.precision is None and baseline.precision is None
    assert [p.label for p in onnx_model.predict(TEXTS)] == ["toxic"] * len(TEXTS)  # the graph's rule, run by ORT


def test_backends_are_asked_by_priority_then_in_the_order_they_registered(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    names = ["first-of-equals", "second-of-equals", "asked-first"]
    try:
        for name, priority in zip(names, (0, 0, 5), strict=True):
            register_backend(name, lambda directory: True, lambda directory, options: None, priority=priority)
        assert backend_for(tmp_path).name == "asked-first"
        unregister_backend("asked-first")
        assert backend_for(tmp_path).name == "first-of-equals"  # and before PyTorch, which reads any config.json
    finally:
        for name in names:
            unregister_backend(name)
    assert backend_for(tmp_path).name == "pytorch"
    assert backend_for(tmp_path / "nothing-here") is None


def imported_after(statement: str, prefix: str) -> list[str]:
    """The modules under ``prefix`` that a fresh interpreter holds after ``statement``."""
    code = f"import sys\n{statement}\nprint(' '.join(m for m in sys.modules if m.startswith({prefix!r})))"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          check=True)
    return done.stdout.split()


def run_time_imports(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (a folder of src/distilora) → the distilora modules it imports when it runs (lazy
    imports in functions included; those under ``if TYPE_CHECKING:`` left out)."""
    found = {}
    for path in sorted((Path(distilora.__file__).parent / package).glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and ast.unparse(block.test) == "TYPE_CHECKING" for node in ast.walk(block)}
        found[path.name] = {alias.name if isinstance(node, ast.Import) else node.module or ""
                            for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
                            and id(node) not in typing_only for alias in node.names}
    return found


def test_inference_imports_nothing_of_export_and_evaluation_nothing_of_inference():
    assert imported_after("import distilora.inference", "distilora.export") == []
    for module, names in run_time_imports("inference").items():
        assert not {n for n in names if n.startswith("distilora.export")}, module
    for module, names in run_time_imports("evaluation").items():
        assert not {n for n in names if n.startswith("distilora.inference")}, module


def test_logits_of_a_whole_text_backend_are_one_row_per_text_even_for_no_texts():
    baseline = TextBaselineClassifier(fit_majority(LABELS, [0, 1, 1]))
    assert baseline.logits([]).shape == (0, 2)
    long = " ".join(["word"] * 5000)
    scored = baseline.scores([long, "short"], long_text="truncate")
    assert scored.windows == [1, 1] and scored.truncated == [False, False]
    np.testing.assert_allclose(scored.logits[0], scored.logits[1])
