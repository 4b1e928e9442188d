"""``distilora serve``: the web page and JSON API over one run's models (FastAPI, served by uvicorn)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from distilora.cli.options import add_dataclass_arguments, dataclass_from_args
from distilora.config import PerspectiveConfig, ServeConfig

HELP = "serve a web page and a JSON API that classify text with a run's models"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ServeConfig()
    parser.add_argument("--run", default=None,
                        help="a run directory made by distilora run; default: the newest one under ./runs/")
    add_dataclass_arguments(parser, ServeConfig)
    parser.add_argument("--allowed-host", action="append", dest="allowed_hosts", metavar="HOST",
                        help="also answer to this Host header (repeatable; * for any; default: "
                             f"{', '.join(defaults.allowed_hosts)})")
    perspective = parser.add_argument_group("Perspective-compatible API (/v1alpha1/comments:analyze)")
    perspective.add_argument("--attribute", action="append", metavar="NAME=RUN:MODEL[:LABEL]",
                             help="serve attribute NAME with a run's model (repeatable; several runs may serve); "
                                  "LABEL: the label scored (default: a binary model's positive label; a multi-label "
                                  "model's attributes name theirs and share one pass); default: "
                                  f"{PerspectiveConfig().default_attribute} from the served run's default model")
    perspective.add_argument("--attribute-file", metavar="FILE",
                             help="attributes from a TOML or JSON file: [attributes.NAME] run, model, label")
    perspective.add_argument("--api-key-file", metavar="FILE",
                             help="API keys, one a line: analyze and suggestscore then need ?key= (else 403)")
    perspective.add_argument("--qps", type=float, help="requests per second per key (per client without keys); "
                                                       "more get 429")
    perspective.add_argument("--feedback-dir", metavar="DIR",
                             help="accept comments:suggestscore and append it to DIR/feedback.jsonl "
                                  "(without: refused; nothing else ever stores a comment)")


def resolve_run(run: str | None) -> Path:
    """``--run``, or the newest run under ./runs/; a clear error when there is none."""
    from distilora.run_dir import RunLayout

    if run:
        if not RunLayout(run).is_finished():
            raise FileNotFoundError(f"--run {run}: no results.json there; is it a finished `distilora run` output?")
        return Path(run)
    latest = RunLayout.latest(Path("runs"))
    if latest is None:
        raise FileNotFoundError(
            "no finished run found (no runs/*/results.json under the current directory). Make one first with "
            "`distilora run` (or `make run`), or pass --run DIR."
        )
    return latest.root


def main(args: argparse.Namespace) -> int:
    defaults = ServeConfig()
    hosts = (*defaults.allowed_hosts, *(args.allowed_hosts or ()))
    if args.host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        hosts = (*hosts, args.host)
    config = dataclass_from_args(ServeConfig, args, {"allowed_hosts": hosts})
    from distilora.precision import resolve_precision

    resolve_precision(config.precision)  # bf16 without native support: one line here, not in the model process
    run_dir = resolve_run(args.run)
    from distilora.serve.perspective import perspective_config

    perspective = perspective_config(args.attribute, args.attribute_file, qps=args.qps,
                                     api_key_file=args.api_key_file and Path(args.api_key_file),
                                     feedback_dir=args.feedback_dir and Path(args.feedback_dir))

    import uvicorn

    from distilora.serve import create_app
    from distilora.serve.model_process import ModelLoadError

    logger.info("loading the models of %s", run_dir)
    try:
        app = create_app(run_dir, settings=config, perspective_config=perspective)
    except ModelLoadError as error:  # a checksum mismatch, a missing model: the child said which, in one line
        print(f"distilora serve: error: {error}", file=sys.stderr)
        return 2
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("listening on %s: the service is reachable from other machines", config.host)
    print(f"distilora serve: {', '.join(app.state.registry.names)} from {run_dir} on "
          f"http://{config.host}:{config.port}/ (API docs: /docs; Perspective: /v1alpha1/comments:analyze)",
          flush=True)
    try:
        # Ctrl-C: uvicorn stops accepting, lets the requests in flight finish (up to 5 s), then the lifespan stops
        # the model process; uvicorn raises the signal again once done.
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning" if args.quiet else "info",
                    timeout_graceful_shutdown=5, limit_concurrency=config.max_connections,
                    backlog=config.max_connections, timeout_keep_alive=5, h11_max_incomplete_event_size=64 * 1024)
    except KeyboardInterrupt:
        return 130
    return 0
