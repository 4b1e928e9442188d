"""The JSON API of ``distilora serve`` on the tiny run: every route, every bad-input case, limits and hardening."""

from __future__ import annotations

import asyncio
import copy
import json
import math
import os
import time
from pathlib import Path

import all_kinds
import httpx
import pytest
from fastapi.testclient import TestClient

from distilora.config import ServeConfig
from distilora.inference import Prediction, load_classifier
from distilora.run_dir import RunLayout, read_results
from distilora.serve import ModelRegistry, create_app
from distilora.serve.parsing import VISIBLE

MODELS = ["teacher", "odd", "even", "lora"]
LOCAL = "http://127.0.0.1"  # the Host check serves only localhost names by default
ERROR_KEYS = {"status", "error", "message", "details"}


@pytest.fixture(scope="module")
def registry(tiny_run: Path) -> ModelRegistry:
    return ModelRegistry.load(tiny_run)


@pytest.fixture(scope="module")
def client(registry: ModelRegistry) -> TestClient:
    return TestClient(create_app(registry=registry), raise_server_exceptions=False, base_url=LOCAL)


def classify(client: TestClient, texts: list[str], model: str | None = None) -> httpx.Response:
    body: dict = {"texts": texts}
    if model is not None:
        body["model"] = model
    return client.post("/api/v1/classify", json=body)


def assert_error(response: httpx.Response, status: int, *phrases: str, run_dir: Path | None = None) -> dict:
    """A JSON ErrorResponse with the right status and message, no stack trace and no file path."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["status"] == status
    for phrase in phrases:
        assert phrase in body["message"], (phrase, body["message"])
    for leak in ("Traceback", 'File "', ".py", "site-packages", str(run_dir) if run_dir else "/work/"):
        assert leak not in response.text
    return body


# ---- healthy routes ---------------------------------------------------------------------------------------------
def test_healthz_is_ok_and_lists_the_loaded_models(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "models": MODELS, "reason": None}


def test_models_endpoint_reports_layers_sizes_and_the_runs_metrics(client, tiny_run):
    results = read_results(RunLayout(tiny_run))
    response = client.get("/api/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["labels"] == results["labels"]
    assert [m["name"] for m in body["models"]] == MODELS
    by_name = {m["name"]: m for m in body["models"]}
    assert by_name["odd"]["layers"] == [1, 3] and by_name["even"]["layers"] == [2, 4]
    assert by_name["teacher"]["layers"] is None and by_name["teacher"]["num_layers"] == 4
    assert {by_name[n]["route"] for n in MODELS} == {"fine-tune", "distil", "lora"}
    for name, info in by_name.items():
        expected = results["models"][name]
        assert info["labels"] == results["labels"]
        assert info["max_length"] == 32  # the tiny run's --max-length
        assert info["backend"] == "pytorch" and info["precision"] == "fp32"  # served at the default precision
        assert info["params"] == expected["params"] > 0
        assert info["size_mb"] == expected["size_mb"] > 0
        for split in ("validation", "test"):
            assert info["metrics"][split]["macro_f1"] == pytest.approx(expected["metrics"][split]["macro_f1"])
            assert info["metrics"][split]["accuracy"] == pytest.approx(expected["metrics"][split]["accuracy"])
    for name, info in by_name.items():  # the decision the model applies, and the metrics it gives there
        calibration = results["models"][name]["calibration"]
        assert info["decision"]["rule"] == "threshold" and info["decision"]["positive_label"] == "toxic"
        assert info["decision"]["threshold"] == pytest.approx(calibration["threshold"])
        assert info["decision"]["temperature"] == pytest.approx(calibration["temperature"])
        assert info["metrics_at_threshold"]["test"]["macro_f1"] == pytest.approx(
            results["models"][name]["metrics_at_threshold"]["test"]["macro_f1"])
    assert by_name["lora"]["trainable_params"] < by_name["lora"]["params"]
    assert by_name["lora"]["adapter_size_mb"] > 0
    assert "/" not in (body["dataset"] or "")  # a name, never a local path


def test_models_endpoint_describes_every_kind_with_description_and_collapse(tmp_path):
    results = all_kinds.results_without_predictions()
    registry = ModelRegistry(tmp_path, {n: all_kinds.FakeClassifier() for n in all_kinds.MODELS}, results)
    response = TestClient(create_app(registry=registry), base_url=LOCAL).get("/api/v1/models")
    assert response.status_code == 200
    body = response.json()
    by_name = {m["name"]: m for m in body["models"]}
    assert list(by_name) == list(all_kinds.MODELS)
    assert {m["route"] for m in body["models"]} == all_kinds.KINDS
    assert [n for n, m in by_name.items() if m["collapsed"]] == [all_kinds.COLLAPSED]
    assert by_name["odd"]["collapsed"] is False and by_name["majority"]["collapsed"] is None
    for name, info in by_name.items():
        assert info["description"] == all_kinds.description(name)
    assert by_name["tfidf"]["layers"] is None and by_name["tfidf"]["num_layers"] == 0
    assert by_name["odd-lora"]["layers"] == [1, 3, 5] and by_name["odd-lora"]["route"] == "hybrid"
    assert body["default_model"] == "odd"  # the best distilled student; hybrids and baselines are not defaults
    assert by_name["odd"]["decision"]["rule"] == "argmax", "a model without calibration decides by the argmax"


def test_default_model_is_the_best_student_by_validation_macro_f1(client, tiny_run):
    models = read_results(RunLayout(tiny_run))["models"]
    students = [n for n in MODELS if models[n]["route"] == "distil"]
    best = max(students, key=lambda n: models[n]["metrics"]["validation"]["macro_f1"])
    assert client.get("/api/v1/models").json()["default_model"] == best
    response = classify(client, ["have a lovely day"])
    assert response.status_code == 200
    assert response.json()["model"] == best


def test_default_model_prefers_the_higher_validation_f1(registry, tiny_run):
    results = copy.deepcopy(registry.results)
    results.models["odd"].metrics["validation"].macro_f1 = 0.41
    results.models["even"].metrics["validation"].macro_f1 = 0.73
    results.models["teacher"].metrics["validation"].macro_f1 = 0.99  # not a student: never the default
    assert ModelRegistry(tiny_run, registry.classifiers, results).default_model == "even"
    results.models["even"].metrics["validation"].macro_f1 = float("nan")
    assert ModelRegistry(tiny_run, registry.classifiers, results).default_model == "odd"


def test_classify_returns_one_normalised_result_per_text_in_order(client, registry):
    texts = ["the sunny garden is lovely", "you are disgusting trash", "meh, whatever"]
    response = classify(client, texts, "teacher")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"model", "results", "decision", "elapsed_ms"}
    decision = body["decision"]
    assert decision == registry.get("teacher").decision and decision["rule"] == "threshold"
    assert body["model"] == "teacher"
    assert body["elapsed_ms"] > 0
    assert len(body["results"]) == len(texts)
    for result in body["results"]:
        assert set(result) == {"label", "scores", "truncated", "windows"}
        assert list(result["scores"]) == registry.labels
        assert math.fsum(result["scores"].values()) == pytest.approx(1.0, abs=1e-5)
        positive = result["scores"][decision["positive_label"]] >= decision["threshold"]
        assert (result["label"] == decision["positive_label"]) == positive
        assert result["truncated"] is False
    # In request order: classifying one text alone gives the same answer as in the batch.
    alone = classify(client, [texts[1]], "teacher").json()["results"][0]
    assert alone["label"] == body["results"][1]["label"]
    assert alone["scores"] == pytest.approx(body["results"][1]["scores"], abs=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_each_model_answers_like_its_classifier(client, tiny_run, name):
    texts = ["love coffee and music", "worthless scum and vermin"]
    expected = load_classifier(tiny_run, name).predict(texts)
    body = classify(client, texts, name).json()
    assert body["model"] == name
    assert body["decision"]["threshold"] == expected[0].threshold is not None
    for got, want in zip(body["results"], expected, strict=True):
        assert got["label"] == want.label
        assert got["scores"] == pytest.approx(want.scores, abs=1e-5)


def test_long_text_is_read_in_windows_and_the_result_says_so(client):
    long_text = " ".join(["hate"] * 200)  # far over the tiny run's 32 tokens
    body = classify(client, ["short and kind", long_text, "also short"], "odd").json()
    assert [r["windows"] > 1 for r in body["results"]] == [False, True, False]
    assert [r["truncated"] for r in body["results"]] == [False, False, False]


def test_limits_themselves_are_accepted(client):
    assert classify(client, ["a"] * 256, "odd").status_code == 200
    response = classify(client, ["word " * 2_000], "odd")  # exactly 10,000 characters
    assert response.status_code == 200
    assert response.json()["results"][0]["windows"] > 1


# ---- bad input --------------------------------------------------------------------------------------------------
def test_empty_list_is_422(client, tiny_run):
    body = assert_error(classify(client, []), 422, "at least one text", run_dir=tiny_run)
    assert body["details"][0]["field"] == "texts"


@pytest.mark.parametrize("blank", ["", " ", "\n\t  ", "\u3000\u00a0"])
def test_empty_or_whitespace_text_is_422_naming_the_text(client, tiny_run, blank):
    body = assert_error(classify(client, ["fine text", blank]), 422, "texts[1]", "whitespace", run_dir=tiny_run)
    assert body["details"] == [{"field": "texts[1]", "message": "text is empty or whitespace-only"}]


def test_more_than_256_texts_is_413_with_the_limit(client, tiny_run):
    assert_error(classify(client, ["a"] * 257), 413, "256", run_dir=tiny_run)


def test_text_over_10000_characters_is_413_with_the_limit(client, tiny_run):
    body = assert_error(classify(client, ["ok", "y" * 10_001]), 413, "10,000", "texts[1]", run_dir=tiny_run)
    assert "10,001" in body["message"]


@pytest.mark.parametrize("model", ["nope", "../teacher", str(Path("/etc/passwd")), "odd/../teacher", "TEACHER"])
def test_unknown_model_is_404_listing_the_loaded_ones(client, tiny_run, model):
    body = assert_error(classify(client, ["hello"], model), 404, "unknown model", run_dir=tiny_run)
    for name in MODELS:
        assert name in body["message"]


def test_overlong_model_name_is_not_echoed_in_full(client):
    body = classify(client, ["hello"], "m" * 5000).json()
    assert body["status"] == 404
    assert len(body["message"]) < 200


@pytest.mark.parametrize(("content", "content_type", "phrase"), [
    (b'{"texts": ["hello"', "application/json", "malformed JSON"),
    (b"\xff\xfe\x00 not utf-8", "application/json", "malformed JSON"),
    (b'["hello"]', "application/json", "JSON object"),
    (b'"hello"', "application/json", "JSON object"),
    (b"", "application/json", "no body"),
    (b'{"model": "odd"}', "application/json", "texts"),
    (b'{"texts": "hello"}', "application/json", "texts"),
    (b'{"texts": ["hello", 3]}', "application/json", "texts[1]"),
    (b'{"texts": ["hello"], "text": "typo"}', "application/json", "unknown field"),
    (b'{"texts": ["a\\ud800b"]}', "application/json", "Unicode"),
])
def test_malformed_or_non_json_bodies_are_422(client, tiny_run, content, content_type, phrase):
    response = client.post("/api/v1/classify", content=content, headers={"Content-Type": content_type})
    assert_error(response, 422, phrase, run_dir=tiny_run)


@pytest.mark.parametrize(("content", "content_type"), [(b'{"texts": ["hello"]}', "text/plain"),
                                                       (b"texts=hello", "application/x-www-form-urlencoded"),
                                                       (b'{"texts": ["hello"]}', "")])
def test_a_body_not_declared_as_json_is_415(client, tiny_run, content, content_type):
    response = client.post("/api/v1/classify", content=content, headers={"Content-Type": content_type})
    assert_error(response, 415, "Content-Type: application/json", run_dir=tiny_run)


# ---- hardening: body limit before parsing, timeout, no stack traces -------------------------------------------------
@pytest.fixture(scope="module")
def small_limit_client(registry) -> TestClient:
    return TestClient(create_app(registry=registry, settings=ServeConfig(max_body_bytes=1000)), base_url=LOCAL)


def test_body_over_the_limit_is_413_before_parsing(small_limit_client):
    # Malformed JSON would be 422 if it were parsed: 413 shows the size check comes first.
    response = small_limit_client.post("/api/v1/classify", content=b"{" * 1001,
                                       headers={"Content-Type": "application/json"})
    assert_error(response, 413, "1,000 bytes")


def test_chunked_body_over_the_limit_is_counted_and_413(small_limit_client):
    def chunks():
        yield b'{"texts": ["'
        for _ in range(20):
            yield b"a" * 100
        yield b'"]}'

    response = small_limit_client.post("/api/v1/classify", content=chunks(),
                                       headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_error(response, 413, "1,000 bytes")


def test_body_under_the_limit_still_classifies(small_limit_client):
    response = small_limit_client.post("/api/v1/classify", json={"texts": ["fine"], "model": "odd"})
    assert response.status_code == 200
    assert response.json()["model"] == "odd"


def test_body_that_never_finishes_arriving_gets_408():
    from distilora.serve.limits import BodySizeLimit

    reached_app, sent = [], []

    async def app(scope, receive, send):
        reached_app.append(True)

    async def trickle():
        if not sent:
            sent.append({"type": "probe"})
            return {"type": "http.request", "body": b'{"texts": ["a', "more_body": True}
        await asyncio.sleep(60)  # the rest never comes

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/classify", "headers": []}
    started = time.perf_counter()
    asyncio.run(BodySizeLimit(app, max_bytes=1000, read_timeout_s=0.2)(scope, trickle, send))
    assert time.perf_counter() - started < 5
    assert reached_app == []
    assert sent[1]["status"] == 408
    body = json.loads(sent[2]["body"])
    assert body["status"] == 408 and "0.2 s" in body["message"]


class _FakeClassifier:
    """Stands in for a model that is slow, or broken with a message that holds a file path."""

    labels = ["neutral", "toxic"]
    layers = None
    max_length = 32

    def __init__(self, sleep_s: float = 0.0, fail: bool = False):
        self.sleep_s, self.fail = sleep_s, fail

    def predict(self, texts: list[str]) -> list[Prediction]:
        time.sleep(self.sleep_s)
        if self.fail:
            raise RuntimeError("boom in /secret/path/model.py line 3")
        return [Prediction("neutral", {"neutral": 1.0, "toxic": 0.0}) for _ in texts]


def _fake_app(tiny_run: Path, classifier: _FakeClassifier, **settings) -> TestClient:
    registry = ModelRegistry(tiny_run, {"fake": classifier}, {"labels": ["neutral", "toxic"], "models": {}})
    return TestClient(create_app(registry=registry, settings=ServeConfig(**settings)), raise_server_exceptions=False,
                      base_url=LOCAL)


def test_slow_model_gets_504_after_the_request_timeout(tiny_run):
    client = _fake_app(tiny_run, _FakeClassifier(sleep_s=3.0), timeout_s=0.3)
    started = time.perf_counter()
    response = classify(client, ["hello"], "fake")
    assert time.perf_counter() - started < 2.5
    assert_error(response, 504, "0.3 s")


def test_unexpected_error_is_a_json_500_without_trace_or_path(tiny_run):
    client = _fake_app(tiny_run, _FakeClassifier(fail=True))
    body = assert_error(classify(client, ["hello"], "fake"), 500, "internal server error", run_dir=tiny_run)
    assert "secret" not in json.dumps(body) and "boom" not in json.dumps(body)


def test_unknown_route_and_wrong_method_are_json_errors(client):
    assert_error(client.get("/api/v1/nothing"), 404, "no such page")
    response = client.delete("/api/v1/classify")
    assert_error(response, 405, "DELETE")
    assert "POST" in response.headers["allow"]
    assert_error(client.post("/healthz"), 405, "POST")


def test_concurrent_requests_get_the_same_answers_as_serial_ones(registry):
    app = create_app(registry=registry)
    texts = [f"{word} you are so {other}" for word in ("love", "hate", "meh") for other in ("kind", "trash")]
    jobs = [(name, texts[i % len(texts):] + texts[: i % len(texts)]) for i, name in enumerate(MODELS * 6)]
    expected = {name: {t: p for t, p in zip(texts, registry.get(name).predict(texts), strict=True)} for name in MODELS}

    async def fire() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            return await asyncio.gather(*(http.post("/api/v1/classify", json={"texts": t, "model": n})
                                          for n, t in jobs))

    responses = asyncio.run(fire())
    for (name, batch), response in zip(jobs, responses, strict=True):
        assert response.status_code == 200
        for text, result in zip(batch, response.json()["results"], strict=True):
            assert result["label"] == expected[name][text].label
            assert result["scores"] == pytest.approx(expected[name][text].scores, abs=1e-5)


def test_memory_stays_flat_over_many_requests(client):
    import psutil

    process = psutil.Process(os.getpid())
    texts = ["love the sunny garden", "you are worthless scum " * 5]
    for _ in range(40):  # warm up allocator caches
        assert classify(client, texts, "odd").status_code == 200
    before = process.memory_info().rss
    for i in range(300):
        assert classify(client, texts, MODELS[i % 4]).status_code == 200
    growth_mib = (process.memory_info().rss - before) / 2**20
    assert growth_mib < 25, f"RSS grew {growth_mib:.1f} MiB over 300 requests"


# ---- OpenAPI, page, static files -----------------------------------------------------------------------------------
def test_openapi_documents_the_api_and_its_errors(client):
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/healthz", "/api/v1/models", "/api/v1/classify", "/api/v1/checks",
                                  "/v1alpha1/comments:analyze", "/v1alpha1/comments:suggestscore",  # Perspective's
                                  "/v1alpha1/attributes", "/v1alpha1/attributes/{name}/card", "/$discovery/rest"}
    responses = spec["paths"]["/api/v1/classify"]["post"]["responses"]
    assert set(responses) == {"200", "404", "408", "413", "415", "422", "503", "504"}
    for status in ("404", "408", "413", "415", "422", "503", "504"):
        assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    texts = spec["components"]["schemas"]["ClassifyRequest"]["properties"]["texts"]
    assert (texts["minItems"], texts["maxItems"], texts["items"]["maxLength"]) == (1, 256, 10_000)
    assert texts["items"]["pattern"] == VISIBLE
    assert spec["paths"]["/api/v1/classify"]["post"]["requestBody"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/ClassifyRequest"}


def test_the_schema_pattern_is_the_servers_test_of_a_visible_character():
    import re
    import sys
    import unicodedata

    def invisible(c: str) -> bool:
        return c.isspace() or unicodedata.category(c) in ("Cc", "Cf")

    disagree = [c for c in range(0x10000) if (re.search(VISIBLE, chr(c)) is None) != invisible(chr(c))]
    assert disagree == []
    assert sys.maxunicode > 0x10000  # astral format characters (e.g. U+E0001) count as visible: documented


def test_page_has_the_form_and_is_served_with_its_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for marker in ('id="text"', 'id="model"', 'id="classify"', 'class="example"', 'id="batch-file"',
                   'id="about-table"', 'name="viewport"'):
        assert marker in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "/api/v1/classify" in script.text
    assert client.get("/static/style.css").status_code == 200
    assert_error(client.get("/static/../registry.py"), 404)


# ---- finding the run ---------------------------------------------------------------------------------------------
def _fake_run(root: Path, name: str, mtime: float) -> Path:
    run = root / "runs" / name
    run.mkdir(parents=True)
    (run / "results.json").write_text("{}")
    os.utime(run / "results.json", (mtime, mtime))
    return run


def test_latest_run_is_the_newest_results_json(tmp_path):
    assert RunLayout.latest(tmp_path / "runs") is None
    _fake_run(tmp_path, "old", 1_000_000)
    newest = _fake_run(tmp_path, "new", 2_000_000)
    _fake_run(tmp_path, "middle", 1_500_000)
    (tmp_path / "runs" / "unfinished").mkdir()
    assert RunLayout.latest(tmp_path / "runs").root == newest


def test_serve_without_a_run_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    from distilora.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "distilora run" in err and "make run" in err and "Traceback" not in err
    assert main(["serve", "--run", str(tmp_path / "missing")]) == 2
    assert "results.json" in capsys.readouterr().err


def test_serve_binds_loopback_port_8000_by_default():
    from distilora.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.run) == ("127.0.0.1", 8000, None)
