"""The report end to end: from the tiny run (real models, speed measured by the run) and from a fake multi-seed
run."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import all_kinds
import numpy as np
import pytest
from PIL import Image

from distilora.evaluation.calibration import calibration_summary, fit_calibration
from distilora.evaluation.metrics import classification_metrics
from distilora.evaluation.speed import measure, timing_texts
from distilora.report import rebuild_report
from distilora.run_dir import RunLayout

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODELS = ("teacher", "odd", "even", "lora")
PLOTS = ["macro_f1_ci.png", "tradeoff.png", "reliability.png"] + [
    f"{kind}_{m}.png" for kind in ("training", "confusion") for m in MODELS]
TABLE_HEADERS = [
    "accuracy [95 % CI]", "macro-F1 [95 % CI]", "precision (macro)", "recall (macro)", "| loss |",
    "| parameters |", "| trainable |", "size on disk (MiB)", "training time (s)", "final training loss",
    "latency, 1 text (ms, median)", "throughput (texts/s)", "A − B [95 % CI]", "McNemar p", "Holm-adjusted p",
]
COMPARISONS = ["odd vs even", "odd vs teacher", "even vs teacher", "lora vs teacher", "odd vs lora", "even vs lora"]


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
    files = rebuild_report(RunLayout(run)).files
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
    assert "of all of them, in fp32 (how `distilora serve` runs the models by default)." in md
    precision = json.loads((run / "results.json").read_text())["precision"]
    native = "has" if precision["native_bf16"] else "has no"
    where = f"cpu ({precision['cpu']})" if precision["cpu"] else "cpu"
    assert (f"Precision: {precision['resolved']} for training and evaluation (--precision {precision['requested']}; "
            f"the {where} {native} native bf16); 1 training process.") in md
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
    assert [f"{c['a']} vs {c['b']}" for c in stats["comparisons"]][:6] == COMPARISONS
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
        logits = {split: np.log(p) for split, p in probs.items()}
        calibration, at_threshold = calibration_summary(fit_calibration(logits["validation"], y["validation"], LABELS),
                                                        logits, y)
        (run / "predictions" / f"{name}.json").write_text(json.dumps(
            {split: {"y_true": y[split].tolist(), "probs": probs[split].tolist()} for split in y}))
        models[name] = {
            "route": routes[name], "layers": {"odd": [1, 3, 5], "even": [2, 4, 6]}.get(name),
            "num_layers": 3 if routes[name] == "distil" else 6,
            "metrics": {split: classification_metrics(y[split], np.log(probs[split]), LABELS) for split in y},
            "train_loss": 0.3, "train_loss_mean": 0.4, "params": 22_000_000 if routes[name] != "distil" else 12_000_000,
            "trainable_params": 300_000 if name == "lora" else 22_000_000, "size_mb": 86.0 if name != "odd" else 48.0,
            "train_seconds": 100.0, "history": fake_history(routes[name] == "distil"),
            "calibration": calibration, "metrics_at_threshold": at_threshold,
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
    rebuild_report(RunLayout(run))
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
    rebuild_report(RunLayout(run))
    second = json.loads((run / "results.json").read_text())
    assert second == first
    assert second["extra_key"] == {"kept": True} and second["seed_runs"] == before["seed_runs"]
    assert "speed" not in second, "the report measures nothing"


def test_data_warnings_reach_the_report(tmp_path):
    results = make_fake_run(tmp_path / "run", seeds=False)
    results["data_report"]["test"]["warnings"] = ["the test split has no items of class 'hate speech'"]
    (tmp_path / "run" / "results.json").write_text(json.dumps(results))
    rebuild_report(RunLayout(tmp_path / "run"), n_resamples=1000)
    data_section = (tmp_path / "run" / "report.md").read_text().split("## Data")[1]
    assert "Warning: the test split has no items of class 'hate speech'." in data_section


def test_baseline_falls_back_to_validation_and_the_report_says_so(tmp_path):
    make_fake_run(tmp_path / "run", seeds=False, label_counts=False)
    rebuild_report(RunLayout(tmp_path / "run"), n_resamples=1000)
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


# ---- a run with every route kind: 16 models, baselines without history, an importance student ------------------------
def nested_probs(y_true: np.ndarray, u: np.ndarray, accuracy: float | None) -> np.ndarray:
    """Right where ``u < accuracy`` (nested across models), else the next class; None: always 'offensive'."""
    predicted = np.full(len(y_true), 1) if accuracy is None else np.where(u < accuracy, y_true, (y_true + 1) % 3)
    probs = np.full((len(y_true), 3), 0.1)
    probs[np.arange(len(y_true)), predicted] = 0.8
    return probs


def make_all_kinds_run(run: Path, n: int = 600) -> dict:
    """results.json (with speed for every model but ``last``) and predictions/ for the 16 models of all_kinds."""
    rng = np.random.default_rng(1)
    y = {"validation": np.arange(n // 2) % 3, "test": np.arange(n) % 3}
    u = {split: rng.random(len(truth)) for split, truth in y.items()}
    (run / "predictions").mkdir(parents=True)
    models = {}
    for name, (route, *_, accuracy) in all_kinds.MODELS.items():
        probs = {split: nested_probs(truth, u[split], accuracy) for split, truth in y.items()}
        (run / "predictions" / f"{name}.json").write_text(json.dumps(
            {split: {"y_true": y[split].tolist(), "probs": probs[split].tolist()} for split in y}))
        metrics = {split: classification_metrics(y[split], np.log(probs[split]), LABELS) for split in y}
        models[name] = all_kinds.model_entry(name, metrics, fake_history(route in ("distil", "hybrid")))
    speed = {name: {"latency_ms": 2.0 + i, "latency_ms_p90": 3.0 + i, "throughput": 500.0 - i, "device": "cpu"}
             for i, name in enumerate(models) if name != "last"}
    data_report = {split: {"rows": n, "dropped": 0, "reasons": {}} for split in ("train", "validation", "test")}
    data_report["train"]["label_counts"] = [100, 500, 200]
    results = {"dataset": "fake", "teacher": "fake", "labels": LABELS, "data_report": data_report, "seed": 42,
               "models": models, "created": "today",
               "speed": {"models": speed, "machine": "test machine", "texts": "64 texts"}}
    (run / "results.json").write_text(json.dumps(results, indent=1))
    return results


@pytest.fixture(scope="module")
def all_kinds_report(tmp_path_factory):
    run = tmp_path_factory.mktemp("all-kinds") / "run"
    results = make_all_kinds_run(run)
    files = rebuild_report(RunLayout(run), n_resamples=1000).files
    stats = json.loads((run / "results.json").read_text())["statistics"]
    return run, results, stats, files


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}\n")[1].split("\n## ")[0]


def _table_rows(section: str) -> list[list[str]]:
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[1:]]


def test_leaderboard_ranks_every_model_by_test_macro_f1_without_a_second_majority_row(all_kinds_report):
    run, results, stats, _ = all_kinds_report
    md = (run / "report.md").read_text()
    assert md.index("## Leaderboard") < md.index("## What the numbers say") < md.index("## Test results")
    rows = _table_rows(_section(md, "Leaderboard"))
    estimates = {n: stats["intervals"][n]["macro_f1"]["estimate"] for n in results["models"]}
    assert [r[1] for r in rows] == sorted(results["models"], key=lambda n: -estimates[n])
    assert [r[0] for r in rows] == [str(i) for i in range(1, 17)]
    assert rows[0][1] == "teacher" and rows[-1][1] in ("majority", all_kinds.COLLAPSED)
    by_name = {r[1]: r for r in rows}
    ci = stats["intervals"]["odd"]["macro_f1"]
    assert by_name["odd"][2:6] == ["distil", f"{ci['estimate']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]",
                                   f"{results['models']['odd']['metrics']['validation']['macro_f1']:.3f}",
                                   "3 (1,3,5)"]
    assert by_name["teacher"][5] == "6 (all)" and by_name["tfidf"][5] == "0" and by_name["majority"][5] == "0"
    assert by_name["lora"][6:8] == ["22.70 M", "0.30 M"] and by_name["lora"][8] == "86.0"
    assert by_name["last"][9] == "not measured" and by_name["teacher"][9] == "2.00"
    assert by_name[all_kinds.COLLAPSED][10] == "⚠ collapsed" and by_name["odd"][10] == "no"
    assert by_name["majority"][10] == "—"
    # The run's own majority model stands for the baseline: no "majority baseline" row in any table.
    assert "| majority baseline |" not in md
    assert "majority baseline" in stats["intervals"]  # still computed, for the "above baseline" sentence
    html = (run / "report.html").read_text()
    assert "<h2>Leaderboard</h2>" in html and "⚠ collapsed" in html


def test_comparisons_are_a_readable_set_holm_adjusted_over_all(all_kinds_report):
    _, _, stats, _ = all_kinds_report
    pairs = {(c["a"], c["b"]): c["kind"] for c in stats["comparisons"]}
    non_baseline = [n for n, spec in all_kinds.MODELS.items() if spec[0] not in ("fine-tune", "baseline")]
    assert {a for a, b in pairs if b == "teacher"} == set(non_baseline)
    assert pairs[("lora-kd", "teacher")] == "hybrid vs teacher" and pairs[("lora-dora", "teacher")] == "LoRA vs teacher"
    learners = ["odd", "even", "first", "last", "importance", "lora-kd", "odd-lora"]
    assert {a for a, b in pairs if b == "odd-no-kd"} == set(learners)
    assert {a for a, b in pairs if b == "lora"} == set(learners)
    assert {b for a, b in pairs if a == "odd" and pairs[(a, b)] == "student vs student"} == {
        "even", "first", "last", "importance"}
    assert ("tfidf", "teacher") not in pairs and ("majority", "teacher") not in pairs
    assert len(pairs) == len(stats["comparisons"]) <= 31
    assert f"Holm over the {len(pairs)} comparisons" in stats["method"]["multiple_comparisons"]
    for c in stats["comparisons"]:
        assert c["mcnemar"]["p_value"] <= c["mcnemar"]["p_holm"] <= 1


def test_findings_tell_what_distillation_adds_collapse_and_half_depth(all_kinds_report):
    run, results, stats, _ = all_kinds_report
    findings = _section((run / "report.md").read_text(), "What the numbers say")
    from distilora.evaluation.statistics import macro_f1

    predictions = {n: json.loads((run / "predictions" / f"{n}.json").read_text())["test"] for n in ("odd", "odd-no-kd")}
    f1 = {n: macro_f1(np.array(p["y_true"]), np.array(p["probs"]).argmax(axis=1), 3) for n, p in predictions.items()}
    gain = next(c for c in stats["comparisons"] if (c["a"], c["b"]) == ("odd", "odd-no-kd"))["macro_f1_difference"]
    assert gain["estimate"] == pytest.approx(f1["odd"] - f1["odd-no-kd"]) and gain["estimate"] > 0.05
    assert gain["low"] > 0  # odd is right wherever odd-no-kd is, and on ~7 % more items
    assert (f"- Distillation adds +{gain['estimate']:.3f} [95 % CI +{gain['low']:.3f}, +{gain['high']:.3f}] "
            "macro-F1 over training the same student on labels alone (odd vs odd-no-kd") in findings
    assert "- odd vs odd-no-kd (" not in findings  # told once, in the sentence above

    collapsed = [line for line in findings.splitlines() if "flagged as collapsed" in line]
    assert collapsed == [f"- {all_kinds.COLLAPSED} is flagged as collapsed: {'; '.join(all_kinds.COLLAPSE_REASONS)} "
                         "(its most predicted class takes 100 % of the validation items; always answering the train "
                         "majority class scores validation macro-F1 0.222)."]

    teacher = stats["intervals"]["teacher"]["macro_f1"]["estimate"]
    half = ["odd", "even", "first", "last", "importance", "odd-no-kd", "odd-lora"]
    share = {n: stats["intervals"][n]["macro_f1"]["estimate"] / teacher for n in half}
    reached = sorted((n for n in half if share[n] >= 0.97), key=lambda n: -share[n])
    assert reached[:1] == ["odd"]  # 0.88 vs 0.90 accuracy, nested predictions
    sentence = next(line for line in findings.splitlines() if "97 % of the teacher's test macro-F1" in line)
    names = reached[0] if len(reached) == 1 else ", ".join(reached[:-1]) + " and " + reached[-1]
    assert sentence.startswith(f"- With at most half of the teacher's 6 layers, {names} reach")
    odd = stats["intervals"]["odd"]["macro_f1"]["estimate"]
    assert f"(0.97 × {teacher:.3f} = {0.97 * teacher:.3f}): odd ({odd:.3f}, {share['odd'] * 100:.1f} %)" in sentence
    assert "tfidf" not in sentence and "lora-kd" not in sentence


def test_importance_plot_and_table_and_no_curves_without_history(all_kinds_report):
    run, _, _, files = all_kinds_report
    assert_valid_png(files["plots/importance_importance.png"])
    md = (run / "report.md").read_text()
    assert "](plots/importance_importance.png)" in md
    rows = _table_rows(_section(md, "Layer importance (importance)"))
    assert [(r[0], r[1], r[3]) for r in rows] == [("1", "1,2,3,4,5,6", "6"), ("2", "1,2,3,4,5", "3"),
                                                  ("3", "1,2,4,5", "5")]
    assert rows[0][2].startswith("1: 0.450, 2: 0.500") and rows[0][4] == "0.400"
    for name in all_kinds.MODELS:
        has_curves = name not in all_kinds.NO_HISTORY
        assert (run / "plots" / f"training_{name}.png").exists() == has_curves, name
        assert (run / "plots" / f"confusion_{name}.png").exists()
    assert "No training history (not trained step by step): tfidf, majority." in md
    html = (run / "report.html").read_text()
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == len(list((run / "plots").glob("*.png")))
