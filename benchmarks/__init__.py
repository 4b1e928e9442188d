"""The benchmark: training and inference speed of every route against naive references, in one run.

It lives beside the product, not in it: ``python -m benchmarks`` (or ``make bench``); method and results in
``benchmarks/README.md``. Entry point: :func:`run_bench`.
"""

from benchmarks.config import BenchConfig
from benchmarks.report import evaluate_targets, format_report
from benchmarks.runner import run_bench

__all__ = ["BenchConfig", "evaluate_targets", "format_report", "run_bench"]
