"""The FastAPI application: the page, the JSON API and health check over one run's models."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

import anyio
import anyio.to_thread
import torch
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError

from distilora.checks.files import RunChecks
from distilora.config import MAX_TEXT_CHARS, MAX_TEXTS, PerspectiveConfig, ServeConfig
from distilora.run_dir import RunLayout
from distilora.serve import errors, perspective
from distilora.serve.batching import BatchScheduler, Job
from distilora.serve.limits import BodySizeLimit
from distilora.serve.parsing import BodyParser, parse_classify
from distilora.serve.registry import ModelRegistry
from distilora.serve.schemas import (
    CheckEntry,
    ChecksResponse,
    ClassifyRequest,
    ClassifyResponse,
    ClassifyResult,
    Decision,
    ErrorResponse,
    Health,
    ModelsResponse,
)
from distilora.serve.security import Hardening
from distilora.versions import __version__

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
DESCRIPTION = f"""Classify text with the models of one distilora run: the fine-tuned teacher, the half-depth
students distilled from it, LoRA models, LoRA + distillation hybrids and the baselines (a student trained
without its teacher, TF-IDF, the majority class) — whichever routes the run trained.

Limits: at most {MAX_TEXTS} texts per request, each at most {MAX_TEXT_CHARS:,} characters (more: 413);
texts longer than a model's maximum length are read in overlapping token windows and scored by their most positive
window (the mean of the windows' logits for a multi-class model); `windows` says how many were read. Concurrent
requests are classified together in small batches; when the queue is full, or while the model process is being
restarted, the answer is 503 with Retry-After. `GET /healthz` is 200 only while the models answer.
Scores are calibrated (temperature scaling fitted on validation) and, for binary tasks, the positive label is chosen
at a threshold tuned on validation: every response's `decision` names the threshold applied (or the argmax). A
plain transformers pipeline on the same model gives the raw softmax and the argmax.
A multi-label model (independent labels, e.g. insult, threat, obscene) gives every label's own sigmoid probability
and `labels`, the labels at or above their own thresholds (`decision.thresholds`; possibly none).
Every error is JSON: `{{"status", "error", "message", "details"}}`, and never repeats the input."""


def _errors(*statuses: int) -> dict[int | str, dict]:
    described = {404: "Unknown model (the message lists the loaded ones)",
                 408: "The request body did not arrive within the per-request timeout, or too slowly",
                 413: f"Too many texts (> {MAX_TEXTS}), a text over {MAX_TEXT_CHARS:,} characters, or a body too large",
                 415: "The body is not declared as JSON (Content-Type: application/json)",
                 422: "Invalid input: empty list, blank or invisible text, malformed JSON, an unknown field",
                 503: "The service is busy (queue full) or its model process is restarting; retry after the "
                      "Retry-After seconds",
                 504: "The model did not answer within the per-request timeout"}
    return {s: {"model": ErrorResponse, "description": described[s]} for s in statuses}


async def _answer(job: Job, request: Request, scheduler: BatchScheduler, timeout_s: float):
    """The job's result; 504 past the timeout; nothing more is computed for a client that went away."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        done, _ = await asyncio.wait({job.future, watcher}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if job.future in done:
        return job.future.result()
    scheduler.cancel(job)
    job.future.cancel()
    if watcher in done:
        raise errors.ClientGone()
    raise errors.InferenceTimeout(timeout_s)


def _public_check(check: dict) -> dict:
    """A check as clients see it: file names only, no local paths."""
    public = {k: v for k, v in check.items() if k != "run"}
    if isinstance(public.get("suite"), dict) and "file" in public["suite"]:
        public["suite"] = {**public["suite"], "file": Path(str(public["suite"]["file"])).name}
    return public


def _check_entries(checks: dict[str, dict]) -> list[CheckEntry]:
    """The run's checks as the API serves them; one whose content does not fit the schema is logged, left out."""
    entries = []
    for name, check in checks.items():
        try:
            entries.append(CheckEntry.model_validate(_public_check(check)))
        except ValidationError as error:
            logger.warning("checks/%s.json: left out of the page and /api/v1/checks, it does not fit the schema "
                           "(%d problems, first: %s)", name, error.error_count(), error.errors()[0]["msg"])
    return entries


def _load_registry(run_dir: str | Path, settings: ServeConfig,
                   perspective_config: PerspectiveConfig | None) -> ModelRegistry:
    # One worker runs every model call, so it gets every core: set once, in the model process if there is one.
    if not settings.model_process:
        torch.set_num_threads(settings.torch_threads or os.cpu_count() or 1)
    return ModelRegistry.load(run_dir, settings if settings.model_process else None,
                              backend=settings.backend, precision=settings.precision,
                              extra_models=perspective.extra_models(perspective_config, run_dir))


def create_app(run_dir: str | Path | None = None, registry: ModelRegistry | None = None,
               settings: ServeConfig | None = None, perspective_config: PerspectiveConfig | None = None) -> FastAPI:
    """The app for ``run_dir``'s models (loaded here, once, with the Perspective attributes' models of other runs),
    or for an already loaded ``registry``."""
    settings = settings or ServeConfig()
    loaded_here = registry is None
    if registry is None:
        if run_dir is None:
            raise ValueError("create_app needs a run directory or a registry")
        registry = _load_registry(run_dir, settings, perspective_config)
    for classifier in registry.classifiers.values():
        if hasattr(classifier, "batch_size"):
            classifier.batch_size = settings.forward_texts
    scheduler = BatchScheduler(settings.max_batch_texts, settings.max_wait_ms, settings.max_queued_texts)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        scheduler.stop()
        await anyio.to_thread.run_sync(registry.close)  # bounded, and off the event loop

    # API docs (/docs, /redoc) from the assets fastapi-offline ships: they work without internet.
    app = FastAPIOffline(title="distilora", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.registry = registry
    app.state.settings = settings
    app.state.scheduler = scheduler
    _harden(app, settings, scheduler)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _install_pages(app, registry)
    _install_classify(app, registry, scheduler, settings)
    try:
        perspective.install(app, registry, scheduler, settings, perspective_config, _answer)
    except BaseException:  # a refused attribute: the model process started here stops now, not at exit
        if loaded_here:
            registry.close()
        raise
    return app


def _harden(app: FastAPI, settings: ServeConfig, scheduler: BatchScheduler) -> None:
    """Errors as JSON, body limits, and the security headers on every response."""
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,  # type: ignore[arg-type]
                       read_timeout_s=settings.timeout_s, max_bodies=settings.max_bodies,
                       min_bytes_per_s=settings.body_min_bytes_per_s, grace_s=settings.body_grace_s,
                       busy=lambda: None if scheduler.has_room() else scheduler.retry_after_s())
    # Outside every other layer, Starlette's handler of unexpected errors included (add_middleware puts it inside
    # that one), so that a 500 carries the security headers too.
    build_middleware_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: Hardening(  # type: ignore[method-assign]
        build_middleware_stack(), allowed_hosts=settings.allowed_hosts)


def _install_pages(app: FastAPI, registry: ModelRegistry) -> None:
    """The page, readiness, the model list and the run's checks."""
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    run_checks = RunChecks(RunLayout(registry.run_dir)).read_all()
    checks = ChecksResponse(checks=_check_entries(run_checks))

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz", response_model=Health, tags=["service"],
             summary="Readiness: 200 while the models answer; 503 with the reason otherwise",
             responses={503: {"model": Health, "description": "The model process is restarting, hung or given up "
                                                               "after a crash loop (see `reason`)"}})
    async def healthz(response: Response) -> Health:
        readiness = await anyio.to_thread.run_sync(registry.readiness)  # may ask an idle model process for a sign
        if readiness.ready:
            return Health(status="ok", models=registry.names)
        response.status_code = 503
        response.headers["Retry-After"] = str(readiness.retry_after_s or 1)
        return Health(status="unavailable", models=registry.names, reason=readiness.reason)

    @app.get("/api/v1/models", response_model=ModelsResponse, tags=["models"],
             summary="The loaded models with their layers, sizes and scores")
    async def models() -> ModelsResponse:
        return ModelsResponse.model_validate(registry.describe_all())

    @app.get("/api/v1/checks", response_model=ChecksResponse, tags=["checks"],
             summary="The run's behavioural checks (read once at start-up); empty when there are none")
    async def get_checks() -> ChecksResponse:
        return checks


def _install_classify(app: FastAPI, registry: ModelRegistry, scheduler: BatchScheduler,
                      settings: ServeConfig) -> None:
    """``POST /api/v1/classify``, its request schema declared in the OpenAPI document."""
    parser = BodyParser(settings.max_bodies)

    @app.post("/api/v1/classify", response_model=ClassifyResponse, tags=["models"],
              responses=_errors(404, 408, 413, 415, 422, 503, 504), summary="Classify up to 256 texts with one model",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/ClassifyRequest"}}}}})
    async def classify(request: Request) -> ClassifyResponse:
        parsed = await parser.parse(parse_classify, await request.body(), request.headers.get("content-type", ""))
        name = parsed.model or registry.default_model
        job = scheduler.submit(name, registry.get(name), parsed.texts)
        result = await _answer(job, request, scheduler, settings.timeout_s)
        results = [ClassifyResult(label=p.label, scores=p.scores, truncated=p.truncated, windows=p.windows,
                                  labels=p.labels) for p in result.predictions]
        return ClassifyResponse(model=name, results=results, decision=Decision(**registry.decision(name)),
                                elapsed_ms=round(result.model_ms, 3))

    # The request schema is declared above by reference; make sure it is in the document.
    original_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = original_openapi()
            schema.setdefault("components", {}).setdefault("schemas", {})["ClassifyRequest"] = \
                ClassifyRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
