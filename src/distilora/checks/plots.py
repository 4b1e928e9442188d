"""The check's figure: accuracy per group (rows) and model (columns), drawn from the check's JSON alone."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from distilora.render.figures import save_figure


def accuracy_heatmap(check: Mapping, grouping: Mapping, path: Path) -> Path:
    """Groups × models heat-map of accuracy (annotated; empty groups grey) for one grouping column of a check."""
    models = list(check["models"])
    groups = [g["group"] for g in grouping["groups"]]
    values = np.full((len(groups), len(models)), np.nan)
    for j, model in enumerate(models):
        for i, row in enumerate(grouping["accuracy"][model]):
            if row["accuracy"] is not None:
                values[i, j] = row["accuracy"]
    width = max(5.5, 1.1 * len(models) + 0.09 * max(map(len, groups)) + 2.5)
    fig = Figure(figsize=(width, max(2.8, 0.38 * len(groups) + 1.6)), layout="constrained")
    ax = fig.subplots()
    cmap = colormaps["RdYlGn"].with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, label="accuracy")
    for i in range(len(groups)):
        for j in range(len(models)):
            text = "—" if np.isnan(values[i, j]) else f"{values[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(models)), models)
    ax.set_yticks(range(len(groups)), [f"{g['group']} (n={g['n']})" for g in grouping["groups"]])
    ax.xaxis.tick_top()
    decided = check.get("threshold", "argmax")  # "argmax", or a multi-label check's "0.5 per label"
    ax.set_title(f"Behavioural check '{check['name']}': accuracy by {grouping['column']} ({decided})", fontsize=11)
    return save_figure(fig, path)
