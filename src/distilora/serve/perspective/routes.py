"""The Perspective routes on the app: ``/v1alpha1/comments:analyze`` and ``:suggestscore``, ``/v1alpha1/attributes``
(the model behind each attribute, with its card, version and manifest hash) and the discovery document."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from distilora.config import PerspectiveConfig, ServeConfig
from distilora.run_dir import MODEL_CARD
from distilora.serve.batching import BatchScheduler
from distilora.serve.perspective import errors
from distilora.serve.perspective.access import AccessControl, RedactKeys, read_keys
from distilora.serve.perspective.attributes import AttributePlan, AttributeTable
from distilora.serve.perspective.discovery import VERSION, discovery_document
from distilora.serve.perspective.feedback import FeedbackStore
from distilora.serve.perspective.languages import LanguageDetector
from distilora.serve.perspective.openapi import add_request_schemas
from distilora.serve.perspective.schemas import (
    AnalyzeCommentResponse,
    AttributeInfo,
    AttributesResponse,
    GoogleError,
    SuggestCommentScoreResponse,
)
from distilora.serve.perspective.scoring import Answer, Scorer
from distilora.serve.perspective.service import PerspectiveService

logger = logging.getLogger(__name__)
TAG = "perspective"
DESCRIBED = {400: "INVALID_ARGUMENT: a malformed request, an empty or too long comment, an unknown attribute, an "
                  "unsupported scoreType or language (suggestscore without --feedback-dir: FAILED_PRECONDITION)",
             403: "PERMISSION_DENIED: a missing or wrong API key (servers started with --api-key-file)",
             404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED: the body did not arrive in time",
             413: "INVALID_ARGUMENT: the body is over the size limit",
             415: "INVALID_ARGUMENT: the body is not declared as JSON",
             429: "RESOURCE_EXHAUSTED: over --qps; retry after Retry-After seconds",
             503: "UNAVAILABLE: the service is busy; retry after Retry-After seconds",
             504: "DEADLINE_EXCEEDED: the model did not answer in time"}

KEY_NOTE = ("With --api-key-file, the API key comes as `?key=KEY` (as Perspective takes it) or in the X-Goog-Api-Key "
            "header. `?alt=json` (what Google's clients send) is accepted; other `alt` values get 400.")


class MarkdownResponse(PlainTextResponse):
    media_type = "text/markdown"


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": GoogleError, "description": DESCRIBED[code]} for code in codes}


def _check_alt(request: Request) -> None:
    alt = request.query_params.get("alt")
    if alt not in (None, "json"):
        raise errors.invalid("This server answers JSON only (alt=json).")


def _info(table: AttributeTable, name: str) -> AttributeInfo:
    attribute = table.attributes[name]
    has_card = attribute.model_dir is not None and (attribute.model_dir / MODEL_CARD).is_file()
    return AttributeInfo.model_validate({**attribute.identity(),
                                         "card": f"/{VERSION}/attributes/{name}/card" if has_card else None})


def install(app: FastAPI, registry: Any, scheduler: BatchScheduler, settings: ServeConfig,
            config: PerspectiveConfig | None, answer: Answer) -> PerspectiveService:
    """Add the Perspective routes, their error format and their OpenAPI schemas to ``app``; ``answer`` awaits a
    scheduler job as ``/api/v1/classify`` does."""
    config = config or PerspectiveConfig()
    table = AttributeTable.build(config, AttributePlan.make(config, registry.run_dir), registry)
    access = AccessControl(read_keys(config.api_key_file) if config.api_key_file else (), config.qps)
    feedback = FeedbackStore(config.feedback_dir) if config.feedback_dir else None
    service = PerspectiveService(table, Scorer(registry, scheduler, answer, settings.timeout_s), config, access,
                                 LanguageDetector(), feedback, settings.max_bodies)
    app.state.perspective = service
    app.add_exception_handler(errors.PerspectiveError, errors.handle)  # type: ignore[arg-type]
    # Outside every other layer (the Host check and the security headers included): an error on a Perspective path
    # is in Google's shape whoever answered it, and keeps the headers the inner layers set.
    build_middleware_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: errors.GoogleErrors(build_middleware_stack())  # type: ignore[method-assign]
    if not any(isinstance(f, RedactKeys) for f in logging.getLogger("uvicorn.access").filters):
        logging.getLogger("uvicorn.access").addFilter(RedactKeys())
    _add_routes(app, service)
    add_request_schemas(app, table)
    logger.info("Perspective API: %s", ", ".join(f"{a.name} = {a.model}:{a.label}" for a in table.attributes.values())
                or "no attribute")
    return service


def _add_routes(app: FastAPI, service: PerspectiveService) -> None:
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/AnalyzeCommentRequest"}}}

    @app.post(f"/{VERSION}/comments:analyze", response_model=AnalyzeCommentResponse, response_model_exclude_none=True,
              tags=[TAG], summary="Perspective's AnalyzeComment: score a comment on the served attributes",
              responses=_errors(400, 403, 408, 413, 415, 429, 503, 504),
              description=KEY_NOTE, openapi_extra={"requestBody": {"required": True, "content": body}})
    async def analyze(request: Request) -> AnalyzeCommentResponse:
        _check_alt(request)
        return await service.analyze(request)

    suggest_body = {"application/json": {"schema": {"$ref": "#/components/schemas/SuggestCommentScoreRequest"}}}

    @app.post(f"/{VERSION}/comments:suggestscore", response_model=SuggestCommentScoreResponse,
              response_model_exclude_none=True, tags=[TAG],
              summary="Perspective's SuggestCommentScore: keep a suggested score (only with --feedback-dir)",
              responses=_errors(400, 403, 408, 413, 415, 429, 503, 504),
              description=KEY_NOTE, openapi_extra={"requestBody": {"required": True, "content": suggest_body}})
    async def suggestscore(request: Request) -> SuggestCommentScoreResponse:
        _check_alt(request)
        return await service.suggest(request)

    @app.get(f"/{VERSION}/attributes", response_model=AttributesResponse, response_model_exclude_none=True,
             tags=[TAG], summary="The served attributes: each one's run, model, label, languages, version, "
                                 "manifest hash and model card")
    async def attributes() -> AttributesResponse:
        return AttributesResponse(attributes=[_info(service.table, name) for name in service.table.names])

    @app.get(f"/{VERSION}/attributes/{{name}}/card", response_class=MarkdownResponse, tags=[TAG],
             summary="The model card (README.md) of the model behind an attribute", responses={
                 200: {"content": {"text/markdown": {"schema": {"type": "string"}}}},
                 404: {"description": DESCRIBED[404], "content": {"application/json": {
                     "schema": {"$ref": "#/components/schemas/GoogleError"}}}}})
    async def card(name: str) -> MarkdownResponse:
        attribute = service.table.get(name)
        path = attribute.model_dir / MODEL_CARD if attribute and attribute.model_dir else None
        if path is None or not path.is_file():
            raise errors.PerspectiveError(404, "No such attribute, or its model has no card; see GET "
                                               f"/{VERSION}/attributes.")
        return MarkdownResponse(path.read_text(encoding="utf-8"))

    @app.get("/$discovery/rest", tags=[TAG], summary="The discovery document Google's client libraries read",
             responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}, **_errors(404)})
    async def discovery(request: Request, version: str | None = Query(None)) -> JSONResponse:
        if version not in (None, VERSION):
            raise errors.PerspectiveError(404, f"No discovery document for that version; this server has {VERSION}.")
        return JSONResponse(discovery_document(str(request.base_url)))
