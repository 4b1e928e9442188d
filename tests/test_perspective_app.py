"""The Perspective-compatible API in process (TestClient): shapes, spans and offsets, limits, languages, thresholds and
errors in Google's format. The real server with Google's own client is tests/test_perspective_api.py."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from distilora.config import AttributeSpec, PerspectiveConfig, ServeConfig
from distilora.inference import Classifier, load_classifier
from distilora.serve import create_app
from distilora.serve.registry import ModelRegistry
from tests.keyword_model import KEYWORD, sentence

ANALYZE = "/v1alpha1/comments:analyze"
# Three sentences: an emoji outside the BMP (2 UTF-16 code units), a combining acute accent (1), a flag (2 + 2).
THREE_SENTENCES = "You are lovely 😊. The cafe\u0301 was closed!  And you, idiot, are trash 🇫🇷."


@pytest.fixture(scope="module")
def keyword(keyword_model) -> Classifier:
    """A model that calls a text toxic exactly when it holds the keyword (tests/keyword_model.py)."""
    return load_classifier(keyword_model)


@pytest.fixture(scope="module")
def app(tiny_run, second_run, keyword):
    registry = ModelRegistry(tiny_run, {"odd": load_classifier(tiny_run, "odd"),
                                        "second-run/even": load_classifier(second_run, "even"), "keyword": keyword},
                             json.loads((tiny_run / "results.json").read_text()))
    config = PerspectiveConfig(attributes=(AttributeSpec("TOXICITY", None, "odd"),
                                           AttributeSpec("IDENTITY_ATTACK", second_run, "even", "neutral"),
                                           AttributeSpec("INSULT", None, "keyword")))
    return create_app(registry=registry, settings=ServeConfig(max_body_bytes=512 * 1024), perspective_config=config)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def analyze(client, text, attributes=("TOXICITY",), **fields):
    body = {"comment": {"text": text}, "requestedAttributes": {name: {} for name in attributes}, **fields}
    return client.post(ANALYZE, json=body)


def classify(client, texts, model):
    response = client.post("/api/v1/classify", json={"texts": texts, "model": model})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def google_error(response, code, status):
    assert response.status_code == code, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["status"] == status, body
    return body["error"]["message"]


def test_span_offsets_are_utf16_code_units_and_span_scores_are_each_sentences_probability(client):
    response = analyze(client, THREE_SENTENCES, ("TOXICITY", "IDENTITY_ATTACK"), spanAnnotations=True)
    assert response.status_code == 200, response.text
    spans = response.json()["attributeScores"]["TOXICITY"]["spanScores"]
    utf16 = THREE_SENTENCES.encode("utf-16-le")
    pieces = [utf16[2 * s["begin"] : 2 * s["end"]].decode("utf-16-le") for s in spans]
    assert pieces == ["You are lovely 😊.", "The cafe\u0301 was closed!", "And you, idiot, are trash 🇫🇷."]
    assert [(s["begin"], s["end"]) for s in spans] == [(0, 18), (19, 40), (42, 73)]  # code points: (0, 17), …
    expected = classify(client, pieces, "odd")
    assert [s["score"]["value"] for s in spans] == pytest.approx([r["scores"]["toxic"] for r in expected], abs=1e-6)
    assert all(s["score"]["type"] == "PROBABILITY" for s in spans)
    other = response.json()["attributeScores"]["IDENTITY_ATTACK"]["spanScores"]
    assert [(s["begin"], s["end"]) for s in other] == [(0, 18), (19, 40), (42, 73)]


def test_summary_score_is_the_calibrated_probability_of_the_attributes_label(client):
    response = analyze(client, THREE_SENTENCES, ("TOXICITY", "IDENTITY_ATTACK"), clientToken="token-7")
    body = response.json()
    assert body["clientToken"] == "token-7" and body["languages"] == ["en"]
    scores = body["attributeScores"]
    assert "spanScores" not in scores["TOXICITY"]  # only with spanAnnotations
    toxic = classify(client, [THREE_SENTENCES], "odd")[0]["scores"]["toxic"]
    neutral = classify(client, [THREE_SENTENCES], "second-run/even")[0]["scores"]["neutral"]  # the LABEL given
    assert scores["TOXICITY"]["summaryScore"] == {"value": pytest.approx(toxic, abs=1e-6), "type": "PROBABILITY"}
    assert scores["IDENTITY_ATTACK"]["summaryScore"]["value"] == pytest.approx(neutral, abs=1e-6)


def test_a_20480_character_comment_is_scored_and_20481_is_invalid_argument(client):
    longest = ("Have a lovely day with friends and coffee. " * 500)[:20_479] + "!"
    assert len(longest) == 20_480
    assert analyze(client, longest).status_code == 200
    message = google_error(analyze(client, longest + "x"), 400, "INVALID_ARGUMENT")
    assert "20,481" in message and "20,480" in message


def test_a_20480_character_comment_whose_hateful_sentence_is_at_the_end_scores_above_the_threshold(client, keyword):
    rng = random.Random(3)
    harmless = []
    while sum(len(s) + 1 for s in harmless) < 20_000:
        harmless.append(sentence(rng, with_keyword=False) + ".")
    body, ending = " ".join(harmless), f"You are {KEYWORD}."
    comment = body + " " * (20_480 - len(body) - len(ending)) + ending
    assert len(comment) == 20_480 and comment.count(KEYWORD) == 1
    response = analyze(client, comment, ("INSULT",), spanAnnotations=True)
    assert response.status_code == 200, response.text
    scores = response.json()["attributeScores"]["INSULT"]
    expected, = keyword.predict([comment])  # the summary is predict's, long-text rule and all
    assert expected.windows > 1 and expected.label == "toxic"
    assert scores["summaryScore"]["value"] == pytest.approx(expected.scores["toxic"], abs=1e-6)
    assert scores["summaryScore"]["value"] > 0.5  # the model's decision: the argmax
    last = scores["spanScores"][-1]
    assert comment.encode("utf-16-le")[2 * last["begin"] : 2 * last["end"]].decode("utf-16-le").endswith(KEYWORD + ".")
    assert last["score"]["value"] > 0.5 > max(s["score"]["value"] for s in scores["spanScores"][:-1])
    without = analyze(client, body, ("INSULT",)).json()["attributeScores"]["INSULT"]
    assert without["summaryScore"]["value"] < 0.5


@pytest.mark.parametrize("body, expected", [
    ({"comment": {"text": ""}, "requestedAttributes": {"TOXICITY": {}}}, "must not be empty"),
    ({"comment": {"text": " \u200b\n"}, "requestedAttributes": {"TOXICITY": {}}}, "no visible characters"),
    ({"comment": {"text": "hi"}, "requestedAttributes": {}}, "at least one attribute"),
    ({"comment": {"text": "hi"}, "requestedAttributes": {"SPAM": {}}}, "Unknown attribute SPAM"),
    ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {"scoreType": "STD_DEV_SCORE"}}},
     "scoreType STD_DEV_SCORE is not supported"),
    ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {"scoreThreshold": 1.5}}}, "between 0 and 1"),
    ({"comment": {"text": "hi", "type": "HTML"}, "requestedAttributes": {"TOXICITY": {}}}, "send PLAIN_TEXT"),
    ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {}}, "languages": ["e n"]}, "language code"),
    ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {}}, "colour": 1}, 'Unknown name "colour"'),
    ({"comment": {"text": 7}, "requestedAttributes": {"TOXICITY": {}}}, "'comment.text'"),
    ({"requestedAttributes": {"TOXICITY": {}}}, "'comment' is missing"),
])
def test_bad_requests_get_one_invalid_argument_line_naming_the_problem(client, body, expected):
    assert expected in google_error(client.post(ANALYZE, json=body), 400, "INVALID_ARGUMENT")


def test_malformed_json_and_a_body_not_declared_as_json_are_refused(client):
    malformed = client.post(ANALYZE, content=b'{"comment": ', headers={"Content-Type": "application/json"})
    assert "not valid JSON" in google_error(malformed, 400, "INVALID_ARGUMENT")
    form = client.post(ANALYZE, content=b"comment=hi", headers={"Content-Type": "application/x-www-form-urlencoded"})
    google_error(form, 415, "INVALID_ARGUMENT")
    google_error(client.post(ANALYZE + "?alt=proto", json={}), 400, "INVALID_ARGUMENT")


def test_a_language_the_model_was_not_trained_on_gets_perspectives_error(client):
    german = "Du bist ein Idiot und ich hasse dich, das weiß jeder hier."
    message = google_error(analyze(client, german), 400, "INVALID_ARGUMENT")  # detected: de
    assert message == "Attribute TOXICITY does not support request languages: de"
    said = google_error(analyze(client, "hello there", languages=["fr-CA"]), 400, "INVALID_ARGUMENT")
    assert said == "Attribute TOXICITY does not support request languages: fr"
    assert analyze(client, german, languages=["en-US"]).json()["languages"] == ["en"]  # the request's word wins
    dropped = analyze(client, german, dropUnsupportedAttributes=True)
    assert dropped.status_code == 200 and dropped.json()["attributeScores"] == {}
    assert dropped.json()["detectedLanguages"] == ["de"]


def test_a_score_threshold_leaves_out_the_attribute_below_it_and_the_spans_below_it(client):
    body = {"comment": {"text": THREE_SENTENCES}, "spanAnnotations": True,
            "requestedAttributes": {"TOXICITY": {"scoreThreshold": 0.0}, "IDENTITY_ATTACK": {"scoreThreshold": 1.0}}}
    scores = client.post(ANALYZE, json=body).json()["attributeScores"]
    assert list(scores) == ["TOXICITY"] and len(scores["TOXICITY"]["spanScores"]) == 3
    summary = scores["TOXICITY"]["summaryScore"]["value"]
    values = [s["score"]["value"] for s in scores["TOXICITY"]["spanScores"]]
    threshold = min(summary, sorted(values)[1])  # keeps the summary, and at least one span goes
    body["requestedAttributes"] = {"TOXICITY": {"scoreThreshold": threshold}}
    spans = client.post(ANALYZE, json=body).json()["attributeScores"]["TOXICITY"]["spanScores"]
    assert [s["score"]["value"] for s in spans] == [v for v in values if v >= threshold]
    assert len(spans) < 3


def test_every_error_on_the_perspective_paths_is_in_googles_shape(client):
    google_error(client.get("/v1alpha1/nothing-here"), 404, "NOT_FOUND")
    google_error(client.get(ANALYZE), 405, "UNIMPLEMENTED")
    huge = {"comment": {"text": "x" * 600_000}, "requestedAttributes": {"TOXICITY": {}}}
    google_error(client.post(ANALYZE, json=huge), 413, "INVALID_ARGUMENT")  # refused by the body-size limit
    wrong_host = client.post(ANALYZE, json={}, headers={"Host": "evil.example"})
    assert "Host header" in google_error(wrong_host, 400, "INVALID_ARGUMENT")
    assert "content-security-policy" in wrong_host.headers  # the hardening's headers survive the rewrite
    google_error(client.get("/$discovery/rest?version=v2"), 404, "NOT_FOUND")
    assert client.post("/api/v1/classify", json={"texts": []}).json()["error"] == "invalid_request"  # untouched


def test_suggestscore_is_refused_without_a_feedback_dir(client):
    body = {"comment": {"text": "hi"}, "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0}}}}
    message = google_error(client.post("/v1alpha1/comments:suggestscore", json=body), 400, "FAILED_PRECONDITION")
    assert "--feedback-dir" in message


def test_the_discovery_document_describes_both_methods_with_this_server_as_root(client):
    document = client.get("/$discovery/rest", params={"version": "v1alpha1"}).json()
    assert document["rootUrl"] == "http://127.0.0.1:8000/" and document["name"] == "commentanalyzer"
    methods = document["resources"]["comments"]["methods"]
    assert {name: (m["httpMethod"], m["path"]) for name, m in methods.items()} == {
        "analyze": ("POST", "v1alpha1/comments:analyze"), "suggestscore": ("POST", "v1alpha1/comments:suggestscore")}
    request = document["schemas"]["AnalyzeCommentRequest"]["properties"]
    assert {"comment", "requestedAttributes", "spanAnnotations", "languages", "clientToken"} <= set(request)
    assert document["schemas"]["SpanScore"]["properties"]["begin"] == {
        "type": "integer", "format": "int32", "description": document["schemas"]["SpanScore"]["properties"]
        ["begin"]["description"]}


def test_the_openapi_document_holds_the_operations_with_the_served_attribute_names(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1alpha1/comments:analyze", "/v1alpha1/comments:suggestscore", "/v1alpha1/attributes",
            "/$discovery/rest"} <= set(schema["paths"])
    request = schema["components"]["schemas"]["AnalyzeCommentRequest"]
    names = request["properties"]["requestedAttributes"]["propertyNames"]
    assert names == {"enum": ["TOXICITY", "IDENTITY_ATTACK", "INSULT"]}


# ---- the pieces, without a server -------------------------------------------------------------------------------

def test_an_attribute_spec_reads_run_model_and_label_and_a_bad_one_names_the_form():
    from distilora.serve.perspective.attributes import parse_attribute

    assert parse_attribute("TOXICITY=runs/hate:odd") == AttributeSpec("TOXICITY", Path("runs/hate"), "odd", None)
    assert parse_attribute("IDENTITY_ATTACK=r:lora:attack").label == "attack"
    for bad in ("TOXICITY", "TOXICITY=odd", "TOXICITY=a:b:c:d", "TOX ICITY=r:odd", "TOXICITY=r::x"):
        with pytest.raises(ValueError, match="NAME=RUN:MODEL"):
            parse_attribute(bad)


def test_an_attribute_file_in_toml_or_json_resolves_runs_next_to_it(tmp_path):
    from distilora.serve.perspective.attributes import perspective_config, read_attribute_file

    toml = tmp_path / "attributes.toml"
    toml.write_text('[attributes.TOXICITY]\nmodel = "odd"\n\n[attributes.INSULT]\nrun = "runs/b"\nmodel = "even"\n'
                    'label = "toxic"\n')
    assert read_attribute_file(toml) == [AttributeSpec("TOXICITY", None, "odd"),
                                         AttributeSpec("INSULT", tmp_path / "runs/b", "even", "toxic")]
    as_json = tmp_path / "attributes.json"
    as_json.write_text(json.dumps({"attributes": {"THREAT": {"model": "lora", "colour": "red"}}}))
    with pytest.raises(ValueError, match="'model' and may have 'run' and 'label'"):
        read_attribute_file(as_json)
    with pytest.raises(ValueError, match="TOXICITY is given more than once"):
        perspective_config(["TOXICITY=r:odd"], str(toml))


def test_a_multi_class_model_needs_the_label_named_and_a_binary_one_scores_its_positive_label():
    from distilora.serve.perspective.attributes import scored_label

    spec = AttributeSpec("TOXICITY", None, "odd")
    with pytest.raises(ValueError, match="has 3 labels .* name the one to score"):
        scored_label(spec, "odd", ["a", "b", "c"], None)
    assert scored_label(spec, "odd", ["hate", "none"], {"positive_label": "hate"}) == "hate"
    assert scored_label(spec, "odd", ["none", "hate"], None) == "hate"
    with pytest.raises(ValueError, match="no label 'attack'; its labels: a, b"):
        scored_label(AttributeSpec("X", None, "odd", "attack"), "odd", ["a", "b"], None)


def test_models_of_two_runs_with_the_same_folder_name_get_distinct_names(tiny_run, tmp_path):
    from distilora.serve.perspective.attributes import AttributePlan

    first, second = tmp_path / "a" / "run", tmp_path / "b" / "run"
    shutil.copytree(tiny_run, first)
    shutil.copytree(tiny_run, second)
    config = PerspectiveConfig(attributes=(AttributeSpec("A", first, "odd"), AttributeSpec("B", second, "odd"),
                                           AttributeSpec("C", second, "odd", "neutral"),
                                           AttributeSpec("D", None, "odd")))
    plan = AttributePlan.make(config, tiny_run)
    assert plan.registry_names == {"A": "run/odd", "B": "run-2/odd", "C": "run-2/odd", "D": "odd"}
    assert plan.extra_models == {"run/odd": first / "odd", "run-2/odd": second / "odd"}
    with pytest.raises(FileNotFoundError, match="has no model 'seven'; its models: teacher, odd"):
        AttributePlan.make(PerspectiveConfig(attributes=(AttributeSpec("A", first, "seven"),)), tiny_run)


def test_the_rate_limiter_lets_qps_requests_a_second_through_per_caller(monkeypatch):
    from distilora.serve.perspective import access

    now = [100.0]
    monkeypatch.setattr(access.time, "monotonic", lambda: now[0])
    limiter = access.RateLimiter(qps=2)
    assert [limiter.wait_s("a") for _ in range(3)] == [0, 0, pytest.approx(0.5)]  # a burst of 2, then wait
    assert limiter.wait_s("b") == 0  # per caller
    now[0] += 0.5
    assert limiter.wait_s("a") == 0 and limiter.wait_s("a") == pytest.approx(0.5)


def test_a_key_file_needs_real_keys_and_the_access_log_never_shows_one(tmp_path):
    import logging

    from distilora.serve.perspective.access import RedactKeys, read_keys

    keys = tmp_path / "keys.txt"
    keys.write_text("# comment\n\nsecret-key-1\n  secret-key-2  \n")
    assert read_keys(keys) == ("secret-key-1", "secret-key-2")
    keys.write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no key"):
        read_keys(keys)
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', (
        "127.0.0.1:5", "POST", "/v1alpha1/comments:analyze?key=secret-key-1&alt=json", "1.1", 200), None)
    RedactKeys().filter(record)
    assert "secret" not in record.getMessage() and "key=REDACTED&alt=json" in record.getMessage()


def test_a_bad_attribute_stops_serve_before_any_model_is_loaded(tiny_run, capsys):
    from distilora.cli import main

    assert main(["serve", "--run", str(tiny_run), "--attribute", "TOXICITY=odd"]) == 2
    assert "expected NAME=RUN:MODEL[:LABEL]" in capsys.readouterr().err


class _HeldClassifier:
    """A model that holds its batch until released, so a test knows the queue is full."""

    labels = ["neutral", "toxic"]
    layers = None
    max_length = 32

    def __init__(self):
        import threading

        self.running, self.release = threading.Event(), threading.Event()

    def predict(self, texts):
        from distilora.inference import Prediction

        self.running.set()
        self.release.wait(30)
        return [Prediction("neutral", {"neutral": 0.9, "toxic": 0.1}) for _ in texts]


def test_a_full_queue_answers_unavailable_with_retry_after_in_googles_shape(tiny_run):
    import asyncio

    import httpx

    model = _HeldClassifier()
    registry = ModelRegistry(tiny_run, {"held": model}, {"labels": ["neutral", "toxic"], "models": {}})
    app = create_app(registry=registry, settings=ServeConfig(max_queued_texts=1))
    body = {"comment": {"text": "hello there"}, "requestedAttributes": {"TOXICITY": {}}, "languages": ["en"]}

    async def second_while_the_first_runs() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            first = asyncio.ensure_future(http.post(ANALYZE, json=body))
            while not model.running.is_set():
                await asyncio.sleep(0.01)
            busy = await http.post(ANALYZE, json=body)
            model.release.set()
            return [busy, await first]

    busy, served = asyncio.run(second_while_the_first_runs())
    google_error(busy, 503, "UNAVAILABLE")
    assert int(busy.headers["retry-after"]) >= 1
    assert served.status_code == 200 and served.json()["attributeScores"]["TOXICITY"]["summaryScore"]["value"] == 0.1


def test_the_page_shows_the_perspective_endpoint_and_an_example_request(client):
    page = client.get("/").text
    assert "POST /v1alpha1/comments:analyze" in page and 'href="/v1alpha1/attributes"' in page
    example = page[page.index("<pre><code>curl") : page.index("</code></pre>")]
    assert "/v1alpha1/comments:analyze?key=" in example and '"requestedAttributes": {"TOXICITY": {}}' in example
