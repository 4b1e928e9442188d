"""The run report: tables, plots, statistics and findings, as ``report.md`` and a self-contained ``report.html``."""

from distilora.report.build import Report, build_report, rebuild_report, report_run

__all__ = ["Report", "build_report", "rebuild_report", "report_run"]
