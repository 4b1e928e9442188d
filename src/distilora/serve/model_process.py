"""The run's models in a supervised child process, so that model calls and the web server's event loop do not share
a GIL.

The server's batching thread sends ``(model, texts)`` down a pipe and waits (releasing the GIL) for the answers;
the child loads every model once (checksums verified), sets its torch threads once and runs one call at a time. It
lives in a process group of its own and ignores SIGINT: Ctrl-C is the server's to handle (it drains its requests,
then stops the child).

A supervisor thread watches the child. One that exits, breaks the pipe or misses a call's deadline is killed and
started again (its checksums verified again); meanwhile every call fails at once with :class:`ModelUnavailable`
(503 with Retry-After) and :meth:`ModelProcess.readiness` says why. One that keeps dying is not started again.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import astuple, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from distilora.config import ServeConfig
from distilora.inference import Classifier, Prediction, load_classifier
from distilora.inference.registry import extension_modules
from distilora.serve.decisions import served_decision

logger = logging.getLogger(__name__)

MODEL_NICENESS = 5
DESCRIBED = ("labels", "layers", "max_length", "backend", "precision")
"""What the parent's :class:`RemoteClassifier` knows of each model in the child process (its attributes), besides
``multi_label`` and its ``decision`` as responses state it (:func:`described`)."""
PING = "ping"
WATCH_INTERVAL_S = 0.2
"""How often the supervisor checks the deadline of the call in flight."""
STOP_GRACE_S = 3.0
"""How long a child asked to exit gets before it is terminated, then killed."""
FRESH_ANSWER_S = 1.0
"""A child that answered this recently is not pinged again by a health check."""
GIVEN_UP_RETRY_AFTER_S = 60


class ModelLoadError(RuntimeError):
    """The model process could not load the run's models; the message says which and why, on one line."""


class ModelUnavailable(Exception):
    """The model process is restarting, was given up (crash loop) or is shutting down; retry after the seconds."""

    def __init__(self, message: str, retry_after_s: int):
        self.retry_after_s = retry_after_s
        super().__init__(message)


class ChildFailed(Exception):
    """The child exited, broke the pipe or missed its deadline; the message says which (``it …``)."""


@dataclass(frozen=True)
class Readiness:
    """Whether the models answer (``/healthz``); when not, why and when to ask again."""

    ready: bool
    reason: str | None = None
    retry_after_s: int | None = None


@dataclass(frozen=True)
class ChildSettings:
    forward_texts: int
    torch_threads: int
    precision: str
    backend_modules: tuple[str, ...] = ()
    """Modules that registered backends in the parent: the child imports them to load the same models."""
    import_path: tuple[str, ...] = ()
    """The parent's ``sys.path`` (with backend modules only): where the child finds them as the parent did."""


@dataclass
class Deaths:
    """When the model process died lately: how many times within ``window_s``, and how long to wait before the next
    start (none after one death, then doubling up to 30 s)."""

    window_s: float
    times: deque[float] = field(default_factory=deque)

    def record(self) -> int:
        """Count one death now; the deaths within the window."""
        now = time.monotonic()
        self.times.append(now)
        while now - self.times[0] > self.window_s:
            self.times.popleft()
        return len(self.times)

    def pause_s(self) -> float:
        return 0.0 if len(self.times) < 2 else min(30.0, 2.0 ** (len(self.times) - 2))


def _backend_imports() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The modules outside distilora that registered backends here, and the import path they were found on."""
    modules = tuple(extension_modules())
    return modules, tuple(sys.path) if modules else ()


def exit_cause(exitcode: int | None) -> str:
    """How a process ended, as a phrase: ``was killed by SIGKILL``, ``exited with code 1``."""
    if exitcode is None:
        return "closed its pipe"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


class Child:
    """One model process (a fresh interpreter: no forked torch thread pools) and the parent's end of its pipe.

    It runs in a process group of its own, so that a Ctrl-C at the terminal reaches only the server, which lets the
    requests in flight finish and then stops it."""

    def __init__(self, models: dict[str, str], settings: ChildSettings):
        ours, theirs = socket.socketpair()
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-c", f"from {__name__} import child_main; child_main({theirs.fileno()})"],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, process_group=0)
        self._conn = Connection(ours.detach())
        self._conn.send((models, settings))
        self.cause: str | None = None
        """Why it failed, once known."""
        self.call: tuple[float, float] | None = None
        """The call in flight: when it started and its timeout (monotonic seconds), or None."""

    @property
    def pid(self) -> int:
        return self._process.pid

    def is_alive(self) -> bool:
        return self._process.poll() is None

    def exited(self, timeout_s: float) -> bool:
        """Whether it has exited, waiting up to ``timeout_s`` for it."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout_s)
        return self._process.returncode is not None

    def ended(self) -> str:
        """How it ended (waiting a moment for the exit status)."""
        self.exited(1.0)
        return exit_cause(self._process.returncode)

    def wait_ready(self, timeout_s: float, stopping: threading.Event) -> dict[str, Any]:
        """Each model's :func:`described` facts, once it has loaded them; :class:`ModelLoadError` otherwise."""
        deadline = time.monotonic() + timeout_s
        try:
            while not self._conn.poll(WATCH_INTERVAL_S):
                if stopping.is_set() or time.monotonic() > deadline:
                    self.stop(0, polite=False)
                    raise ModelLoadError("the server is shutting down" if stopping.is_set() else
                                         f"the model process did not load the models within {timeout_s:g} s")
            kind, payload = self._conn.recv()
        except (EOFError, OSError):
            raise ModelLoadError(f"the model process {self.ended()} while loading the models") from None
        if kind != "ready":
            self.stop(STOP_GRACE_S, polite=True)
            raise ModelLoadError(f"the model process could not load the models: {payload}")
        return payload

    def ask(self, message: Any, timeout_s: float) -> Any:
        """Send ``message``, return the answer; :class:`ChildFailed` when the child fails. A child past
        ``timeout_s`` is killed by the supervisor (:meth:`kill_if_overdue`), which ends a send or recv blocked on it."""
        self.call = (time.monotonic(), timeout_s)
        try:
            self._conn.send(message)
            return self._conn.recv()
        except (EOFError, OSError):
            self.cause = self.cause or self.ended()
            raise ChildFailed(self.cause) from None
        finally:
            self.call = None

    def kill_if_overdue(self) -> None:
        call = self.call
        if call is not None and time.monotonic() - call[0] > call[1] and self.cause is None:
            self.cause = f"did not answer within {call[1]:g} s"
            self._process.kill()

    def stop_beside(self, calls: threading.Lock) -> None:
        """Stop it; politely only when the lock of ``calls`` comes within a second (never wait on a call blocked in
        recv())."""
        quiet = calls.acquire(timeout=1.0)
        try:
            self.stop(STOP_GRACE_S if quiet else 0, polite=quiet)
        finally:
            if quiet:
                calls.release()

    def stop(self, grace_s: float, polite: bool) -> None:
        """Ask it to exit (``polite``: only when no call is in flight on the pipe), then terminate, then kill."""
        if polite and self.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send(None)
        for end in (self._process.terminate, self._process.kill):
            if self.exited(grace_s):
                return
            end()
            grace_s = 1.0
        self.exited(grace_s)


class ModelProcess:
    """A supervised child process holding ``models`` (name → model directory); :meth:`predictor` gives one model's
    stand-in, :meth:`readiness` says whether it answers."""

    def __init__(self, models: dict[str, Path], settings: ServeConfig, precision: str = "fp32"):
        self._models = {name: str(path) for name, path in models.items()}
        self._child_settings = ChildSettings(settings.forward_texts, settings.torch_threads or os.cpu_count() or 1,
                                             precision, *_backend_imports())
        self._settings = settings
        self._lock = threading.Lock()  # one call at a time on the pipe
        self._spawn_lock = threading.Lock()  # close() sees every child the supervisor starts
        self._stopping = threading.Event()
        self._deaths = Deaths(settings.crash_loop_window_s)
        self._problem: str | None = None
        """Why calls fail now (restarting, given up, shutting down); None: the child is up."""
        self._retry_after_s = 1
        self._last_answer = 0.0
        started = time.monotonic()
        self._child = Child(self._models, self._child_settings)
        try:
            self.info: dict[str, dict[str, Any]] = self._child.wait_ready(settings.model_load_timeout_s, self._stopping)
            """Each model's :func:`described` facts."""
        except BaseException:  # Ctrl-C while loading too: the child goes with the parent
            self._child.stop(0, polite=False)
            raise
        self._load_s = time.monotonic() - started
        self._supervisor = threading.Thread(target=self._watch, name="distilora-model-supervisor", daemon=True)
        self._supervisor.start()

    @property
    def pid(self) -> int | None:
        """The current child's process id."""
        return self._child.pid

    def is_alive(self) -> bool:
        return self._child.is_alive()

    def predict(self, name: str, texts: list[str]) -> list[Prediction]:
        with self._lock:
            kind, payload = self._ask((name, texts), self._settings.model_call_timeout_s)
        if kind != "ok":
            raise RuntimeError(f"model {name} failed in the model process ({payload})")
        return [Prediction(*answer) for answer in payload]

    def predictor(self, name: str) -> RemoteClassifier:
        return RemoteClassifier(self, name, **self.info[name])

    def readiness(self) -> Readiness:
        """Ready while the child is up and answering: a call in flight for less than the request timeout, a recent
        answer, or a ping answered within ``health_timeout_s``."""
        problem = self._problem or self._answering()
        return Readiness(True) if problem is None else Readiness(False, problem, self._retry_after_s)

    def close(self) -> None:
        """Stop the child within a few seconds, whatever it is doing (a call in flight, hung, restarting)."""
        self._stopping.set()
        self._fail("the server is shutting down", 5)
        with self._spawn_lock:
            child = self._child
        child.stop_beside(self._lock)
        self._supervisor.join(STOP_GRACE_S)

    # ---- calls -------------------------------------------------------------------------------------------------------
    def _ask(self, message: Any, timeout_s: float) -> Any:
        """The child's answer (the caller holds the lock); :class:`ModelUnavailable` when there is no child to ask
        or it failed (it is then killed, and the supervisor starts another)."""
        if self._problem is not None:
            raise ModelUnavailable(self._problem, self._retry_after_s)
        child = self._child
        try:
            answer = child.ask(message, timeout_s)
        except ChildFailed as failure:
            child.stop(0, polite=False)
            if self._child is child and self._problem is None:
                self._restarting(str(failure))
            raise ModelUnavailable(self._problem or str(failure), self._retry_after_s) from None
        self._last_answer = time.monotonic()
        return answer

    def _answering(self) -> str | None:
        call = self._child.call
        if call is not None:  # answering, unless at it for longer than a request may wait
            waited = time.monotonic() - call[0]
            return f"the model process has not answered for {waited:.0f} s" if waited > self._settings.timeout_s \
                else None
        if time.monotonic() - self._last_answer < FRESH_ANSWER_S or not self._lock.acquire(blocking=False):
            return None  # answered just now, or a call has just started (its deadline watches it)
        try:
            self._ask(PING, self._settings.health_timeout_s)
        except ModelUnavailable as unavailable:
            return str(unavailable)
        finally:
            self._lock.release()
        return None

    def _fail(self, problem: str, retry_after_s: int) -> None:
        self._retry_after_s, self._problem = retry_after_s, problem

    def _restarting(self, cause: str) -> None:
        self._fail(f"the model process is restarting: it {cause}", max(1, math.ceil(self._load_s)))

    # ---- supervision -------------------------------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stopping.is_set():
            child = self._child
            if not child.exited(WATCH_INTERVAL_S):
                child.kill_if_overdue()
                continue
            if self._stopping.is_set() or not self._count_death(child.pid, child.cause or child.ended()) \
                    or not self._restart():
                return

    def _count_death(self, pid: int | None, cause: str) -> bool:
        """Log the death; False (and the service given up) when it makes a crash loop."""
        deaths, allowed, window = self._deaths.record(), self._settings.crash_loop_deaths, self._deaths.window_s
        if deaths >= allowed:
            self._fail(f"the model process died {deaths} times within {window:g} s (last: it {cause}) and is not "
                       "started again; fix the cause (see the server log) and restart the server",
                       GIVEN_UP_RETRY_AFTER_S)
            logger.error("%s", self._problem)
            return False
        self._restarting(cause)
        logger.warning("the model process (pid %s) %s; starting another (death %d of %d allowed within %g s)",
                       pid, cause, deaths, allowed, window)
        return True

    def _restart(self) -> bool:
        """Start children until one loads the models (True); a failed load is a death too. False: the service gave
        up (crash loop) or is shutting down."""
        while True:
            if self._stopping.wait(self._deaths.pause_s()):
                return False
            started = time.monotonic()
            with self._spawn_lock:
                if self._stopping.is_set():
                    return False
                child = self._child = Child(self._models, self._child_settings)
            try:
                child.wait_ready(self._settings.model_load_timeout_s, self._stopping)
            except ModelLoadError as error:
                if self._stopping.is_set() or not self._count_death(child.pid, str(error).removeprefix(
                        "the model process ")):
                    return False
                continue
            self._load_s = time.monotonic() - started
            self._last_answer = time.monotonic()
            if not self._stopping.is_set():
                self._problem = None
            logger.warning("the model process is back (pid %s, models loaded in %.1f s)", child.pid, self._load_s)
            return True


class RemoteClassifier:
    """What the registry and the batcher need of a :class:`Classifier`, answered by the model process."""

    def __init__(self, process: ModelProcess, name: str, labels: list[str], layers: list[int] | None,
                 max_length: int, backend: str | None = None, decision: dict | None = None,
                 precision: str | None = None, multi_label: bool = False):
        self.process, self.name = process, name
        self.labels, self.layers, self.max_length, self.backend = labels, layers, max_length, backend
        self.precision = precision
        self.decision = decision
        """How the model in the child process picks labels (its calibration.json; a multi-label model's threshold
        per label)."""
        self.multi_label = multi_label

    def predict(self, texts: list[str]) -> list[Prediction]:
        return self.process.predict(self.name, texts)


def child_main(fd: int) -> None:
    """The model process: its settings come first down the pipe ``fd``, then the calls."""
    # Its parent stops it; a SIGINT meant for the server (e.g. a kill -INT of the whole session) is not its to act on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    with contextlib.suppress(EOFError, OSError):  # the parent went away
        _serve(conn, *conn.recv())


def _serve(conn: Connection, models: dict[str, str], settings: ChildSettings) -> None:
    import torch

    # The web server answers first (health checks, 503s); the models take the CPU it leaves.
    os.nice(MODEL_NICENESS)
    torch.set_num_threads(settings.torch_threads)
    try:
        sys.path.extend(entry for entry in settings.import_path if entry not in sys.path)
        for module in settings.backend_modules:
            importlib.import_module(module)
        classifiers = {name: load_classifier(path, precision=settings.precision) for name, path in models.items()}
        for classifier in classifiers.values():
            classifier.batch_size = settings.forward_texts
            classifier.predict(["warm-up"])  # first-call costs are paid here, not by the first request
    except Exception as error:  # reported to the parent, which refuses to start (or counts a death)
        conn.send(("error", " ".join(f"{type(error).__name__}: {error}".split())))
        return
    conn.send(("ready", {name: described(classifier) for name, classifier in classifiers.items()}))
    _answer_calls(conn, classifiers)


def described(classifier: Classifier) -> dict[str, Any]:
    """What the parent's :class:`RemoteClassifier` is told of a loaded model."""
    return {**{key: getattr(classifier, key) for key in DESCRIBED},
            "multi_label": bool(getattr(classifier, "multi_label", False)), "decision": served_decision(classifier)}


def _answer_calls(conn: Connection, classifiers: dict[str, Classifier]) -> None:
    while (message := conn.recv()) is not None:
        if message == PING:
            conn.send(("ok", None))
            continue
        name, texts = message
        try:
            answers = [astuple(p) for p in classifiers[name].predict(texts)]
        except Exception as error:  # the server answers 500 without details; the type goes to its log
            logger.exception("model %s failed", name)
            conn.send(("error", type(error).__name__))
        else:
            conn.send(("ok", answers))
