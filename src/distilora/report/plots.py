"""The report's figures, drawn with matplotlib's object API (Agg canvas, no global pyplot state) to PNG files."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from distilora.render.figures import save_figure
from distilora.results import CalibrationSummary, EceChange, MetricIntervals, ModelResult, ReliabilityBin, SeedSummary
from distilora.training.losses import CE, LossComponent, logged_components

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
COMPONENT_STYLES = [{"marker": "o", "linestyle": "-"}, {"marker": "s", "linestyle": "--"},
                    {"marker": "^", "linestyle": ":"}, {"marker": "D", "linestyle": "-."}]
"""Line styles of the loss components, in the order of LOSS_COMPONENTS."""
COMPONENT_COLORS = PALETTE[4:]


def file_stem(name: str) -> str:
    """A file-name-safe form of a model name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _series(history: Sequence[Mapping], key: str) -> tuple[list[float], list[float]]:
    points = [(h["step"], h[key]) for h in history if key in h and h.get(key) is not None and "step" in h]
    return [p[0] for p in points], [p[1] for p in points]


def _line(ax: Axes, history: Sequence[Mapping], key: str, label: str, **style) -> bool:
    steps, values = _series(history, key)
    if not steps:
        return False
    ax.plot(steps, values, marker=style.pop("marker", "o"), markersize=4, label=label, **style)
    return True


def _finish(ax: Axes, title: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("training step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _validation_panel(ax: Axes, history: Sequence[Mapping]) -> None:
    _line(ax, history, "eval_macro_f1", "validation macro-F1", color=PALETTE[2], marker="s")
    _line(ax, history, "eval_accuracy", "validation accuracy", color=PALETTE[3], marker="^", linestyle="--")
    ax.set_ylim(-0.02, 1.02)
    _finish(ax, "Validation metrics per evaluation", "score")


def _component_panels(axes: Sequence[Axes], history: Sequence[Mapping],
                      components: Sequence[LossComponent]) -> None:
    """One panel per logged loss component, then all of them relative to their first value in the next."""
    for i, (ax, component) in enumerate(zip(axes, components, strict=False)):
        _line(ax, history, component.logged, f"training {component.label}", color=COMPONENT_COLORS[i])
        if component is CE:
            _line(ax, history, "eval_loss", "validation CE", color=PALETTE[1], marker="s")
        _finish(ax, f"Component: {component.label}", "loss")
    relative = axes[len(components)]
    for i, component in enumerate(components):
        steps, values = _series(history, component.logged)
        if steps and values[0]:
            # Distinct line styles keep components visible where their curves coincide.
            relative.plot(steps, np.asarray(values) / values[0], markersize=5, color=COMPONENT_COLORS[i],
                          label=component.label, **COMPONENT_STYLES[i])
    relative.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    _finish(relative, "Components relative to their first logged value", "value / first value")
    for ax in axes[len(components) + 1:]:
        ax.set_visible(False)


def training_figure(name: str, entry: ModelResult) -> Figure:
    """Training loss (and, for models trained against the teacher, each loss component) over steps, with
    validation per evaluation."""
    history = entry.history
    components = logged_components(history)
    if not any(component.matches_teacher for component in components):
        fig = Figure(figsize=(11, 4), layout="constrained")
        loss_ax, val_ax = fig.subplots(1, 2)
        _line(loss_ax, history, "loss", "training loss (cross-entropy)", color=PALETTE[0])
        _line(loss_ax, history, "eval_loss", "validation loss (cross-entropy)", color=PALETTE[1], marker="s")
        _finish(loss_ax, "Loss", "loss")
        _validation_panel(val_ax, history)
    else:
        columns = max(3, -(-(len(components) + 3) // 2))  # total, validation, the components, relative: two rows
        fig = Figure(figsize=(5 * columns, 8.5), layout="constrained")
        axes = fig.subplots(2, columns).ravel()
        _line(axes[0], history, "loss", "training loss (weighted total)", color=PALETTE[0])
        _finish(axes[0], "Total distillation loss", "loss")
        _validation_panel(axes[1], history)
        _component_panels(axes[2:], history, components)
    if not history:
        fig.text(0.5, 0.5, "no training history recorded", ha="center", va="center", fontsize=14)
    detail = f"layers {','.join(map(str, entry.layers))}" if entry.layers else \
        f"{entry.num_layers if entry.num_layers is not None else '?'} layers"
    fig.suptitle(f"Training curves — {name} ({entry.route or '?'}, {detail})", fontsize=13)
    return fig


def training_curves(name: str, entry: ModelResult, path: Path) -> Path:
    """:func:`training_figure` saved as a PNG at ``path``."""
    return save_figure(training_figure(name, entry), path)


def confusion_matrix_plot(name: str, matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path) -> Path:
    """Row-normalised confusion matrix (share of each true class), annotated with share and count."""
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = max(4.5, 1.1 * len(labels) + 2.5)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{shares[i, j]:.2f}\n({int(counts[i, j])})", ha="center", va="center", fontsize=11,
                    color="white" if shares[i, j] > 0.6 else "black")
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, rotation=30 if max(map(len, labels)) > 8 else 0, ha="right"
                  if max(map(len, labels)) > 8 else "center")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix — {name} (test, n = {int(counts.sum())})\nrow-normalised; counts in brackets",
                 fontsize=11)
    return save_figure(fig, path)


def macro_f1_intervals(names: Sequence[str], intervals: Mapping[str, MetricIntervals],
                       seeds: Mapping[str, SeedSummary], baseline: float | None, path: Path) -> Path:
    """Test macro-F1 per model with its 95 % bootstrap CI, seed mean ± std where there are several seeds."""
    fig = Figure(figsize=(min(16, max(6.5, 1.4 * len(names) + 3)), 4.8), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(names))
    for i, name in enumerate(names):
        ci = intervals[name].macro_f1
        ax.errorbar(i, ci.estimate, yerr=[[ci.estimate - ci.low], [ci.high - ci.estimate]],
                    fmt="o", color=PALETTE[i % len(PALETTE)], capsize=6, markersize=8,
                    label="test macro-F1, 95 % bootstrap CI" if i == 0 else None)
        ax.annotate(f"{ci.estimate:.3f}", (i, ci.high), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=9)
        summary = seeds.get(name)
        test = summary.of("test", "macro_f1") if summary else None
        if summary and summary.n_seeds > 1 and test:
            ax.errorbar(i + 0.18, test.mean, yerr=test.std, fmt="D", color="black", capsize=4, markersize=5,
                        label="mean ± std over seeds" if not any("seeds" in t for t in
                                                                 ax.get_legend_handles_labels()[1]) else None)
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", label=f"majority-class baseline ({baseline:.3f})")
    many = len(names) > 6
    ax.set_xticks(x, names, rotation=35 if many else 0, ha="right" if many else "center")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("model")
    ax.set_ylabel("test macro-F1")
    ax.set_title("Test macro-F1 per model with 95 % confidence intervals", fontsize=12)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    return save_figure(fig, path)


def tradeoff(names: Sequence[str], x_values: Mapping[str, float], intervals: Mapping[str, MetricIntervals],
             x_label: str, unit: str, title: str, baseline: float | None, path: Path) -> Path:
    """Test macro-F1 (with CI) against a cost (latency or size), one point per model."""
    fig = Figure(figsize=(9.5, 5), layout="constrained")
    ax = fig.subplots()
    for i, name in enumerate(names):
        ci = intervals[name].macro_f1
        ax.errorbar(x_values[name], ci.estimate, yerr=[[ci.estimate - ci.low], [ci.high - ci.estimate]],
                    # Shrinking marker sizes keep models with the same cost and score visible, nested.
                    fmt=MARKERS[i % len(MARKERS)], color=PALETTE[i % len(PALETTE)], capsize=5,
                    markersize=max(5, 14 - 3 * i), alpha=0.9,
                    label=f"{name}: {x_values[name]:.3g} {unit}, F1 {ci.estimate:.3f}")
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", label=f"majority-class baseline ({baseline:.3f})")
    values = [x_values[n] for n in names]
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_xscale("log")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(x_label)
    ax.set_ylabel("test macro-F1 (95 % CI)")
    ax.set_title(title, fontsize=12)
    ax.grid(alpha=0.3)
    ax.margins(x=0.12)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), title="model: cost, macro-F1",
              title_fontsize=8)
    return save_figure(fig, path)


def importance_plot(name: str, importance: Mapping, path: Path) -> Path:
    """Per elimination step, the teacher's validation loss with each kept layer removed; the removed one ringed."""
    fig = Figure(figsize=(9.5, 5), layout="constrained")
    ax = fig.subplots()
    layers: set[int] = set()
    for i, step in enumerate(importance.get("steps") or []):
        points = sorted((c["layer"], c["loss"]) for c in step.get("candidates") or []
                        if c.get("layer") is not None and c.get("loss") is not None)
        if not points:
            continue
        layers.update(p[0] for p in points)
        color = PALETTE[i % len(PALETTE)]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=MARKERS[i % len(MARKERS)], color=color,
                label=f"step {i + 1} (kept {','.join(map(str, step.get('kept') or []))}): removes layer "
                      f"{step.get('removed')}")
        removed = [p for p in points if p[0] == step.get("removed")]
        if removed:
            ax.scatter(*removed[0], s=260, facecolors="none", edgecolors=color, linewidths=2.2, zorder=3)
    ax.set_xticks(sorted(layers))
    ax.set_xlabel("teacher layer removed (from the layers kept before the step)")
    ax.set_ylabel("validation loss without that layer")
    chosen = ",".join(map(str, importance.get("chosen") or [])) or "?"
    ax.set_title(f"Layer importance for {name}: greedy elimination, chosen layers {chosen}\n"
                 "ringed: the layer removed at each step", fontsize=11)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    else:
        ax.text(0.5, 0.5, "no elimination steps recorded", ha="center", va="center", transform=ax.transAxes)
    return save_figure(fig, path)


def _reliability_curve(ax: Axes, bins: Sequence[ReliabilityBin], label: str, **style) -> None:
    filled = [b for b in bins if b.count]
    if not filled:
        return
    total = sum(b.count for b in filled)
    confidence = [b.confidence for b in filled]
    accuracy = [b.accuracy for b in filled]
    ax.plot(confidence, accuracy, label=label, linewidth=1.6, color=style.get("color"),
            linestyle=style.get("linestyle", "-"), zorder=2)
    # Marker area: the bin's share of the items, so sparse bins are seen as such.
    ax.scatter(confidence, accuracy, s=[12 + 260 * b.count / total for b in filled], zorder=3, **style)


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def reliability_diagrams(entries: Mapping[str, CalibrationSummary], num_classes: int, path: Path,
                         split: str = "test", multi_label: bool = False) -> Path:
    """One panel per model: accuracy against mean confidence (top-class probability) per bin on ``split``, before
    (raw softmax) and after temperature scaling, with the diagonal of perfect calibration. ``multi_label``: the
    bins are of each (item, label) decision's confidence, max(p, 1 − p) of the raw sigmoid."""
    raw, x_label = (("raw sigmoid", "confidence (each label's decision)") if multi_label else
                    ("raw softmax", "confidence (top-class probability)"))
    names = list(entries)
    columns = min(4, max(1, len(names)))
    rows = -(-len(names) // columns)
    width = 3.6 * columns + 0.4
    fig = Figure(figsize=(width, 3.4 * rows + 0.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)).ravel()
    low = 0.5 if multi_label else 1 / num_classes if num_classes else 0.0
    for ax, name in zip(axes, names, strict=False):
        calibration = entries[name]
        curves = calibration.reliability[split]
        ece = calibration.ece.get(split) or EceChange()
        ax.plot([low, 1], [low, 1], color="grey", linewidth=0.9, linestyle=":", label="perfect calibration")
        _reliability_curve(ax, curves.before, raw, color="#888888", marker="o", facecolors="none",
                           edgecolors="#666666", linestyle="--")
        _reliability_curve(ax, curves.after, "temperature-scaled", color=PALETTE[0], marker="s")
        ax.set_title(f"{name}: T = {calibration.temperature:.2f}\nECE {_or_nan(ece.before):.3f} → "
                     f"{_or_nan(ece.after):.3f}", fontsize=10)
        ax.set_xlim(low - 0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=9, frameon=False)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for ax in axes[(rows - 1) * columns:]:
        ax.set_xlabel(x_label)
    for ax in axes[::columns]:
        ax.set_ylabel("accuracy")
    lines = (f"Reliability on {split}: accuracy against confidence per bin, before and after temperature scaling "
             "(fitted on validation)", f"marker area: share of the {split} items in the bin")
    fig.suptitle("\n".join(textwrap.fill(line, width=int(width * 11)) for line in lines), fontsize=10)
    return save_figure(fig, path)


def per_label_f1_bars(f1: Mapping[str, Sequence[float | None]], labels: Sequence[str], path: Path,
                      split: str = "test") -> Path:
    """Grouped bars: for each label, one bar per model with its F1 on ``split`` (a missing F1 is left out)."""
    names = list(f1)
    fig = Figure(figsize=(min(16, max(6.5, 0.5 * len(labels) * max(1, len(names)) + 3)), 4.8), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(names))
    x = np.arange(len(labels))
    for i, name in enumerate(names):
        values = np.asarray([_or_nan(v) for v in f1[name]], dtype=float)
        bars = ax.bar(x - 0.4 + width * (i + 0.5), values, width, color=PALETTE[i % len(PALETTE)], label=name)
        ax.bar_label(bars, [f"{v:.2f}" if not np.isnan(v) else "" for v in values], fontsize=7, padding=2)
    many = len(labels) > 6 or max(map(len, labels), default=0) > 10
    ax.set_xticks(x, labels, rotation=30 if many else 0, ha="right" if many else "center")
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("label")
    ax.set_ylabel(f"{split} F1")
    ax.set_title(f"{split.capitalize()} F1 per label and model (each label on at probability ≥ 0.5)", fontsize=12)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), title="model", title_fontsize=8)
    return save_figure(fig, path)
