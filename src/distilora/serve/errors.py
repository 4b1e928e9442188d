"""Every error as an :class:`~distilora.serve.schemas.ErrorResponse`: right status, clear message, no stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from distilora.serve.registry import UnknownModel
from distilora.serve.schemas import MAX_TEXT_CHARS, MAX_TEXTS

logger = logging.getLogger(__name__)

ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
               413: "request_too_large", 422: "invalid_request", 500: "internal_error", 504: "timeout"}


class InferenceTimeout(Exception):
    """The model did not answer within the per-request timeout."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"the model did not answer within {seconds:g} s; send fewer or shorter texts")


def error_response(status: int, message: str, details: list[dict[str, str]] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"status": status, "error": ERROR_CODES.get(status, "error"), "message": message, "details": details or []}
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    """``("body", "texts", 2)`` → ``texts[2]``; the body itself → ``body``."""
    parts = [p for p in loc if p != "body"]
    if not parts:
        return "body"
    out = str(parts[0])
    for part in parts[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _message(error: dict[str, Any], content_type: str) -> tuple[int, str]:
    """The status and a readable message for one pydantic error (never echoing the input itself)."""
    kind, loc = error.get("type", ""), tuple(error.get("loc", ()))
    where = [p for p in loc if p != "body"]
    if kind == "json_invalid":
        at = f" at character {where[0]}" if where and isinstance(where[0], int) else ""
        return 422, f"malformed JSON{at}: {error.get('ctx', {}).get('error', 'cannot parse the body')}"
    if kind == "too_long" and where == ["texts"]:
        count = error.get("ctx", {}).get("actual_length")
        return 413, f"too many texts{f' ({count})' if count else ''}: at most {MAX_TEXTS} per request"
    if kind == "string_too_long" and where[:1] == ["texts"]:
        given = error.get("input")
        size = f" has {len(given):,} characters" if isinstance(given, str) else " is too long"
        return 413, f"text{size}: at most {MAX_TEXT_CHARS:,} characters per text"
    if kind == "too_short" and where == ["texts"]:
        return 422, "empty list: send at least one text"
    if kind == "missing" and not where:
        return 422, "the request has no body; send JSON like {\"texts\": [\"...\"]}"
    if not where and "json" not in content_type:
        return 422, f"expected a JSON body with Content-Type: application/json, got {content_type or 'none'!r}"
    if kind in ("model_attributes_type", "dict_type") and not where:
        return 422, "the body must be a JSON object like {\"texts\": [\"...\"], \"model\": \"odd\"}"
    if kind == "string_unicode":
        return 422, "text is not valid Unicode (it holds a lone surrogate such as \\ud800)"
    if kind == "value_error":
        return 422, str(error.get("ctx", {}).get("error", "invalid value"))
    if kind == "extra_forbidden":
        return 422, "unknown field; the body takes only \"texts\" and \"model\""
    return 422, str(error.get("msg", "invalid value"))


def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 for invalid input; 413 when a size limit (number of texts, characters per text) is exceeded."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()[:100]
    details, statuses = [], []
    for error in exc.errors()[:20]:
        status, message = _message(error, content_type)
        statuses.append(status)
        field = "body" if error.get("type") == "json_invalid" else _field(tuple(error.get("loc", ())))
        details.append({"field": field, "message": message})
    status = 413 if statuses and 413 in statuses else 422
    chosen = next(d for d, s in zip(details, statuses, strict=True) if s == status) if details else None
    summary = f"{chosen['field']}: {chosen['message']}" if chosen and chosen["field"] != "body" else (
        chosen["message"] if chosen else "invalid request")
    return error_response(status, summary, details)


def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's answer to a body that is not even text (e.g. invalid UTF-8): malformed JSON, so 422.
        return error_response(422, "malformed JSON: the body is not UTF-8 text", [
            {"field": "body", "message": "malformed JSON: the body is not UTF-8 text"}])
    messages = {404: "no such page or endpoint; the API is described at /docs",
                405: f"method {request.method} is not allowed here"}
    message = messages.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))


def unknown_model(request: Request, exc: UnknownModel) -> JSONResponse:
    return error_response(404, str(exc), [{"field": "model", "message": f"available: {', '.join(exc.available)}"}])


def timeout(request: Request, exc: InferenceTimeout) -> JSONResponse:
    return error_response(504, str(exc))


def unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal server error; the server log has the details")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(UnknownModel, unknown_model)  # type: ignore[arg-type]
    app.add_exception_handler(InferenceTimeout, timeout)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected)
