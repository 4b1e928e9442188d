"""Number formatting shared by the report's tables and findings, the checks and the model cards."""

from __future__ import annotations

from distilora.results import Interval, MetricSummary

DASH = "—"


def num(value: float | None, digits: int = 3) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def signed(value: float, digits: int = 3) -> str:
    return f"{value:+.{digits}f}"


def ci(interval: Interval | None, digits: int = 3) -> str:
    """``0.612 [0.580, 0.644]``."""
    if interval is None:
        return DASH
    return f"{interval.estimate:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"


def share(interval: Interval | None) -> str:
    """``41.3 % [38.2, 44.5]``: a share with its interval, in percent."""
    if interval is None:
        return DASH
    return f"{interval.estimate * 100:.1f} % [{interval.low * 100:.1f}, {interval.high * 100:.1f}]"


def signed_ci(interval: Interval, digits: int = 3) -> str:
    """``+0.012 [−0.010, +0.034]``."""
    return f"{signed(interval.estimate, digits)} [{signed(interval.low, digits)}, {signed(interval.high, digits)}]"


def mean_std(summary: MetricSummary | None, digits: int = 3) -> str:
    """``0.612 ± 0.010``; a single value has no spread, so it is shown alone."""
    if summary is None:
        return DASH
    if len(summary.values) == 1:
        return f"{summary.mean:.{digits}f} (1 seed)"
    return f"{summary.mean:.{digits}f} ± {summary.std:.{digits}f}"


def params(n: int | None) -> str:
    if n is None:
        return DASH
    return f"{n / 1e6:.2f} M" if n >= 10_000 else f"{n:,}"


def p_value(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_is(p: float) -> str:
    """``p < 0.001`` or ``p = 0.042``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def ratio(value: float) -> str:
    return f"{value:.2f}×"


def percent_change(first: float, last: float) -> str:
    return "" if first == 0 else f" ({(last - first) / abs(first) * 100:+.0f} %)"
