"""Who may call the Perspective methods: API keys (``?key=`` as Perspective takes them, or ``X-Goog-Api-Key``) and a
per-key rate (``--qps``), answered 403 PERMISSION_DENIED and 429 RESOURCE_EXHAUSTED in Google's format."""

from __future__ import annotations

import hmac
import logging
import math
import re
import threading
import time
from pathlib import Path

from fastapi import Request

from distilora.serve.perspective.errors import PerspectiveError

MAX_TRACKED = 10_000
"""Rate buckets kept at most (client addresses when there are no keys); full ones are dropped first."""
_KEY_IN_QUERY = re.compile(r"([?&]key=)[^&\s]*")


def read_keys(path: Path) -> tuple[str, ...]:
    """The keys of ``path``: one a line; blank lines and ``#`` comments skipped. A ValueError when there are none."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ValueError(f"--api-key-file {path}: cannot be read ({error.strerror or error})") from None
    keys = tuple(dict.fromkeys(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")))
    if not keys:
        raise ValueError(f"--api-key-file {path}: holds no key (one key a line; # starts a comment)")
    if any(len(key) < 8 or re.search(r"\s", key) for key in keys):
        raise ValueError(f"--api-key-file {path}: every key needs at least 8 characters and no white space")
    return keys


class RateLimiter:
    """A token bucket per caller: ``qps`` requests a second, bursts of up to ``max(1, qps)``."""

    def __init__(self, qps: float):
        self.qps = qps
        self.burst = max(1.0, qps)
        self._buckets: dict[str, tuple[float, float]] = {}  # caller → (tokens, when)
        self._lock = threading.Lock()

    def wait_s(self, caller: str) -> float:
        """0 when ``caller`` may go now (a token is taken); otherwise the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(caller, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.qps)
            if tokens >= 1:
                self._buckets[caller] = (tokens - 1, now)
                self._forget_full(now)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (1 - tokens) / self.qps

    def _forget_full(self, now: float) -> None:
        if len(self._buckets) <= MAX_TRACKED:
            return
        for caller, (tokens, when) in list(self._buckets.items()):
            if tokens + (now - when) * self.qps >= self.burst:
                del self._buckets[caller]


class AccessControl:
    """Checks a request's key (when the server has keys) and its caller's rate (when it has a ``--qps``)."""

    def __init__(self, keys: tuple[str, ...] = (), qps: float | None = None):
        self._keys = tuple(key.encode() for key in keys)
        self.limiter = RateLimiter(qps) if qps else None

    @property
    def needs_key(self) -> bool:
        return bool(self._keys)

    def check(self, request: Request) -> None:
        """Raise 403 for a missing or wrong key, 429 past the rate; return when the request may go on."""
        key = request.query_params.get("key") or request.headers.get("x-goog-api-key")
        caller = request.client.host if request.client else "unknown"
        if self._keys:
            if not key:
                raise PerspectiveError(403, "The request is missing a valid API key.")
            given = key.encode()
            # Compare with every key, in constant time each, so the answer's timing says nothing about the keys.
            if not any([hmac.compare_digest(given, known) for known in self._keys]):
                raise PerspectiveError(403, "API key not valid. Please pass a valid API key.")
            caller = f"key:{key}"
        if self.limiter is not None:
            wait = self.limiter.wait_s(caller)
            if wait > 0:
                raise PerspectiveError(
                    429, f"Quota exceeded: at most {self.limiter.qps:g} requests per second "
                         f"{'for this API key' if self._keys else 'from one client'}; retry after {math.ceil(wait)} s.",
                    headers={"Retry-After": str(math.ceil(wait))})


class RedactKeys(logging.Filter):
    """Takes ``key=…`` out of uvicorn's access-log lines (request paths carry the API key)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            args = list(record.args)
            args[2] = _KEY_IN_QUERY.sub(r"\1REDACTED", args[2])
            record.args = tuple(args)
        return True
