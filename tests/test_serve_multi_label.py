"""Serving a multi-label model: every label's score and the decided set through /api/v1/classify and the model
list, through the model process, and several Perspective attributes from one model in one forward pass."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from distilora.config import AttributeSpec, PerspectiveConfig, ServeConfig
from distilora.inference import Classifier, load_classifier
from distilora.serve import ModelRegistry, create_app
from distilora.serve.model_process import ModelProcess
from distilora.serve.perspective.attributes import AttributePlan, perspective_config, read_attribute_file
from tests.multi_label_model import ALL_OFF, LABELS, make_served_model

LOCAL = "http://127.0.0.1:8000"
ANALYZE = "/v1alpha1/comments:analyze"
RESULTS = {"labels": list(LABELS), "models": {}}
SIGMOID_3 = 1 / (1 + math.exp(-3.0))


@pytest.fixture(scope="module")
def served_run(tmp_path_factory) -> Path:
    """A folder holding two multi-label models: ``multi`` (insult on, threat and obscene off) and ``quiet`` (none
    on)."""
    run = tmp_path_factory.mktemp("multi-label-serve")
    make_served_model(run / "multi")
    make_served_model(run / "quiet", ALL_OFF)
    return run


class CountingClassifier:
    """A loaded classifier whose forward passes are counted (calls and rows)."""

    def __init__(self, classifier: Classifier):
        self.classifier, self.calls, self.rows = classifier, 0, 0
        forward = classifier.forward

        def counted(rows):
            self.calls += 1
            self.rows += len(rows)
            return forward(rows)

        classifier.forward = counted  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def classifiers(served_run) -> dict[str, Classifier]:
    return {name: load_classifier(served_run / name) for name in ("multi", "quiet")}


@pytest.fixture(scope="module")
def client(served_run, classifiers) -> TestClient:
    registry = ModelRegistry(served_run, dict(classifiers), RESULTS)
    return TestClient(create_app(registry=registry), raise_server_exceptions=False, base_url=LOCAL)


def classify(client: TestClient, texts: list[str], model: str) -> dict:
    response = client.post("/api/v1/classify", json={"texts": texts, "model": model})
    assert response.status_code == 200, response.text
    return response.json()


def test_classify_gives_every_labels_sigmoid_and_the_labels_that_are_on(client):
    body = classify(client, ["you absolute clown", "have a nice day"], "multi")
    for result in body["results"]:
        assert result["labels"] == ["insult"]
        assert result["label"] == "insult"
        assert result["scores"] == pytest.approx({"insult": SIGMOID_3, "threat": 1 - SIGMOID_3,
                                                  "obscene": 1 - SIGMOID_3}, abs=1e-5)
    decision = body["decision"]
    assert decision["rule"] == "threshold" and decision["policy"] == "default"
    assert decision["thresholds"] == {"insult": 0.5, "threat": 0.5, "obscene": 0.5}
    assert decision["threshold"] is None and decision["positive_label"] is None


def test_a_text_with_no_label_on_gets_an_empty_list(client):
    [result] = classify(client, ["have a nice day"], "quiet")["results"]
    assert result["labels"] == []
    assert result["label"] in LABELS, "the most probable label is still named"


def test_each_labels_own_threshold_decides_it_and_the_decision_states_it(served_run):
    classifier = load_classifier(served_run / "multi")
    classifier.label_thresholds = lambda calibrated=True: [0.99, 0.01, 0.5]  # type: ignore[method-assign]
    registry = ModelRegistry(served_run, {"multi": classifier}, RESULTS)
    with TestClient(create_app(registry=registry), base_url=LOCAL) as tuned:
        body = classify(tuned, ["hello there"], "multi")
    assert body["results"][0]["labels"] == ["threat"], "insult 0.95 < 0.99 is off, threat 0.05 >= 0.01 is on"
    assert body["decision"]["thresholds"] == {"insult": 0.99, "threat": 0.01, "obscene": 0.5}


def test_a_single_label_answer_has_no_multi_label_keys(tmp_path):
    from all_kinds import FakeClassifier

    from distilora.inference import Prediction

    class Answering(FakeClassifier):
        def predict(self, texts):
            return [Prediction("toxic", {"neutral": 0.25, "toxic": 0.75}) for _ in texts]

    registry = ModelRegistry(tmp_path, {"fake": Answering()}, {"labels": ["neutral", "toxic"], "models": {}})
    with TestClient(create_app(registry=registry), base_url=LOCAL) as single:
        body = classify(single, ["hello"], "fake")
        model = single.get("/api/v1/models").json()["models"][0]
    assert set(body["results"][0]) == {"label", "scores", "truncated", "windows"}
    assert set(body["decision"]) == {"rule", "threshold", "positive_label", "policy", "target", "temperature"}
    assert "multi_label" not in model and "thresholds" not in model["decision"]


def test_the_model_list_marks_a_multi_label_model_and_its_thresholds(client):
    body = client.get("/api/v1/models").json()
    assert body["labels"] == list(LABELS)
    multi = {m["name"]: m for m in body["models"]}["multi"]
    assert multi["multi_label"] is True and multi["labels"] == list(LABELS)
    assert multi["decision"]["rule"] == "threshold"
    assert multi["decision"]["thresholds"] == {"insult": 0.5, "threat": 0.5, "obscene": 0.5}


def test_openapi_documents_the_decided_labels_and_the_thresholds(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    result = schemas.get("ClassifyResult") or schemas["ClassifyResult-Output"]
    assert "labels" in result["properties"] and "labels" not in result.get("required", [])
    decision = schemas["Decision"]
    assert {"thresholds", "temperatures", "targets"} <= set(decision["properties"])
    assert not {"thresholds", "temperatures", "targets"} & set(decision.get("required", []))


def test_the_model_process_carries_the_labels_on_and_the_thresholds(served_run):
    process = ModelProcess({"multi": served_run / "multi"}, ServeConfig(torch_threads=1))
    try:
        remote = process.predictor("multi")
        [prediction] = remote.predict(["you absolute clown"])
        assert prediction.labels == ["insult"]
        assert prediction.thresholds == {"insult": 0.5, "threat": 0.5, "obscene": 0.5}
        assert remote.multi_label is True and remote.decision["thresholds"] == {"insult": 0.5, "threat": 0.5,
                                                                                 "obscene": 0.5}
        registry = ModelRegistry(served_run, {"multi": remote}, RESULTS)
        with TestClient(create_app(registry=registry), base_url=LOCAL) as through_process:
            body = classify(through_process, ["you absolute clown"], "multi")
        assert body["results"][0]["labels"] == ["insult"]
        assert body["decision"]["thresholds"] == {"insult": 0.5, "threat": 0.5, "obscene": 0.5}
    finally:
        process.close()


# ---- the Perspective endpoint ------------------------------------------------------------------------------------
def perspective_client(served_run: Path, specs: list[str]) -> tuple[TestClient, CountingClassifier]:
    counting = CountingClassifier(load_classifier(served_run / "multi"))
    registry = ModelRegistry(served_run, {"multi": counting.classifier}, RESULTS)
    config = perspective_config(specs, None)
    return TestClient(create_app(registry=registry, perspective_config=config), base_url=LOCAL), counting


def test_two_attributes_of_one_multi_label_model_are_scored_in_one_forward_pass(served_run):
    client, counting = perspective_client(served_run, [f"INSULT={served_run}:multi:insult",
                                                       f"THREAT={served_run}:multi:threat"])
    with client:
        counting.calls = counting.rows = 0
        body = {"comment": {"text": "you absolute clown"}, "requestedAttributes": {"INSULT": {}, "THREAT": {}}}
        response = client.post(ANALYZE, json=body)
        assert response.status_code == 200, response.text
        assert (counting.calls, counting.rows) == (1, 1), "one forward pass of one row serves both attributes"
        scores = response.json()["attributeScores"]
        assert scores["INSULT"]["summaryScore"]["value"] == pytest.approx(SIGMOID_3, abs=1e-5)
        assert scores["THREAT"]["summaryScore"]["value"] == pytest.approx(1 - SIGMOID_3, abs=1e-5)

        counting.calls = counting.rows = 0
        spans = {**body, "comment": {"text": "You are a clown. I will find you."}, "spanAnnotations": True}
        response = client.post(ANALYZE, json=spans)
        assert response.status_code == 200, response.text
        assert (counting.calls, counting.rows) == (1, 3), "the comment and its two sentences, once for both"
        for name, value in (("INSULT", SIGMOID_3), ("THREAT", 1 - SIGMOID_3)):
            span_scores = response.json()["attributeScores"][name]["spanScores"]
            assert [s["score"]["value"] for s in span_scores] == pytest.approx([value, value], abs=1e-5)


def test_an_attribute_naming_a_label_the_model_lacks_stops_the_start(served_run):
    with pytest.raises(ValueError, match=r"attribute IDENTITY_ATTACK: model multi has no label 'hateful'; "
                                         r"its labels: insult, threat, obscene"):
        perspective_client(served_run, [f"INSULT={served_run}:multi:insult",
                                        f"IDENTITY_ATTACK={served_run}:multi:hateful"])


@pytest.fixture(scope="module")
def two_label_model(tmp_path_factory) -> Path:
    """A multi-label model of two labels: two labels do not make it binary."""
    return make_served_model(tmp_path_factory.mktemp("two-labels") / "pair", (3.0, -3.0), labels=("insult", "threat"))


def test_a_multi_label_attribute_must_name_its_label_even_with_two_labels(two_label_model):
    registry = ModelRegistry(two_label_model.parent, {"pair": load_classifier(two_label_model)}, RESULTS)
    config = perspective_config([f"INSULT={two_label_model.parent}:pair"], None)
    with pytest.raises(ValueError, match="model pair is multi-label .* name the label to score"):
        create_app(registry=registry, perspective_config=config)


def test_a_multi_label_default_model_serves_no_default_attribute(two_label_model):
    registry = ModelRegistry(two_label_model.parent, {"pair": load_classifier(two_label_model)}, RESULTS)
    with TestClient(create_app(registry=registry), base_url=LOCAL) as client:
        assert client.get("/v1alpha1/attributes").json()["attributes"] == []


def test_an_attribute_file_maps_two_labels_of_another_runs_model_to_one_loaded_model(served_run, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.json").write_text(json.dumps(RESULTS))
    (other / "multi").symlink_to(served_run / "multi")
    attributes = tmp_path / "attributes.toml"
    attributes.write_text('[attributes.INSULT]\nrun = "other"\nmodel = "multi"\nlabel = "insult"\n\n'
                          '[attributes.THREAT]\nrun = "other"\nmodel = "multi"\nlabel = "threat"\n')
    specs = read_attribute_file(attributes)
    assert specs == [AttributeSpec("INSULT", other, "multi", "insult"),
                     AttributeSpec("THREAT", other, "multi", "threat")]
    plan = AttributePlan.make(PerspectiveConfig(attributes=tuple(specs)), tmp_path / "served")
    assert plan.registry_names == {"INSULT": "other/multi", "THREAT": "other/multi"}
    assert list(plan.extra_models) == ["other/multi"], "one model loaded for both attributes"


# ---- a real multi-label run (every route, calibrated per label) -------------------------------------------------
def test_every_model_of_a_multi_label_run_answers_as_its_classifier_with_its_calibrated_thresholds(multi_label_run):
    from tests.conftest import MULTI_LABELS

    texts = ["you stupid clown", "I will hurt you, damn it", "a quiet walk in the park"]
    registry = ModelRegistry.load(multi_label_run)
    with TestClient(create_app(registry=registry), base_url=LOCAL) as client:
        models = {m["name"]: m for m in client.get("/api/v1/models").json()["models"]}
        assert set(models) == {"teacher", "odd", "lora", "tfidf", "majority"}
        for name, info in models.items():
            calibration = json.loads((multi_label_run / name / "calibration.json").read_text())
            expected = load_classifier(multi_label_run, name).predict(texts)
            body = classify(client, texts, name)
            assert info["multi_label"] is True and info["labels"] == list(MULTI_LABELS), name
            test = info["metrics"]["test"]
            assert 0 <= test["micro_f1"] <= 1 and 0 <= test["hamming_loss"] <= 1, name
            assert body["decision"] == info["decision"], name
            assert body["decision"]["rule"] == "threshold", name
            assert body["decision"]["thresholds"] == pytest.approx(
                dict(zip(MULTI_LABELS, calibration["thresholds"], strict=True))), name
            assert body["decision"]["temperatures"] == pytest.approx(
                dict(zip(MULTI_LABELS, calibration["temperatures"], strict=True))), name
            targets = calibration.get("targets")
            assert body["decision"].get("targets") == (dict(zip(MULTI_LABELS, targets, strict=True)) if targets
                                                       else None), name
            for result, prediction in zip(body["results"], expected, strict=True):
                assert result["labels"] == prediction.labels, name
                assert result["scores"] == pytest.approx(prediction.scores, abs=1e-6), name


def test_two_attributes_of_a_multi_label_runs_student_come_from_one_pass(multi_label_run):
    counting = CountingClassifier(load_classifier(multi_label_run, "odd"))
    registry = ModelRegistry(multi_label_run, {"odd": counting.classifier},
                             json.loads((multi_label_run / "results.json").read_text()))
    config = perspective_config([f"INSULT={multi_label_run}:odd:insult", f"THREAT={multi_label_run}:odd:threat"],
                                None)
    text = "I will hurt you, stupid clown"
    [expected] = counting.classifier.predict([text])
    with TestClient(create_app(registry=registry, perspective_config=config), base_url=LOCAL) as client:
        counting.calls = counting.rows = 0
        response = client.post(ANALYZE, json={"comment": {"text": text},
                                              "requestedAttributes": {"INSULT": {}, "THREAT": {}}})
        assert response.status_code == 200, response.text
        assert (counting.calls, counting.rows) == (1, 1)
        scores = response.json()["attributeScores"]
        attributes = client.get("/v1alpha1/attributes").json()["attributes"]
    assert scores["INSULT"]["summaryScore"]["value"] == pytest.approx(expected.scores["insult"], abs=1e-6)
    assert scores["THREAT"]["summaryScore"]["value"] == pytest.approx(expected.scores["threat"], abs=1e-6)
    assert {(a["name"], a["servedAs"], a["label"]) for a in attributes} == {("INSULT", "odd", "insult"),
                                                                            ("THREAT", "odd", "threat")}


def test_serve_refuses_at_start_an_attribute_whose_label_its_multi_label_model_lacks(tmp_path, capsys):
    from distilora.cli import main
    from tests.multi_label_model import make_multi_label_run

    run = make_multi_label_run(tmp_path / "run")
    code = main(["serve", "--run", str(run), "--attribute", f"INSULT={run}:multi:insult",
                 "--attribute", f"IDENTITY_ATTACK={run}:multi:hateful"])
    error = capsys.readouterr().err
    assert code == 2
    assert "attribute IDENTITY_ATTACK: model multi has no label 'hateful'; its labels: insult, threat, obscene" in error


def test_a_refused_attribute_stops_the_model_process_it_started(tmp_path):
    import psutil

    from tests.multi_label_model import make_multi_label_run

    def model_processes() -> list[int]:
        found = []
        for child in psutil.Process().children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE and "child_main" in " ".join(child.cmdline()):
                    found.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return found

    run = make_multi_label_run(tmp_path / "run")
    before = model_processes()
    config = perspective_config([f"IDENTITY_ATTACK={run}:multi:hateful"], None)
    with pytest.raises(ValueError, match="no label 'hateful'"):
        create_app(run, settings=ServeConfig(torch_threads=1), perspective_config=config)
    assert model_processes() == before
