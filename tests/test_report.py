"""The report end to end: from the tiny run (real models, speed measured by the run) and from a fake multi-seed
run."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distilora.evaluation.metrics import classification_metrics
from distilora.evaluation.speed import measure, timing_texts
from distilora.report import rebuild_report
from distilora.run_dir import RunDirectory

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODELS = ("teacher", "odd", "even", "lora")
PLOTS = ["macro_f1_ci.png", "tradeoff.png"] + [f"{kind}_{m}.png" for kind in ("training", "confusion") for m in MODELS]
TABLE_HEADERS = [
    "accuracy [95 % CI]", "macro-F1 [95 % CI]", "precision (macro)", "recall (macro)", "| loss |",
    "| parameters |", "| trainable |", "size on disk (MiB)", "training time (s)", "final training loss",
    "latency, 1 text (ms, median)", "throughput (texts/s)", "A − B [95 % CI]", "McNemar p", "Holm-adjusted p",
]
COMPARISONS = ["odd vs even", "odd vs teacher", "even vs teacher", "odd vs lora", "even vs lora"]


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= 300, (path, image.size)


def assert_self_contained_html(html: str, plot_dir: Path) -> None:
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == len(PLOTS)
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in sources}
    assert embedded == {(plot_dir / name).read_bytes() for name in PLOTS}
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, re.IGNORECASE)
    assert "<link" not in html.lower() and "<script" not in html.lower() and "url(" not in html.lower()


# ---- the tiny run: real models, speed measured ----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_report(tiny_run, tmp_path_factory):
    """A copy of the session's tiny run (others read the original), with its report built."""
    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(tiny_run, run)
    before = json.loads((run / "results.json").read_text())
    files = rebuild_report(RunDirectory(run)).files
    return run, before, files


def test_report_files_and_plots(tiny_report):
    run, _, files = tiny_report
    for name in ("report.html", "report.md", *(f"plots/{p}" for p in PLOTS)):
        assert files[name] == run / name and files[name].is_file()
    for name in PLOTS:
        assert_valid_png(run / "plots" / name)
    assert not list(run.glob(".*.tmp")), "temporary files left behind"


def test_html_is_self_contained(tiny_report):
    run, _, _ = tiny_report
    html = (run / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert_self_contained_html(html, run / "plots")
    assert "What the numbers say" in html and "majority baseline" in html


def test_markdown_has_every_table_and_plot(tiny_report):
    run, _, _ = tiny_report
    md = (run / "report.md").read_text()
    for header in TABLE_HEADERS + ["F1 neutral", "F1 toxic"]:
        assert header in md, header
    for model in (*MODELS, "majority baseline"):
        assert f"| {model} |" in md, model
    for comparison in COMPARISONS:
        assert f"| {comparison} |" in md, comparison
    for name in PLOTS:
        assert f"](plots/{name})" in md
    assert "over seeds" not in md  # a single-seed run has no seed columns
    assert "Across seeds" not in md
    assert "sampled (seed 0) from the test split" in md  # the dataset exists, so speed used real test texts
    findings = md.split("## What the numbers say")[1].split("## ")[0]
    assert "the KL term (× T²)" in findings and "the cosine term (1 − cos)" in findings
    odd_cost = next(line for line in findings.splitlines() if line.startswith("- odd compared with teacher"))
    assert "the size on disk" in odd_cost and re.search(r"(faster|slower|as fast) on a single text", odd_cost)


def test_results_json_gains_statistics_and_keeps_every_key(tiny_report):
    run, before, _ = tiny_report
    after = json.loads((run / "results.json").read_text())
    assert after == before, "the run's results and a rebuilt report's are the same (same bootstrap seed)"
    assert after["speed"] is not None
    stats = after["statistics"]
    assert stats["method"]["resamples"] >= 1000 and stats["method"]["n_items"] == before["data_report"]["test"]["rows"]
    assert set(stats["intervals"]) == {*MODELS, "majority baseline"}
    for intervals in stats["intervals"].values():
        for metric in ("accuracy", "macro_f1"):
            ci = intervals[metric]
            assert ci["low"] <= ci["estimate"] <= ci["high"]
    for model in MODELS:
        assert stats["intervals"][model]["macro_f1"]["estimate"] == pytest.approx(
            before["models"][model]["metrics"]["test"]["macro_f1"])
    assert [f"{c['a']} vs {c['b']}" for c in stats["comparisons"]][:5] == COMPARISONS
    for c in stats["comparisons"]:
        assert 0 <= c["mcnemar"]["p_value"] <= c["mcnemar"]["p_holm"] <= 1
    assert stats["baseline"]["source"] == "train label counts"
    speed = after["speed"]["models"]
    assert set(speed) == set(MODELS)
    assert all(s["latency_ms"] > 0 and s["throughput"] > 0 for s in speed.values())


# ---- a fake run: three classes, three seeds, chosen differences ---------------------------------------------
LABELS = ["neutral", "offensive", "hate speech"]


def fake_predictions(y_true: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """Class probabilities that are right on about ``accuracy`` of the items."""
    k = len(LABELS)
    wrong = rng.random(len(y_true)) > accuracy
    predicted = np.where(wrong, (y_true + rng.integers(1, k, len(y_true))) % k, y_true)
    probs = np.full((len(y_true), k), 0.1)
    probs[np.arange(len(y_true)), predicted] = 0.8
    return probs


def fake_history(student: bool, steps: int = 10) -> list[dict]:
    history = []
    for step in range(1, steps + 1):
        entry = {"step": step, "epoch": step / steps, "loss": 1.0 / step, "learning_rate": 1e-4, "grad_norm": 1.0}
        if student:
            entry.update(loss_ce=1.0 / step, loss_kd=0.5 / step, loss_cos=0.2 + 0.1 / step)
        history.append(entry)
        if step % 5 == 0:
            history.append({"step": step, "eval_loss": 0.5, "eval_macro_f1": 0.5 + step / 40, "eval_accuracy": 0.7})
    return history


def make_fake_run(run: Path, *, seeds: bool = True, label_counts: bool = True, n: int = 400) -> dict:
    """A results.json and predictions/ as a multi-seed run writes them (no model directories)."""
    rng = np.random.default_rng(0)
    y = {"validation": rng.integers(0, 3, n // 2), "test": rng.integers(0, 3, n)}
    accuracy = {"teacher": 0.85, "odd": 0.82, "even": 0.6, "lora": 0.83}
    routes = {"teacher": "fine-tune", "odd": "distil", "even": "distil", "lora": "lora"}
    (run / "predictions").mkdir(parents=True)
    models = {}
    for name, acc in accuracy.items():
        probs = {split: fake_predictions(truth, acc, rng) for split, truth in y.items()}
        (run / "predictions" / f"{name}.json").write_text(json.dumps(
            {split: {"y_true": y[split].tolist(), "probs": probs[split].tolist()} for split in y}))
        models[name] = {
            "route": routes[name], "layers": {"odd": [1, 3, 5], "even": [2, 4, 6]}.get(name),
            "num_layers": 3 if routes[name] == "distil" else 6,
            "metrics": {split: classification_metrics(y[split], np.log(probs[split]), LABELS) for split in y},
            "train_loss": 0.3, "train_loss_mean": 0.4, "params": 22_000_000 if routes[name] != "distil" else 12_000_000,
            "trainable_params": 300_000 if name == "lora" else 22_000_000, "size_mb": 86.0 if name != "odd" else 48.0,
            "train_seconds": 100.0, "history": fake_history(routes[name] == "distil"),
        }
    data_report = {split: {"rows": len(y.get(split, range(n * 2))), "dropped": 0, "reasons": {}}
                   for split in ("train", "validation", "test")}
    if label_counts:
        data_report["train"]["label_counts"] = [100, 500, 200]  # "offensive" is the train majority
    results = {"dataset": "not/a/local/dir", "teacher": "fake", "labels": LABELS, "data_report": data_report,
               "seed": 42, "models": models, "created": "today", "extra_key": {"kept": True}}
    if seeds:
        results["seed_runs"] = {
            name: [{"seed": 42 + i, "metrics": {split: {**models[name]["metrics"][split],
                                                        "macro_f1": models[name]["metrics"][split]["macro_f1"] + d,
                                                        "accuracy": models[name]["metrics"][split]["accuracy"] + d}
                                                for split in y}}
                   for i, d in enumerate([0.0, 0.02, -0.02] if name != "teacher" else [0.0])]
            for name in models
        }
    (run / "results.json").write_text(json.dumps(results, indent=1))
    return results


@pytest.fixture(scope="module")
def fake_report(tmp_path_factory):
    run = tmp_path_factory.mktemp("fake") / "run"
    before = make_fake_run(run)
    rebuild_report(RunDirectory(run))
    return run, before


def test_multi_seed_report_shows_mean_and_std_next_to_the_ci(fake_report):
    run, before = fake_report
    md = (run / "report.md").read_text()
    stats = json.loads((run / "results.json").read_text())["statistics"]
    odd = stats["seeds"]["odd"]
    base = before["models"]["odd"]["metrics"]["test"]["macro_f1"]
    assert odd["n_seeds"] == 3 and odd["seeds"] == [42, 43, 44]
    assert odd["test"]["macro_f1"]["mean"] == pytest.approx(base)
    assert odd["test"]["macro_f1"]["std"] == pytest.approx(0.02)  # values base, base ± 0.02, ddof = 1
    assert stats["seeds"]["teacher"]["n_seeds"] == 1
    assert "macro-F1 over seeds (mean ± std)" in md and "## Across seeds" in md
    assert f"{base:.3f} ± 0.020 (n=3)" in md
    odd_row = next(line for line in md.splitlines() if line.startswith("| odd | distil"))
    ci = stats["intervals"]["odd"]["macro_f1"]
    assert f"{ci['estimate']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}] | {base:.3f} ± 0.020 (n=3)" in odd_row
    assert "Over 3 seeds, odd's test macro-F1" in md


def test_findings_follow_the_data(fake_report):
    run, before = fake_report
    stats = json.loads((run / "results.json").read_text())["statistics"]
    findings = (run / "report.md").read_text().split("## What the numbers say")[1].split("## ")[0]
    best = max(before["models"], key=lambda m: before["models"][m]["metrics"]["test"]["macro_f1"])
    assert findings.startswith(f"\n\n- {best} has the highest test macro-F1")
    by_pair = {f"{c['a']} vs {c['b']}": c for c in stats["comparisons"]}
    # even is much weaker (accuracy 0.6 vs 0.82 on 400 items): significant; odd vs lora (0.82 vs 0.83) is not.
    assert by_pair["odd vs even"]["difference_significant"] and by_pair["odd vs even"]["mcnemar_significant"]
    assert not by_pair["odd vs lora"]["difference_significant"]
    lines = [line for line in findings.splitlines() if line.startswith("- ")]
    odd_even = next(line for line in lines if line.startswith("- odd vs even"))
    odd_lora = next(line for line in lines if line.startswith("- odd vs lora"))
    assert "difference is statistically significant" in odd_even and "differ significantly" in odd_even
    assert "is not statistically significant" in odd_lora
    assert "always 'offensive'" in findings
    assert "odd compared with teacher: 0.56× the size on disk (48.0 vs 86.0 MiB)" in findings
    assert "Inference speed was not measured" in findings
    # fake KL: 0.5/step from step 1 to 10 → 0.5 to 0.05 (−90 %)
    assert "the KL term (× T²) fell from 0.5 to 0.05 (-90 %)" in findings


def test_report_without_speed_plots_size_and_embeds_everything(fake_report):
    run, _ = fake_report
    for name in PLOTS:
        assert_valid_png(run / "plots" / name)
    assert_self_contained_html((run / "report.html").read_text(), run / "plots")
    md = (run / "report.md").read_text()
    assert "Speed not measured" in md and "| not measured |" in md
    assert "F1 hate speech" in md


def test_rebuilding_is_idempotent_and_keeps_unknown_keys(fake_report):
    run, before = fake_report
    first = json.loads((run / "results.json").read_text())
    rebuild_report(RunDirectory(run))
    second = json.loads((run / "results.json").read_text())
    assert second == first
    assert second["extra_key"] == {"kept": True} and second["seed_runs"] == before["seed_runs"]
    assert "speed" not in second, "the report measures nothing"


def test_data_warnings_reach_the_report(tmp_path):
    results = make_fake_run(tmp_path / "run", seeds=False)
    results["data_report"]["test"]["warnings"] = ["the test split has no items of class 'hate speech'"]
    (tmp_path / "run" / "results.json").write_text(json.dumps(results))
    rebuild_report(RunDirectory(tmp_path / "run"), n_resamples=1000)
    data_section = (tmp_path / "run" / "report.md").read_text().split("## Data")[1]
    assert "Warning: the test split has no items of class 'hate speech'." in data_section


def test_baseline_falls_back_to_validation_and_the_report_says_so(tmp_path):
    make_fake_run(tmp_path / "run", seeds=False, label_counts=False)
    rebuild_report(RunDirectory(tmp_path / "run"), n_resamples=1000)
    md = (tmp_path / "run" / "report.md").read_text()
    assert "validation labels (results.json has no train label counts)" in md
    assert "over seeds" not in md


def test_cli_report(tmp_path, capsys):
    from distilora.cli import main

    make_fake_run(tmp_path / "run", seeds=False)
    assert main(["report", str(tmp_path / "run"), "--resamples", "1000"]) == 0
    assert "report.html" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "results.json").read_text())["statistics"]["method"]["resamples"] == 1000
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "results.json: not found" in capsys.readouterr().err


# ---- speed helpers -------------------------------------------------------------------------------------------
class SleepyClassifier:
    """Takes 4 ms per call plus 1 ms per text: known latency and throughput."""

    def predict_proba(self, texts):
        import time

        time.sleep(0.004 + 0.001 * len(texts))
        return np.zeros((len(texts), 2))


def test_measure_reports_latency_and_throughput_of_known_timings():
    speed = measure({"a": SleepyClassifier()}, [f"text {i}" for i in range(20)], single_texts=4, rounds=2)["a"]
    assert 5 <= speed["latency_ms"] < 40  # 5 ms asleep, plus scheduling noise on a busy machine
    assert speed["latency_ms"] <= speed["latency_ms_p90"]
    assert 20 / 0.1 < speed["throughput"] <= 20 / 0.024  # one batch of 20 sleeps 24 ms
    assert speed["batch_size"] == 20 and speed["rounds"] == 2


def test_timing_texts_are_a_seeded_sample_of_the_given_texts():
    texts = [f"test text {i}" for i in range(100)]
    sample = timing_texts(texts, n=64)
    assert len(sample) == 64 and len(set(sample)) == 64 and set(sample) <= set(texts)
    assert sample == timing_texts(texts, n=64), "same seed, same sample"
    assert timing_texts(texts[:10], n=64) == timing_texts(texts[:10], n=64) and len(timing_texts(texts[:10])) == 10
