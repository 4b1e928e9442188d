"""Serving under load and the holes the review found: micro-batching, a bounded queue, timeouts and disconnects that
stop work, request hygiene, the Host check and headers on every response."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from distilora.config import ServeConfig
from distilora.inference import Prediction
from distilora.serve import ModelRegistry, create_app

LOCAL = "http://127.0.0.1"


class RecordingPredictor:
    """A model that takes ``sleep_s`` per call and records every batch it is given."""

    labels = ["neutral", "toxic"]
    layers = None
    max_length = 32

    def __init__(self, sleep_s: float = 0.0):
        self.sleep_s = sleep_s
        self.batches: list[list[str]] = []
        self.lock = threading.Lock()

    def predict(self, texts: list[str]) -> list[Prediction]:
        with self.lock:
            self.batches.append(list(texts))
        time.sleep(self.sleep_s)
        return [Prediction("toxic" if "bad" in t else "neutral", {"neutral": 0.5, "toxic": 0.5}) for t in texts]

    @property
    def seen(self) -> list[str]:
        return [text for batch in self.batches for text in batch]


def fake_app(predictor: RecordingPredictor, **settings):
    registry = ModelRegistry(Path("."), {"fake": predictor, "other": predictor},
                             {"labels": ["neutral", "toxic"], "models": {}})
    return create_app(registry=registry, settings=ServeConfig(**settings))


async def _post_all(app, bodies: list[dict]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=LOCAL, timeout=30) as http:
        return await asyncio.gather(*(http.post("/api/v1/classify", json=b) for b in bodies))


# ---- micro-batching ------------------------------------------------------------------------------------------------
def test_concurrent_requests_are_gathered_into_batches_and_answered_in_order():
    predictor = RecordingPredictor(sleep_s=0.05)
    app = fake_app(predictor, max_batch_texts=64, max_wait_ms=20)
    bodies = [{"texts": [f"text {i}", f"bad {i}"], "model": "fake"} for i in range(16)]
    responses = asyncio.run(_post_all(app, bodies))
    assert [r.status_code for r in responses] == [200] * 16
    for i, response in enumerate(responses):
        assert [r["label"] for r in response.json()["results"]] == ["neutral", "toxic"], i
    assert len(predictor.batches) < 16, "requests were run one by one"
    assert max(len(b) for b in predictor.batches) > 2
    assert sorted(predictor.seen) == sorted(t for b in bodies for t in b["texts"])
    assert app.state.scheduler.pending_texts == 0


def test_a_batch_holds_one_model_and_at_most_max_batch_texts():
    predictor = RecordingPredictor(sleep_s=0.05)
    app = fake_app(predictor, max_batch_texts=8, max_wait_ms=20)
    bodies = [{"texts": [f"{m} {i}"] * 3, "model": m} for i in range(8) for m in ("fake", "other")]
    assert {r.status_code for r in asyncio.run(_post_all(app, bodies))} == {200}
    for batch in predictor.batches:
        assert len(batch) <= 8 and len({text.split()[0] for text in batch}) == 1


# ---- timeouts and back-pressure stop work ------------------------------------------------------------------------
def test_a_request_that_times_out_in_the_queue_is_never_computed():
    """Before: a 504 request's forward pass ran on in a thread and its slot was freed at once."""
    predictor = RecordingPredictor(sleep_s=1.0)
    app = fake_app(predictor, timeout_s=0.3, max_wait_ms=0)
    responses = asyncio.run(_post_all(app, [{"texts": ["first"], "model": "fake"},
                                            {"texts": ["queued behind"], "model": "other"}]))
    assert [r.status_code for r in responses] == [504, 504]
    time.sleep(1.2)  # the running batch finishes; nothing else may start
    assert predictor.seen == ["first"]
    assert app.state.scheduler.pending_texts == 0


def test_a_full_queue_answers_503_with_retry_after_instead_of_queueing():
    predictor = RecordingPredictor(sleep_s=0.3)
    app = fake_app(predictor, max_queued_texts=4, max_batch_texts=4, max_wait_ms=0)
    responses = asyncio.run(_post_all(app, [{"texts": ["x"] * 4, "model": "fake"} for _ in range(6)]))
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}
    for response in responses:
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["error"] == "busy"
    assert len(predictor.seen) == 4 * statuses.count(200)


def test_a_client_that_goes_away_is_taken_out_of_the_queue():
    """Before: a client that disconnected cancelled nothing."""
    predictor = RecordingPredictor(sleep_s=0.5)
    app = fake_app(predictor, timeout_s=10, max_wait_ms=0)

    async def call(body: dict, leave_after_s: float | None) -> list[dict]:
        sent: list[dict] = []
        payload = json.dumps(body).encode()
        delivered = False

        async def receive():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await asyncio.sleep(leave_after_s if leave_after_s is not None else 30)
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/api/v1/classify", "raw_path": b"/api/v1/classify",
                 "query_string": b"", "root_path": "", "scheme": "http", "server": ("127.0.0.1", 80),
                 "http_version": "1.1", "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                                                    (b"content-length", str(len(payload)).encode())]}
        await app(scope, receive, send)
        return sent

    async def both():
        first = asyncio.ensure_future(call({"texts": ["stays"], "model": "fake"}, None))
        await asyncio.sleep(0.1)
        gone = await call({"texts": ["leaves"], "model": "other"}, 0.05)
        return await first, gone

    first, gone = asyncio.run(both())
    assert first[0]["status"] == 200 and gone[0]["status"] == 499
    time.sleep(0.6)
    assert predictor.seen == ["stays"]
    assert app.state.scheduler.pending_texts == 0


# ---- request hygiene -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(fake_app(RecordingPredictor()), base_url=LOCAL)


def test_many_unknown_keys_get_one_error_that_echoes_nothing(client):
    """Before: 600,000 unknown keys made 600,000 validation errors, and the 20 kept echoed the key names."""
    body = json.dumps({"texts": ["hi"], **{f"secret-key-{i}": 0 for i in range(600_000)}}).encode()
    started = time.perf_counter()
    response = client.post("/api/v1/classify", content=body, headers={"Content-Type": "application/json"})
    assert time.perf_counter() - started < 10
    assert response.status_code == 422
    assert len(response.json()["details"]) == 1 and "secret-key" not in response.text
    assert "unknown field" in response.json()["message"]


@pytest.mark.parametrize("text", ["\x00", "\x00\x00\x00", "\u200b\u200c\u200d", "\ufeff", "\u2060 \u00ad", "\x07\t"])
def test_texts_of_only_control_or_zero_width_characters_are_422(client, text):
    """Before: texts made only of NUL / zero-width characters got a confident label."""
    response = client.post("/api/v1/classify", json={"texts": ["fine", text], "model": "fake"})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "texts[1]"


def test_every_response_carries_the_security_headers(client):
    """Before: CSP and nosniff were set only on /."""
    for method, path in (("GET", "/"), ("GET", "/healthz"), ("GET", "/openapi.json"), ("GET", "/static/app.js"),
                         ("GET", "/nothing"), ("POST", "/healthz"), ("GET", "/docs")):
        response = client.request(method, path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["referrer-policy"] == "no-referrer", path


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "10.0.0.5", "localhost.evil.example"])
def test_an_unknown_host_header_is_refused(client, host):
    """Before: no Host check (DNS rebinding)."""
    response = client.get("/api/v1/models", headers={"Host": host})
    assert response.status_code == 400 and response.json()["error"] == "bad_request"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "[::1]:8000"])
def test_local_host_headers_are_served(client, host):
    assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_the_api_docs_use_local_assets_only(client):
    """Before: /docs loaded its assets from a CDN and was blank offline."""
    page = client.get("/docs").text
    assert "cdn" not in page.lower() and "https://" not in page
    for asset in ("/static-offline-docs/swagger-ui-bundle.js", "/static-offline-docs/swagger-ui.css"):
        assert asset in page
        response = client.get(asset)
        assert response.status_code == 200 and len(response.content) > 10_000


# ---- every error path answers cleanly -------------------------------------------------------------------------------
class FailingPredictor(RecordingPredictor):
    def predict(self, texts: list[str]) -> list[Prediction]:
        raise RuntimeError("a bug in the model")


def test_a_500_carries_the_security_headers():
    """Before: the handler of unexpected errors sat outside the middleware that adds them."""
    client = TestClient(fake_app(FailingPredictor()), base_url=LOCAL, raise_server_exceptions=False)
    response = client.post("/api/v1/classify", json={"texts": ["hi"], "model": "fake"})
    assert response.status_code == 500 and response.json()["error"] == "internal_error"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(("body", "phrase"), [
    (b'{"texts": ' + b"[" * 3000 + b"]" * 3000 + b"}", "nested too deeply"),
    (b'{"texts": [' + b"7" * 4301 + b"]}", "too many digits"),
    (b'{"texts": ["hi"], "model": -' + b"9" * 100_000 + b"}", "too many digits"),
])
def test_hostile_json_is_422_with_the_usual_error_and_no_traceback(client, caplog, body, phrase):
    """Before: RecursionError and ValueError made 500s, each logged with two tracebacks."""
    caplog.set_level(logging.INFO)
    response = client.post("/api/v1/classify", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert set(response.json()) == {"status", "error", "message", "details"}
    assert phrase in response.json()["message"] and "77777" not in response.text
    assert not [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]


# ---- body limits ---------------------------------------------------------------------------------------------------
def test_256_texts_of_10000_emoji_fit_the_body_limit():
    """Before: the limit assumed 6 bytes per character, but json.dumps spells an emoji in 12 (a surrogate pair)."""
    predictor = RecordingPredictor()
    body = json.dumps({"texts": ["\U0001F600" * 10_000] * 256, "model": "fake"}).encode()
    assert len(body) > 256 * 10_000 * 12 and b"\\ud83d\\ude00" in body[:100]
    response = TestClient(fake_app(predictor), base_url=LOCAL).post(
        "/api/v1/classify", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["results"]) == 256 and predictor.seen[0] == "\U0001F600" * 10_000


def _scope(path: str = "/api/v1/classify") -> dict:
    return {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "scheme": "http", "server": ("127.0.0.1", 80), "http_version": "1.1",
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")]}


async def _trickle(app, chunk: bytes = b" " * 10, every_s: float = 0.1) -> list[dict]:
    """A client sending ``chunk`` every ``every_s`` for as long as the server reads; what the server sent back."""
    sent: list[dict] = []

    async def receive() -> dict:
        await asyncio.sleep(every_s)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(_scope(), receive, send)
    return sent


def test_clients_trickling_bodies_do_not_keep_an_honest_post_waiting():
    """Before: 8 clients sending 100 bytes/s held the 8 reading slots for the whole 30 s timeout."""
    app = fake_app(RecordingPredictor())  # the default limits: 8 slots, 16 KiB/s after the first 2 s, 30 s

    async def scenario() -> tuple[httpx.Response, list[list[dict]]]:
        slow = [asyncio.ensure_future(_trickle(app)) for _ in range(app.state.settings.max_bodies)]
        await asyncio.sleep(0.3)  # every slot is taken
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as http:
                honest = await asyncio.wait_for(http.post("/api/v1/classify", json={"texts": ["hi"]}), 20)
            return honest, await asyncio.wait_for(asyncio.gather(*slow), 20)
        finally:
            for task in slow:
                task.cancel()

    honest, slow = asyncio.run(scenario())
    assert honest.status_code == 200
    for sent in slow:
        assert sent[0]["status"] == 408
        assert "too slowly" in json.loads(sent[1]["body"])["message"]


# ---- dispatch at once when idle ------------------------------------------------------------------------------------
def test_a_request_to_an_idle_server_is_dispatched_without_the_batching_wait():
    """Before: the worker waited max_wait_ms for company even with nothing else queued or running; with a wait of
    10 minutes the lone request timed out."""
    predictor = RecordingPredictor()
    app = fake_app(predictor, max_wait_ms=600_000, timeout_s=20)
    responses = asyncio.run(asyncio.wait_for(_post_all(app, [{"texts": ["alone"], "model": "fake"}]), 60))
    assert [r.status_code for r in responses] == [200]
    assert predictor.batches == [["alone"]]


def test_a_request_that_comes_while_a_batch_runs_waits_for_company():
    predictor = RecordingPredictor(sleep_s=1.0)
    app = fake_app(predictor, max_wait_ms=600_000, max_batch_texts=2, timeout_s=60)

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as http:
            def post(text: str):
                return http.post("/api/v1/classify", json={"texts": [text], "model": "fake"})

            first = asyncio.ensure_future(post("first"))
            for _ in range(1000):  # until the first batch is running
                if predictor.batches:
                    break
                await asyncio.sleep(0.01)
            second = asyncio.ensure_future(post("second"))
            answered = [(await first).status_code]
            third = await asyncio.wait_for(post("third"), 60)  # joins the second, which waited for company
            return [*answered, (await second).status_code, third.status_code]

    assert asyncio.run(scenario()) == [200, 200, 200]
    assert predictor.batches == [["first"], ["second", "third"]]


# ---- the models in their own process ---------------------------------------------------------------------------------
def test_models_served_from_a_child_process_answer_like_the_classifier(tiny_run):
    """``create_app(run_dir)`` runs the models in a child process (no GIL shared with the event loop)."""
    import os

    from distilora.inference import load_classifier

    app = create_app(tiny_run, settings=ServeConfig(model_process=True))
    process = app.state.registry.process
    try:
        assert process is not None and process.pid != os.getpid() and process.is_alive()
        texts = ["love coffee and music", "worthless scum and vermin", "you are " * 40]
        with TestClient(app, base_url=LOCAL) as client:
            body = client.post("/api/v1/classify", json={"texts": texts, "model": "even"}).json()
            even = load_classifier(tiny_run, "even")
            expected = even.predict(texts)
            assert body["decision"] == even.decision and body["decision"]["threshold"] == expected[0].threshold
            for got, want in zip(body["results"], expected, strict=True):
                assert (got["label"], got["truncated"]) == (want.label, want.truncated)
                assert got["scores"] == pytest.approx(want.scores, abs=1e-5)
            described = client.get("/api/v1/models").json()["models"][2]
            assert described["layers"] == [2, 4] and described["decision"] == even.decision
        assert not process.is_alive(), "shutting the app down stops the model process"
    finally:
        process.close()
