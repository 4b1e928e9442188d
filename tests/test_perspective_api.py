"""A real ``distilora serve`` (uvicorn in a child process) driven by Google's own client, google-api-python-client,
with only the discovery URL and the key changed: two attributes from two runs, errors as HttpError, keys, --qps,
feedback, the logs, and Schemathesis on the Perspective operations."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from googleapiclient import discovery
from googleapiclient.errors import HttpError
from server_process import ServerProcess

REPO = Path(__file__).resolve().parents[1]
SCHEMATHESIS_CONFIG = REPO / "src" / "distilora" / "serve" / "perspective" / "schemathesis.toml"
KEYS = ("key-for-tests-0001", "key-for-tests-0002", "key-for-tests-0003", "key-for-tests-0004")
MARKER = "Zanzibar-quokka-7731"
"""A word no log line may ever hold: it is only ever sent inside comments."""


def google_client(url: str, key: str):
    """Exactly how a Perspective program builds its client, with this server's discovery URL."""
    return discovery.build("commentanalyzer", "v1alpha1", developerKey=key,
                           discoveryServiceUrl=f"{url}/$discovery/rest?version=v1alpha1", static_discovery=False)


def post(url: str, path: str, body: dict, key: str | None = None) -> tuple[int, dict]:
    query = f"?key={key}" if key else ""
    request = urllib.request.Request(f"{url}{path}{query}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def analyze_body(text: str, *attributes: str) -> dict:
    return {"comment": {"text": text}, "requestedAttributes": {name: {} for name in attributes}}


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keys.txt"
    path.write_text("# one key a line\n" + "\n".join(KEYS) + "\n")
    return path


@pytest.fixture(scope="module")
def feedback_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("feedback") / "suggestions"


@pytest.fixture(scope="module")
def server(tiny_run, second_run, keys_file, feedback_dir, tmp_path_factory):
    """Two attributes from two runs, keys, and feedback kept."""
    args = ("--attribute", f"TOXICITY={tiny_run}:odd", "--attribute", f"IDENTITY_ATTACK={second_run}:even",
            "--api-key-file", str(keys_file), "--feedback-dir", str(feedback_dir))
    with ServerProcess(tiny_run, tmp_path_factory.mktemp("serve") / "server.log", extra_args=args) as running:
        yield running


@pytest.fixture(scope="module")
def limited_server(tiny_run, keys_file, tmp_path_factory):
    """The default attribute, one request per key per ~17 minutes, no feedback kept."""
    args = ("--api-key-file", str(keys_file), "--qps", "0.001")
    with ServerProcess(tiny_run, tmp_path_factory.mktemp("serve") / "limited.log", extra_args=args) as running:
        yield running


def classify_score(url: str, text: str, model: str, label: str) -> float:
    status, body = post(url, "/api/v1/classify", {"texts": [text], "model": model})
    assert status == 200, body
    return body["results"][0]["scores"][label]


def test_googles_client_scores_two_attributes_from_two_runs_as_classify_does(server):
    client = google_client(server.url, KEYS[0])
    text = f"You people are {MARKER} vermin and trash."
    response = client.comments().analyze(body={**analyze_body(text, "TOXICITY", "IDENTITY_ATTACK"),
                                               "clientToken": "c-1"}).execute()
    assert set(response["attributeScores"]) == {"TOXICITY", "IDENTITY_ATTACK"}
    assert response["clientToken"] == "c-1" and response["languages"] == ["en"]
    with urllib.request.urlopen(f"{server.url}/v1alpha1/attributes", timeout=30) as answer:
        served = {a["name"]: a for a in json.loads(answer.read())["attributes"]}
    second = served["IDENTITY_ATTACK"]
    assert (second["servedAs"], second["run"]) == ("second-run/even", "second-run")
    for name, attribute in served.items():
        expected = classify_score(server.url, text, attribute["servedAs"], attribute["label"])
        assert response["attributeScores"][name]["summaryScore"]["value"] == pytest.approx(expected, abs=1e-6)
        assert response["attributeScores"][name]["summaryScore"]["type"] == "PROBABILITY"


def test_an_error_reaches_googles_client_as_http_error_with_its_status(server):
    client = google_client(server.url, KEYS[0])
    with pytest.raises(HttpError) as error:
        client.comments().analyze(body=analyze_body("x" * 20_481, "TOXICITY")).execute()
    assert error.value.status_code == 400 and "20,481" in error.value.reason
    with pytest.raises(HttpError) as error:
        client.comments().analyze(body=analyze_body("hello", "SEVERE_TOXICITY")).execute()
    assert error.value.status_code == 400 and "Unknown attribute SEVERE_TOXICITY" in error.value.reason
    with pytest.raises(HttpError) as error:
        google_client(server.url, "not-a-key-0000").comments().analyze(body=analyze_body("hi", "TOXICITY")).execute()
    assert error.value.status_code == 403


def test_a_missing_or_wrong_key_gets_permission_denied(server):
    for key in (None, "not-a-key-0000"):
        status, body = post(server.url, "/v1alpha1/comments:analyze", analyze_body("hello", "TOXICITY"), key)
        assert status == 403 and body["error"]["status"] == "PERMISSION_DENIED", body
    status, _ = post(server.url, "/v1alpha1/comments:analyze", analyze_body("hello", "TOXICITY"), KEYS[1])
    assert status == 200


def test_the_attributes_name_each_model_with_its_card_version_and_manifest_hash(server, tiny_run, second_run):
    with urllib.request.urlopen(f"{server.url}/v1alpha1/attributes", timeout=30) as answer:
        served = {a["name"]: a for a in json.loads(answer.read())["attributes"]}
    for name, model_dir in (("TOXICITY", tiny_run / "odd"), ("IDENTITY_ATTACK", second_run / "even")):
        attribute = served[name]
        manifest = model_dir / "manifest.json"
        assert attribute["manifestSha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
        assert attribute["version"] == json.loads(manifest.read_text())["fingerprint"]
        assert attribute["languages"] == ["en"] and attribute["label"] == "toxic"
        with urllib.request.urlopen(server.url + attribute["card"], timeout=30) as card:
            assert card.read().decode() == (model_dir / "README.md").read_text()


def test_suggestscore_appends_the_comment_the_scores_and_the_model_to_the_feedback_file(server, feedback_dir):
    client = google_client(server.url, KEYS[0])
    text = f"I guess it comes down to a simple {MARKER} choice."
    body = {"comment": {"text": text}, "clientToken": "s-1", "communityId": "/forum/movies",
            "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0},
                                             "spanScores": [{"begin": 0, "end": 7, "score": {"value": 0}}]}}}
    assert client.comments().suggestscore(body=body).execute() == {"clientToken": "s-1"}
    records = [json.loads(line) for line in (feedback_dir / "feedback.jsonl").read_text().splitlines()]
    record = records[-1]
    assert record["comment"] == text and record["clientToken"] == "s-1" and record["communityId"] == "/forum/movies"
    assert record["suggested"]["TOXICITY"]["summaryScore"] == {"value": 0.0}
    served = record["served"]["TOXICITY"]
    assert served["summaryScore"] == pytest.approx(classify_score(server.url, text, "odd", "toxic"), abs=1e-6)
    assert served["model"]["model"] == "odd" and len(served["model"]["manifestSha256"]) == 64


def test_requests_past_the_qps_of_a_key_get_resource_exhausted(limited_server):
    first, _ = post(limited_server.url, "/v1alpha1/comments:analyze", analyze_body("hello", "TOXICITY"), KEYS[0])
    status, body = post(limited_server.url, "/v1alpha1/comments:analyze", analyze_body("hello", "TOXICITY"), KEYS[0])
    assert first == 200 and status == 429 and body["error"]["status"] == "RESOURCE_EXHAUSTED", body
    text = "Have a lovely day!"
    other_key, scored = post(limited_server.url, "/v1alpha1/comments:analyze", analyze_body(text, "TOXICITY"), KEYS[1])
    assert other_key == 200  # the rate is per key; TOXICITY is served by default, from the run's default model
    with urllib.request.urlopen(f"{limited_server.url}/v1alpha1/attributes", timeout=30) as answer:
        (attribute,) = json.loads(answer.read())["attributes"]
    assert attribute["name"] == "TOXICITY"
    expected = classify_score(limited_server.url, text, attribute["servedAs"], attribute["label"])
    assert scored["attributeScores"]["TOXICITY"]["summaryScore"]["value"] == pytest.approx(expected, abs=1e-6)


def test_suggestscore_is_refused_by_a_server_without_feedback_dir(limited_server):
    body = {"comment": {"text": "hi"}, "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0}}}}
    status, answer = post(limited_server.url, "/v1alpha1/comments:suggestscore", body, KEYS[2])
    assert status == 400 and answer["error"]["status"] == "FAILED_PRECONDITION", answer


def test_schemathesis_finds_no_server_error_in_the_perspective_operations(server, tmp_path):
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = [str(schemathesis), "--no-color", "--config-file", str(SCHEMATHESIS_CONFIG),
               "run", f"{server.url}/openapi.json", "--include-tag", "perspective", "--checks", "all",
               "--header", f"X-Goog-Api-Key: {KEYS[3]}", "--max-examples", "30", "--seed", "20261204",
               "--workers", "2", "--request-timeout", "30", "--report", "junit", "--report-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"schemathesis found problems:\n{output[-6000:]}\nserver log:\n{server.log_tail()}"
    assert "5 selected" in output and "Runtime Error" not in output
    assert "Traceback" not in server.log_tail(1_000_000)


def test_the_load_script_drives_analyze_with_a_key(server):
    """A few requests only: the script works for --endpoint analyze (the measurement itself is not a test)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "load_test.py"), "--port", str(server.port), "--endpoint", "analyze",
         "--key", KEYS[3], "--payload", "single", "--clients", "2", "--max-requests", "12", "--json"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["url"].endswith("/v1alpha1/comments:analyze") and report["statuses"] == {"200": 12}


def test_no_log_line_holds_a_comment_or_an_api_key(server):
    """Run last: every request above (and these, failing on purpose) sent the marker inside comments only."""
    client = google_client(server.url, KEYS[0])
    for body in (analyze_body(f"{MARKER} " * 3000, "TOXICITY"), analyze_body(f"Du bist {MARKER}, ich hasse dich.",
                 "TOXICITY"), {**analyze_body(MARKER, "TOXICITY"), "spanAnnotations": True},
                 {**analyze_body(MARKER, "TOXICITY"), "unknownField": MARKER}):
        try:
            client.comments().analyze(body=body).execute()
        except HttpError as error:
            assert MARKER not in error.reason  # nor does an error message repeat the comment
    log = server.log_tail(10_000_000)
    assert "comments:analyze" in log  # the access log is on
    assert MARKER not in log
    assert not any(key in log for key in KEYS)
