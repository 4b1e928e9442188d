"""The FastAPI application: the page, the JSON API and health check over one run's models."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from distilora.config import ServeConfig
from distilora.inference import Classifier, Prediction
from distilora.run_dir import RunDirectory
from distilora.serve import errors
from distilora.serve.limits import BodySizeLimit
from distilora.serve.registry import ModelRegistry
from distilora.serve.schemas import (
    MAX_TEXT_CHARS,
    MAX_TEXTS,
    ChecksResponse,
    ClassifyRequest,
    ClassifyResponse,
    ClassifyResult,
    ErrorResponse,
    Health,
    ModelsResponse,
)
from distilora.versions import __version__

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
DESCRIPTION = f"""Classify text with the models of one distilora run: the fine-tuned teacher, the half-depth
students distilled from it (odd and even layers) and the LoRA model.

Limits: at most {MAX_TEXTS} texts per request, each at most {MAX_TEXT_CHARS:,} characters (more: 413);
texts longer than a model's maximum length are truncated and the result says so (`truncated`).
Every error is JSON: `{{"status", "error", "message", "details"}}`."""


def _errors(*statuses: int) -> dict[int | str, dict]:
    described = {404: "Unknown model (the message lists the loaded ones)",
                 408: "The request body did not arrive within the per-request timeout",
                 413: f"Too many texts (> {MAX_TEXTS}), a text over {MAX_TEXT_CHARS:,} characters, or a body too large",
                 422: "Invalid input: empty list, blank text, malformed JSON or not JSON",
                 504: "The model did not answer within the per-request timeout"}
    return {s: {"model": ErrorResponse, "description": described[s]} for s in statuses}


def _timed_predict(classifier: Classifier, texts: list[str]) -> tuple[list[Prediction], float]:
    started = time.perf_counter()
    predictions = classifier.predict(texts)
    return predictions, (time.perf_counter() - started) * 1000


def _public_check(check: dict) -> dict:
    """A check as clients see it: file names only, no local paths."""
    public = {k: v for k, v in check.items() if k != "run"}
    if isinstance(public.get("suite"), dict) and "file" in public["suite"]:
        public["suite"] = {**public["suite"], "file": Path(str(public["suite"]["file"])).name}
    return public


def create_app(run_dir: str | Path | None = None, registry: ModelRegistry | None = None,
               settings: ServeConfig | None = None) -> FastAPI:
    """The app for ``run_dir``'s models (loaded here, once), or for an already loaded ``registry``."""
    if registry is None:
        if run_dir is None:
            raise ValueError("create_app needs a run directory or a registry")
        registry = ModelRegistry.load(run_dir)
    settings = settings or ServeConfig()
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    checks = ChecksResponse(checks=[_public_check(c) for c in RunDirectory(registry.run_dir).read_checks().values()])
    limiter: list[anyio.CapacityLimiter] = []  # made on first use, inside the event loop

    app = FastAPI(title="distilora", version=__version__, description=DESCRIPTION)
    app.state.registry = registry
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,  # type: ignore[arg-type]
                       read_timeout_s=settings.timeout_s)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/healthz", response_model=Health, tags=["service"], summary="200 once the models are loaded")
    def healthz() -> Health:
        return Health(status="ok", models=registry.names)

    @app.get("/api/v1/models", response_model=ModelsResponse, tags=["models"],
             summary="The loaded models with their layers, sizes and scores")
    def models() -> ModelsResponse:
        return ModelsResponse.model_validate(registry.describe_all())

    @app.get("/api/v1/checks", response_model=ChecksResponse, tags=["checks"],
             summary="The run's behavioural checks (read once at start-up); empty when there are none")
    def get_checks() -> ChecksResponse:
        return checks

    @app.post("/api/v1/classify", response_model=ClassifyResponse, tags=["models"],
              responses=_errors(404, 408, 413, 422, 504), summary="Classify up to 256 texts with one model")
    async def classify(body: ClassifyRequest) -> ClassifyResponse:
        name = body.model or registry.default_model
        classifier = registry.get(name)
        if not limiter:
            limiter.append(anyio.CapacityLimiter(settings.max_concurrent))
        try:
            with anyio.fail_after(settings.timeout_s):
                predictions, elapsed_ms = await anyio.to_thread.run_sync(
                    _timed_predict, classifier, body.texts, abandon_on_cancel=True, limiter=limiter[0])
        except TimeoutError:
            raise errors.InferenceTimeout(settings.timeout_s) from None
        results = [ClassifyResult(label=p.label, scores=p.scores, truncated=p.truncated) for p in predictions]
        return ClassifyResponse(model=name, results=results, elapsed_ms=round(elapsed_ms, 3))

    return app
