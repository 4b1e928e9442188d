"""``distilora serve``: the web page and JSON API over one run's models (FastAPI, served by uvicorn)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "serve a web page and a JSON API that classify text with a run's models"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default=None,
                        help="a run directory made by distilora run; default: the newest one under ./runs/")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a request may take the model")


def resolve_run(run: str | None) -> Path:
    """``--run``, or the newest run under ./runs/; a clear error when there is none."""
    from distilora.serve.registry import find_latest_run

    if run:
        path = Path(run)
        if not (path / "results.json").is_file():
            raise FileNotFoundError(f"--run {run}: no results.json there; is it a finished `distilora run` output?")
        return path
    latest = find_latest_run(Path("runs"))
    if latest is None:
        raise FileNotFoundError(
            "no finished run found (no runs/*/results.json under the current directory). Make one first with "
            "`distilora run` (or `make run`), or pass --run DIR."
        )
    return latest


def main(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise ValueError(f"--port {args.port}: must be between 1 and 65535")
    if args.timeout <= 0:
        raise ValueError(f"--timeout {args.timeout}: must be > 0")
    run_dir = resolve_run(args.run)

    import uvicorn

    from distilora.serve import Settings, create_app

    logger.info("loading the models of %s", run_dir)
    app = create_app(run_dir, settings=Settings(timeout_s=args.timeout))
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("listening on %s: the service is reachable from other machines", args.host)
    print(f"distilora serve: {', '.join(app.state.registry.names)} from {run_dir} on http://{args.host}:{args.port}/"
          f" (API docs: /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info",
                timeout_graceful_shutdown=5)
    return 0
