"""The comparison table of a run, as Markdown."""

from __future__ import annotations


def _fmt_params(n: int | None) -> str:
    return "—" if n is None else f"{n / 1e6:.2f} M"


def results_markdown(results: dict) -> str:
    """One row per model: depth, size, time, and validation / test accuracy and macro-F1."""
    lines = [
        f"# distilora results — {results['dataset']}",
        "",
        f"Teacher: `{results['teacher']}` · labels: {', '.join(results['labels'])} · seed {results['seed']}",
        "",
        "| model | layers | params | trainable | size MB | train s | val acc | val macro-F1 | test acc "
        "| test macro-F1 | test loss |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in results["models"].items():
        layers = ",".join(map(str, m["layers"])) if m["layers"] else f"all {m['num_layers']}"
        val, test = m["metrics"]["validation"], m["metrics"]["test"]
        lines.append(
            f"| {name} | {layers} | {_fmt_params(m['params'])} | {_fmt_params(m['trainable_params'])} "
            f"| {m['size_mb']:.1f} | {m['train_seconds']:.0f} | {val['accuracy']:.4f} | {val['macro_f1']:.4f} "
            f"| {test['accuracy']:.4f} | {test['macro_f1']:.4f} | {test['loss']:.4f} |"
        )
    lines += ["", "Rows dropped while reading the data (empty text, missing or unknown label):", ""]
    for split, info in results["data_report"].items():
        reasons = ", ".join(f"{k}: {v}" for k, v in info.get("reasons", {}).items() if v) or "none"
        lines.append(f"- {split}: {info['rows']} rows used, {info['dropped']} dropped ({reasons})")
    return "\n".join(lines) + "\n"
