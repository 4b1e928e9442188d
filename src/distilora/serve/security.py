"""Host check and security headers, for every response (pages, API, errors, static files and docs alike)."""

from __future__ import annotations

from distilora.serve.limits import ASGIApp, Message, Receive, Scope, Send, error_body

PAGE_POLICY = ("default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
               "frame-ancestors 'none'; form-action 'self'")
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
"""The API docs page initialises Swagger UI with an inline script; its assets are still only this server's."""
DOCS_PATHS = ("/docs", "/redoc")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
           (b"x-frame-options", b"DENY"), (b"cross-origin-resource-policy", b"same-origin")]


def host_name(host: str) -> str:
    """``example.org:8000`` → ``example.org``; ``[::1]:8000`` → ``::1``."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Hardening:
    """ASGI middleware: a Host header outside ``allowed_hosts`` gets a JSON 400 (DNS rebinding), and every
    response carries the security headers."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...]):
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").lower()
        policy = DOCS_POLICY if scope.get("path", "").startswith(DOCS_PATHS) else PAGE_POLICY
        extra = [*HEADERS, (b"content-security-policy", policy.encode())]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in names)]
            await send(message)

        if "*" not in self.allowed and host_name(host) not in self.allowed:
            body = error_body(400, "bad_request", "this server does not answer to that Host header; use one of "
                                                  + ", ".join(sorted(self.allowed)))
            await send_with_headers({"type": "http.response.start", "status": 400,
                                     "headers": [(b"content-type", b"application/json"),
                                                 (b"content-length", str(len(body)).encode())]})
            await send_with_headers({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_with_headers)
