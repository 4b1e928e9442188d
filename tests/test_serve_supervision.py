"""The supervised model process: a child that dies or hangs is replaced while requests get 503 (never 500), /healthz
tells readiness, one that keeps dying is given up, shutdown and Ctrl-C are bounded and clean, and a model that fails
to load stops ``distilora serve`` with one line. Every wait here is bounded."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from server_process import ServerProcess, free_port

from distilora.cli import main as cli_main
from distilora.config import ServeConfig
from distilora.serve import create_app

LOCAL = "http://127.0.0.1"
RESTART_S = 180.0
"""Bound on a model process restart (spawn, import torch, load four tiny models) on a busy 2-core machine."""


def classify(client: httpx.Client | TestClient, text: str = "have a lovely day") -> httpx.Response:
    return client.post("/api/v1/classify", json={"texts": [text], "model": "odd"})


def until(probe: Callable[[], httpx.Response], done: Callable[[httpx.Response], bool],
          timeout_s: float = RESTART_S) -> list[httpx.Response]:
    """Call ``probe`` every 0.1 s until ``done`` holds for its answer; every answer, the last one satisfying it."""
    answers, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answers.append(probe())
        if done(answers[-1]):
            return answers
        time.sleep(0.1)
    raise AssertionError(f"not done within {timeout_s:g} s; last answer: {answers[-1].status_code} "
                         f"{answers[-1].text[:300]}")


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def gone(pid: int, timeout_s: float = 30) -> bool:
    try:
        psutil.Process(pid).wait(timeout=timeout_s)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


@pytest.fixture()
def run_copy(tiny_run, tmp_path) -> Path:
    shutil.copytree(tiny_run, tmp_path / "run")
    return tmp_path / "run"


# ---- end to end: kill -9 of the model process ----------------------------------------------------------------------
def test_a_killed_model_process_is_replaced_while_requests_answer_503_then_200(tiny_run, tmp_path):
    """Before: every classify after the child's death was a 500 (BrokenPipeError) and /healthz stayed ok."""
    with ServerProcess(tiny_run, tmp_path / "server.log") as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        assert classify(http).status_code == 200
        first = server.model_process_pid()
        os.kill(first, signal.SIGKILL)

        health = until(lambda: http.get("/healthz"), lambda r: r.status_code != 200, timeout_s=10)[-1]
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert "killed by SIGKILL" in health.json()["reason"] and int(health.headers["retry-after"]) >= 1
        refused = classify(http)
        assert refused.status_code == 503 and refused.json()["error"] == "model_unavailable"
        assert "restarting" in refused.json()["message"] and int(refused.headers["retry-after"]) >= 1

        answers = until(lambda: classify(http), lambda r: r.status_code == 200)
        assert {r.status_code for r in answers} <= {503, 200}
        assert http.get("/healthz").json() == {"status": "ok", "models": ["teacher", "odd", "even", "lora"],
                                               "reason": None}
        second = server.model_process_pid()
        assert second != first
        log = server.log_tail(1_000_000)
        assert f"the model process (pid {first}) was killed by SIGKILL; starting another" in log
        assert "the model process is back" in log and "Traceback" not in log
    assert gone(second), "stopping the server stops its model process"


# ---- in process: hung child, crash loop ----------------------------------------------------------------------------
def test_a_hung_model_process_is_killed_at_the_call_deadline_and_replaced(tiny_run, caplog):
    caplog.set_level(logging.WARNING)
    app = create_app(tiny_run, settings=ServeConfig(model_call_timeout_s=2.0))
    process = app.state.registry.process
    with TestClient(app, base_url=LOCAL) as client:
        hung = process.pid
        os.kill(hung, signal.SIGSTOP)
        try:
            answer = classify(client)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(hung, signal.SIGCONT)
        assert answer.status_code == 503 and int(answer.headers["retry-after"]) >= 1
        assert "did not answer within 2 s" in answer.json()["message"]
        until(lambda: client.get("/healthz"), lambda r: r.status_code == 200)
        assert classify(client).status_code == 200 and process.pid != hung
        assert f"the model process (pid {hung}) did not answer within 2 s" in caplog.text
    assert gone(hung)


def test_a_model_process_that_keeps_dying_is_given_up_and_the_server_says_so(run_copy, caplog):
    """Its replacement verifies the checksums again: a corrupted file makes every restart fail, a crash loop."""
    caplog.set_level(logging.WARNING)
    app = create_app(run_copy, settings=ServeConfig(crash_loop_deaths=2, crash_loop_window_s=600))
    with TestClient(app, base_url=LOCAL) as client:
        assert classify(client).status_code == 200
        corrupt(run_copy / "odd" / "model.safetensors")
        os.kill(app.state.registry.process.pid, signal.SIGKILL)

        health = until(lambda: client.get("/healthz"), lambda r: "not started again" in (r.json()["reason"] or ""))
        statuses = [r.status_code for r in health]  # a first 200 if asked before the death was noticed
        assert set(statuses[statuses.index(503):]) == {503}
        reason = health[-1].json()["reason"]
        assert "died 2 times within 600 s" in reason and "checksum mismatch for model.safetensors" in reason
        refused = classify(client)
        assert refused.status_code == 503 and refused.json()["message"] == reason
        assert int(refused.headers["retry-after"]) >= 1
        time.sleep(1.0)
        assert not app.state.registry.process.is_alive(), "a given-up model process is not started again"
    assert "was killed by SIGKILL; starting another" in caplog.text and "not started again" in caplog.text


# ---- shutdown ------------------------------------------------------------------------------------------------------
def _post_in_background(server: ServerProcess, pool: ThreadPoolExecutor):
    def post() -> int | str:
        try:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                return classify(http).status_code
        except httpx.HTTPError as error:
            return type(error).__name__

    return pool.submit(post)


def test_shutdown_is_bounded_while_the_model_process_hangs_in_a_request(tiny_run, tmp_path):
    """Before: closing waited for ever on the lock the batching thread held inside recv(), in the lifespan."""
    server = ServerProcess(tiny_run, tmp_path / "server.log").start()
    child = server.model_process_pid()
    try:
        os.kill(child, signal.SIGSTOP)
        with ThreadPoolExecutor(1) as pool:
            pending = _post_in_background(server, pool)
            time.sleep(2.0)  # the request reaches the hung model process
            server.process.terminate()
            try:
                server.process.wait(timeout=60)
            except Exception:
                pytest.fail(f"the server did not stop within 60 s:\n{server.log_tail()}")
            pending.result(timeout=60)
        assert gone(child), "the hung model process was not stopped"
        # uvicorn cancels the request still stuck after its 5 s of grace (and logs that); nothing else fails
        log = server.log_tail(1_000_000)
        assert "timeout graceful shutdown exceeded" in log and "Application shutdown complete" in log
        assert "model_process.py" not in log and "KeyboardInterrupt" not in log, log
    finally:
        server.stop()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_ctrl_c_lets_requests_in_flight_finish_and_the_model_process_ignores_it(tiny_run, tmp_path):
    """Before: the child died of the KeyboardInterrupt (a traceback) and the request in flight got a 500."""
    server = ServerProcess(tiny_run, tmp_path / "server.log").start()
    child = server.model_process_pid()
    try:
        os.kill(child, signal.SIGSTOP)  # holds the request in flight while the Ctrl-C arrives
        with ThreadPoolExecutor(1) as pool:
            pending = _post_in_background(server, pool)
            time.sleep(1.0)
            server.interrupt()
            deadline = time.monotonic() + 30
            while "Shutting down" not in server.log_tail() and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(child, signal.SIGCONT)
            assert pending.result(timeout=60) == 200
        server.process.wait(timeout=60)
        assert gone(child)
        log = server.log_tail(1_000_000)
        assert "Shutting down" in log and "Traceback" not in log and "KeyboardInterrupt" not in log
    finally:
        server.stop()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


# ---- a model that fails to load ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("damage", "phrase"), [
    (lambda run: corrupt(run / "odd" / "model.safetensors"), "checksum mismatch for model.safetensors"),
    (lambda run: shutil.rmtree(run / "even"), "even: no saved model here"),
], ids=["checksum-mismatch", "missing-model"])
def test_serve_with_a_model_that_fails_to_load_says_so_in_one_line_and_exits_2(run_copy, capsys, damage, phrase):
    """Before: the model process's error came back as a RuntimeError with a traceback."""
    damage(run_copy)
    code = cli_main(["-q", "serve", "--run", str(run_copy), "--port", str(free_port())])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("distilora serve: error: the model process could not load the models")
    assert phrase in err[-1] and "Traceback" not in "\n".join(err)
