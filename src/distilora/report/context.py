"""Everything the tables, plots and findings are computed from, gathered once."""

from __future__ import annotations

from dataclasses import dataclass

from distilora.report.baseline import NAME as BASELINE
from distilora.report.baseline import Baseline


@dataclass
class ReportContext:
    results: dict
    """The run's ``results.json`` (as read, before the report adds to it)."""
    baseline: Baseline
    statistics: dict
    """What :func:`distilora.report.analysis.run_statistics` returned."""
    speed: dict | None = None
    """``{"models": {name: timings}, "machine": str, "texts": str}``, or None when not measured."""

    @property
    def models(self) -> dict[str, dict]:
        return self.results["models"]

    @property
    def labels(self) -> list[str]:
        return self.results["labels"]

    @property
    def intervals(self) -> dict[str, dict]:
        return self.statistics["intervals"]

    @property
    def seeds(self) -> dict[str, dict]:
        return self.statistics.get("seeds", {})

    def multi_seed(self, name: str) -> bool:
        return self.seeds.get(name, {}).get("n_seeds", 0) > 1

    @property
    def any_multi_seed(self) -> bool:
        return any(self.multi_seed(name) for name in self.models)

    def speed_of(self, name: str) -> dict | None:
        return (self.speed or {}).get("models", {}).get(name)

    def metrics(self, name: str, split: str) -> dict:
        if name == BASELINE:
            return self.baseline.metrics[split]
        return self.models[name]["metrics"][split]
