"""Every error as an :class:`~distilora.serve.schemas.ErrorResponse`: right status, clear message, no stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from distilora.serve.batching import Overloaded
from distilora.serve.model_process import ModelUnavailable
from distilora.serve.parsing import RequestRejected
from distilora.serve.registry import UnknownModel

logger = logging.getLogger(__name__)

ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
               413: "request_too_large", 415: "unsupported_media_type", 422: "invalid_request",
               499: "client_closed_request", 500: "internal_error", 503: "busy", 504: "timeout"}


class ClientGone(Exception):
    """The client closed the connection before its answer was ready (its queued work was dropped)."""

    def __init__(self) -> None:
        super().__init__("the client went away before the answer was ready")


class InferenceTimeout(Exception):
    """The model did not answer within the per-request timeout."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"the model did not answer within {seconds:g} s; send fewer or shorter texts")


def error_response(status: int, message: str, details: list[dict[str, str]] | None = None,
                   headers: dict[str, str] | None = None, error: str | None = None) -> JSONResponse:
    body = {"status": status, "error": error or ERROR_CODES.get(status, "error"), "message": message,
            "details": details or []}
    return JSONResponse(body, status_code=status, headers=headers)


def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 for a request FastAPI itself could not validate (the classify body is checked by ``parsing``)."""
    return error_response(422, "invalid request", [{"field": "body", "message": "invalid request"}])


def rejected(request: Request, exc: RequestRejected) -> JSONResponse:
    message = exc.message if exc.field == "body" else f"{exc.field}: {exc.message}"
    return error_response(exc.status, message, [{"field": exc.field, "message": exc.message}])


def overloaded(request: Request, exc: Overloaded) -> JSONResponse:
    return error_response(503, str(exc), headers={"Retry-After": str(exc.retry_after_s)})


def model_unavailable(request: Request, exc: ModelUnavailable) -> JSONResponse:
    return error_response(503, str(exc), headers={"Retry-After": str(exc.retry_after_s)}, error="model_unavailable")


def client_gone(request: Request, exc: ClientGone) -> JSONResponse:
    return error_response(499, str(exc))


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
    app.add_exception_handler(RequestRejected, rejected)  # type: ignore[arg-type]
    app.add_exception_handler(Overloaded, overloaded)  # type: ignore[arg-type]
    app.add_exception_handler(ClientGone, client_gone)  # type: ignore[arg-type]
    app.add_exception_handler(ModelUnavailable, model_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected)
