"""Run ``distilora serve`` in a child process on a free loopback port and wait until it is healthy (tests, demos)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``with ServerProcess(run_dir, log) as server: ... server.url ...`` — a real uvicorn server, stopped on exit."""

    def __init__(self, run_dir: str | Path, log_file: str | Path, port: int | None = None,
                 startup_timeout_s: float = 120.0, extra_args: tuple[str, ...] = ()):
        self.run_dir = Path(run_dir)
        self.log_file = Path(log_file)
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "distilora", "serve", "--run", str(self.run_dir), "--host", LOOPBACK,
                   "--port", str(self.port), *self.extra_args]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        with self.log_file.open("wb") as log:  # its own session: signals to its group reach nothing else
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        try:
            return self.wait_healthy(self.startup_timeout_s)
        except TimeoutError:
            self.stop()
            raise

    def wait_healthy(self, timeout_s: float) -> ServerProcess:
        """Return once ``/healthz`` answers 200 (a model process restarted by an earlier test is ready again)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"distilora serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"distilora serve not healthy after {timeout_s:g} s:\n{self.log_tail()}")

    def model_process_pid(self) -> int:
        """The process id of the server's model process."""
        import psutil

        for child in psutil.Process(self.pid).children():
            if "child_main" in " ".join(child.cmdline()):
                return child.pid
        raise LookupError(f"distilora serve (pid {self.pid}) has no model process")

    def interrupt(self) -> None:
        """Ctrl-C as a terminal sends it: SIGINT to the server's whole process group."""
        os.killpg(self.pid, signal.SIGINT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)  # the server and whatever it started
            self.process.wait(timeout=5)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
