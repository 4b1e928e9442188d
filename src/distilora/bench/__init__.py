"""``distilora bench``: training and inference speed of every route against naive references, in one run.

See ``docs/performance.md`` for the method. Entry point: :func:`run_bench`.
"""

from distilora.bench.options import BenchOptions
from distilora.bench.report import evaluate_targets, format_report
from distilora.bench.runner import run_bench

__all__ = ["BenchOptions", "evaluate_targets", "format_report", "run_bench"]
