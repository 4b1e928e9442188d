"""Errors as Google's clients expect them: ``{"error": {"code", "message", "status"}}`` with a canonical status name.

The Perspective routes raise :class:`PerspectiveError`; :class:`GoogleErrors` rewrites every other error answered on
the Perspective paths (the body-size limit, the Host check, busy, timeouts, unknown paths) into the same shape, so a
client never has to read two formats.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import JSONResponse

from distilora.serve.limits import ASGIApp, Message, Receive, Scope, Send

CANONICAL = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
             405: "UNIMPLEMENTED", 408: "DEADLINE_EXCEEDED", 409: "ABORTED", 413: "INVALID_ARGUMENT",
             415: "INVALID_ARGUMENT", 422: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
             500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
"""HTTP status → the google.rpc.Code name Google's APIs answer with it."""
PATH_PREFIXES = ("/v1alpha1/", "/$discovery/")


class PerspectiveError(Exception):
    """An error answered in Google's format: HTTP ``code``, canonical ``status`` and a one-line ``message``."""

    def __init__(self, code: int, message: str, status: str | None = None, headers: dict[str, str] | None = None):
        self.code, self.message = code, message
        self.status = status or CANONICAL.get(code, "UNKNOWN")
        self.headers = headers
        super().__init__(message)


def invalid(message: str) -> PerspectiveError:
    return PerspectiveError(400, message)


def error_body(code: int, message: str, status: str | None = None) -> dict:
    return {"error": {"code": code, "message": message, "status": status or CANONICAL.get(code, "UNKNOWN")}}


def handle(request: Request, exc: PerspectiveError) -> JSONResponse:
    return JSONResponse(error_body(exc.code, exc.message, exc.status), status_code=exc.code, headers=exc.headers)


def _google_shaped(status: int, body: bytes) -> bytes | None:
    """``body`` (an error of the JSON API's own shape, or anything else) in Google's shape; None: it already is."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return None
    message = data.get("message") if isinstance(data, dict) else None
    return json.dumps(error_body(status, str(message or f"HTTP {status}"))).encode()


class GoogleErrors:
    """ASGI middleware: an error response on a Perspective path gets Google's error shape (status kept)."""

    def __init__(self, app: ASGIApp, applies: Callable[[str], bool] = lambda path: path.startswith(PATH_PREFIXES)):
        self.app = app
        self.applies = applies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    await send(message)
                else:
                    start = message  # held until the whole body is here
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            body = _google_shaped(start["status"], body) or body
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length",
                                                                                        b"content-type")]
            headers += [(b"content-type", b"application/json; charset=UTF-8"),
                        (b"content-length", str(len(body)).encode())]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)
