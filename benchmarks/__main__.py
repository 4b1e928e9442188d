"""``python -m benchmarks``: training / inference speed of teacher, students and LoRA, as JSON and tables."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from benchmarks.config import FULL, QUICK, BenchConfig


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="measure training / inference speed of teacher, students and LoRA against a naive loop and "
                    "plain transformers (JSON + table)")
    parser.add_argument("--dataset", default=defaults.dataset, help="dataset directory (texts are sampled from it)")
    parser.add_argument("--output", default=defaults.output, help="where to write the JSON")
    parser.add_argument("--quick", action="store_true",
                        help="a few steps and texts only: checks the bench works, numbers are rough")
    parser.add_argument("--run", default=None,
                        help="a finished run directory: use its trained models (default: random heads / students "
                             "built from the pretrained teacher; speed does not depend on trained values)")
    parser.add_argument("--teacher", default=defaults.teacher, help="pretrained checkpoint (packaged MiniLM)")
    # "%(default).0s" prints nothing: it only stops argparse from appending "(default: None)".
    sizes = parser.add_argument_group("sizes")
    for flag, what in (("--steps", "timed optimizer steps per variant"), ("--batch-size", "training batch size"),
                       ("--infer-samples", "texts for batch inference"),
                       ("--latency-samples", "single-text calls per model and path")):
        name = flag[2:].replace("-", "_")
        sizes.add_argument(flag, type=_positive_int, default=None,
                           help=f"{what} (default: {FULL[name]}, --quick: {QUICK[name]})%(default).0s")
    sizes.add_argument("--threads", type=_positive_int, default=None,
                       help="torch threads (default: torch's own choice)%(default).0s")
    sizes.add_argument("--seed", type=int, default=defaults.seed)
    return parser


def main(argv: list[str] | None = None) -> int:
    import datasets
    from transformers.utils import logging as transformers_logging

    from benchmarks import format_report, run_bench

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # Dozens of models are built and loaded: keep load reports and progress bars out of the table.
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()

    options = BenchConfig(dataset=args.dataset, output=args.output, quick=args.quick, run=args.run,
                          teacher=args.teacher, steps=args.steps, batch_size=args.batch_size,
                          infer_samples=args.infer_samples, latency_samples=args.latency_samples,
                          threads=args.threads, seed=args.seed)
    # Trainer logs and library chatter go to stderr; stdout gets only the tables.
    with contextlib.redirect_stdout(sys.stderr):
        results = run_bench(options, log=lambda message: print(f"[bench] {message}", file=sys.stderr, flush=True))
    print(format_report(results))
    print(f"Saved to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
