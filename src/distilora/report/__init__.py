"""The run report: tables, plots, statistics and findings, as ``report.md`` and a self-contained ``report.html``."""

from distilora.report.build import build_report

__all__ = ["build_report"]
