"""Request-size and admission limits, enforced before anything reads or parses a body.

A request is refused with 503 at once when the service is already full; at most ``max_bodies`` bodies are read at
a time; a body over the size limit gets 413 (Content-Length first, then counting the stream); and it must arrive
within a time limit and, after a grace period, at a minimum average rate, so that clients trickling bytes cannot hold
the reading slots."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from distilora.config import ServeConfig

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def error_body(status: int, error: str, message: str) -> bytes:
    """An :class:`~distilora.serve.schemas.ErrorResponse` as JSON bytes."""
    return json.dumps({"status": status, "error": error, "message": message, "details": []}).encode()


class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 without being read further or parsed.

    A declared Content-Length over the limit is refused at once; otherwise (chunked uploads, or a
    Content-Length that lies) the body is read and counted up to the limit, then replayed to the app.
    A body not complete within ``read_timeout_s``, or arriving slower than ``min_bytes_per_s`` on average once
    ``grace_s`` have passed, gets 408. ``busy()`` returning a number of seconds refuses the request with 503 and
    that Retry-After before its body is read; so does waiting longer than ``read_timeout_s`` for one of the
    ``max_bodies`` reading slots.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float, max_bodies: int = 8,
                 min_bytes_per_s: float = ServeConfig.body_min_bytes_per_s, grace_s: float = ServeConfig.body_grace_s,
                 busy: Callable[[], int | None] = lambda: None):
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s
        self.max_bodies = max_bodies
        self.min_bytes_per_s = min_bytes_per_s
        self.grace_s = grace_s
        self.busy = busy
        self.reading = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        retry_after = self.busy()
        if retry_after is None:
            retry_after = await self._wait_for_a_slot()
        if retry_after is not None:
            await self._drain(receive)  # so that a client still sending its body reads the answer
            await self._reject(send, 503, "busy", f"the service is busy; retry in {retry_after} s",
                               ((b"retry-after", str(retry_after).encode()),))
            return
        try:
            body = await self._read(scope, receive, send)
        finally:
            self.reading -= 1  # the slot bounds bodies being read, not requests being answered
        if body is None:
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _drain(self, receive: Receive) -> None:
        """Read and drop the body (up to the size limit and the read timeout), keeping none of it."""
        size = 0
        with anyio.move_on_after(self.read_timeout_s):
            while size <= self.max_bytes:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                size += len(message.get("body", b""))

    async def _wait_for_a_slot(self) -> int | None:
        """Take a reading slot (None), or give up after ``read_timeout_s`` (seconds to retry after)."""
        waited = 0.0
        while self.reading >= self.max_bodies:  # a counter, not a semaphore: valid in any event loop
            if waited >= self.read_timeout_s:
                return 1
            await anyio.sleep(0.005)
            waited += 0.005
        self.reading += 1
        return None

    async def _read(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None when it was refused (413, 400, 408) or the client went away."""
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await self._reject(send, 400, "bad_request", "the Content-Length header is not a number")
                return None
            if too_big:
                await self._reject_too_large(send)
                return None
        chunks: list[bytes] = []
        size = 0
        started = anyio.current_time()
        while True:
            message = await self._next_part(receive, started, size)
            if message is None:
                await self._reject_slow(send, started)
                return None
            if message["type"] != "http.request":  # the client went away
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject_too_large(send)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _next_part(self, receive: Receive, started: float, size: int) -> Message | None:
        """The next message, or None when it did not come in time: ``size`` bytes after ``started`` keep the
        minimum rate until ``started + grace + size / rate``, and nothing is waited for past the read timeout."""
        allowed_s = min(self.read_timeout_s, self.grace_s + size / self.min_bytes_per_s)
        with anyio.move_on_after(started + allowed_s - anyio.current_time()):
            return await receive()
        return None

    async def _reject_slow(self, send: Send, started: float) -> None:
        if anyio.current_time() - started >= self.read_timeout_s:
            message = f"the request body did not arrive within {self.read_timeout_s:g} s"
        else:
            message = (f"the request body arrived too slowly: under {self.min_bytes_per_s / 1024:g} KiB/s after the "
                       f"first {self.grace_s:g} s")
        await self._reject(send, 408, "request_timeout", message)

    async def _reject_too_large(self, send: Send) -> None:
        await self._reject(send, 413, "request_too_large",
                           f"the request body is larger than the limit of {self.max_bytes:,} bytes")

    @staticmethod
    async def _reject(send: Send, status: int, error: str, message: str,
                      headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        body = error_body(status, error, message)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"), *headers]})
        await send({"type": "http.response.body", "body": body})
