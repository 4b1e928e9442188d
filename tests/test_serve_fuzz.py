"""A real ``distilora serve`` on loopback, fuzzed by Schemathesis from its own OpenAPI and driven by the load script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from server_process import ServerProcess

REPO = Path(__file__).resolve().parents[1]
SCHEMATHESIS_CONFIG = REPO / "src" / "distilora" / "serve" / "schemathesis.toml"
LOAD_TEST = REPO / "scripts" / "load_test.py"
READY_TIMEOUT_S = 120
"""How long a load test waits for the server to be ready: an earlier test's overlong request may have had its model
process restarted."""


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    with ServerProcess(tiny_run, tmp_path_factory.mktemp("serve") / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def multi_label_server(tmp_path_factory):
    from tests.multi_label_model import make_multi_label_run

    run = make_multi_label_run(tmp_path_factory.mktemp("multi-label") / "run")
    with ServerProcess(run, tmp_path_factory.mktemp("serve") / "server.log") as running:
        yield running


def test_schemathesis_finds_no_server_errors_or_schema_violations(server, tmp_path):
    """Every check (5xx, status codes, content types, response schemas, positive and negative data) passes."""
    fuzz(server, tmp_path)


def test_schemathesis_finds_no_schema_violations_in_a_multi_label_models_answers(multi_label_server, tmp_path):
    """The same checks against a multi-label model (its decided labels and thresholds in every answer)."""
    fuzz(multi_label_server, tmp_path)


def fuzz(server: ServerProcess, tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = [str(schemathesis), "--no-color", "--config-file", str(SCHEMATHESIS_CONFIG),
               "run", f"{server.url}/openapi.json", "--exclude-tag", "perspective", "--checks", "all",
               "--max-examples", "40",
               "--seed", "20240611", "--workers", "2", "--request-timeout", "20",
               "--report", "junit", "--report-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"schemathesis found problems:\n{output[-6000:]}\nserver log:\n{server.log_tail()}"
    assert "No issues found" in output
    # /healthz, /api/v1/models, /api/v1/classify, /api/v1/checks; the 5 Perspective operations are
    # tests/test_perspective_api.py's (their own settings).
    assert "4 selected / 9 total" in output
    assert "Traceback" not in server.log_tail(100_000)


def test_load_script_reports_rate_latency_errors_and_memory(server):
    server.wait_healthy(READY_TIMEOUT_S)
    done = subprocess.run(
        [sys.executable, str(LOAD_TEST), "--port", str(server.port), "--clients", "8", "--duration", "4",
         "--max-requests", "400", "--texts-per-request", "2", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["server_pid"] == server.pid  # found by its port
    assert report["clients"] == 8
    assert 0 < report["answered"] <= 400
    assert report["error_count"] == 0 and report["server_5xx"] == 0 and report["non_2xx"] == 0
    assert report["statuses"] == {"200": report["answered"]}
    assert report["requests_per_s"] > 0
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
    assert report["rss_mib_before"] > 50 and report["rss_mib_after"] > 50
    assert report["rss_mib_change"] < 50, f"server memory grew {report['rss_mib_change']} MiB"


def test_load_script_mixed_payloads_and_slow_clients(server):
    server.wait_healthy(READY_TIMEOUT_S)
    done = subprocess.run(
        [sys.executable, str(LOAD_TEST), "--port", str(server.port), "--clients", "4", "--duration", "3",
         "--payload", "mix", "--texts-per-request", "32", "--slow-clients", "1", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    report = json.loads(done.stdout)
    assert done.returncode == (1 if "504" in report["statuses"] else 0), done.stdout + done.stderr  # 504s count
    assert report["payload"] == "mix" and report["answered"] >= 3
    # Every text is read whole (long texts in windows), so a request at the limits (256 texts of 10,000 characters)
    # is far more work than 256 tweets: under load it may pass the per-request timeout (504), never fail otherwise.
    assert set(report["statuses"]) <= {"200", "503", "504"} and report["error_count"] == 0
    assert report["statuses"].get("200", 0) >= 3
    assert report["slow_clients"]["answered"] >= 1 and report["slow_clients"]["errors"] == {}
    assert report["healthz_ms"]["probes"] > 0
    if set(report["statuses"]) == {"200"}:  # a call past its deadline makes /healthz say 503 until it ends, by design
        assert report["healthz_ms"]["p99"] < 10_000
    assert len(report["server_cpu_percent_after"]) == 3


def test_load_script_stops_at_its_request_budget(server):
    server.wait_healthy(READY_TIMEOUT_S)
    done = subprocess.run(
        [sys.executable, str(LOAD_TEST), "--port", str(server.port), "--clients", "4", "--duration", "30",
         "--max-requests", "25", "--pid", str(server.pid), "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["requests"] == report["answered"] == 25
    assert report["seconds"] < 30


@pytest.mark.parametrize("host", ["10.11.12.13", "192.0.2.1"])
def test_load_script_refuses_hosts_other_than_loopback(host):
    done = subprocess.run([sys.executable, str(LOAD_TEST), "--host", host, "--duration", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "not a loopback address" in done.stderr
