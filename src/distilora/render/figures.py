"""Saving matplotlib figures (object API, Agg canvas: no global pyplot state) as PNG files."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

DPI = 110


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at the report's resolution (its folder made if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path
