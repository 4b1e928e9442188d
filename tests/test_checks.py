"""Behavioural checks: suite reading and label mapping, group accuracies, what compression broke, the command,
the report section and the API endpoint."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from statistics import NormalDist

import pytest
from conftest import write_csv
from datasets import Dataset
from fastapi.testclient import TestClient
from scipy.stats import binomtest

from distilora.checks.compute import group_accuracies, summarise, what_broke
from distilora.checks.files import RunChecks
from distilora.checks.plots import accuracy_heatmap
from distilora.checks.run import choose_models, teacher_of
from distilora.checks.suite import load_suite, parse_label_map
from distilora.cli import main
from distilora.config import CheckConfig
from distilora.evaluation.metrics import wilson
from distilora.evaluation.statistics import holm
from distilora.inference import registry as backends
from distilora.results import ModelResult
from distilora.run_dir import RunLayout

LABELS = ["neutral", "toxic"]  # the tiny run's labels
PACKAGED_SUITE = Path(__file__).resolve().parents[1] / "src/distilora/checks/suites/mini_hatecheck.csv"
HATECHECK_HEADER = ("case_id", "functionality", "test_case", "label_gold", "target_ident", "direction")


def hatecheck_file(path: Path) -> Path:
    write_csv(path, [(1, "derog", "you people are vermin", "hateful", "women", "general"),
                     (2, "derog", "they are trash", "hateful", "immigrants", "general"),
                     (3, "positive", "I love my friends", "non-hateful", "women", "general"),
                     (4, "positive", "what a kind neighbour", "non-hateful", "immigrants", "general")],
              header=HATECHECK_HEADER)
    return path


def plain_file(path: Path) -> Path:
    """A plain suite: 3 groups, gold labels as run label names, one blank text in group 'b'."""
    rows = [("love sunny coffee", "neutral", "a"), ("kind music garden", "neutral", "a"),
            ("hate stupid idiot", "toxic", "a"), ("trash scum vermin", "toxic", "b"),
            ("   ", "toxic", "b"), ("friends holiday", "neutral", "b"),
            ("worthless disgusting", "toxic", "c"), ("sunny garden love", "neutral", "c")]
    write_csv(path, rows, header=("sentence", "gold", "kind"))
    return path


@pytest.fixture
def no_models(monkeypatch):
    """Fail the test if any model is loaded."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded although the suite is invalid")
    monkeypatch.setattr(backends, "backend_for", refuse)  # every load asks it first


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns(".work", ".cache")))


# ---- statistics ----------------------------------------------------------------------------------------------------
def wilson_by_hand(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_group_accuracies_and_wilson_intervals_match_a_hand_computation():
    correct = [True] * 7 + [False] * 3 + [True, False, False, False]
    groups = ["x"] * 10 + ["y"] * 4
    x, y = group_accuracies(correct, groups)
    assert (x.group, x.n, x.correct, x.accuracy) == ("x", 10, 7, 0.7)
    assert (y.group, y.n, y.correct, y.accuracy) == ("y", 4, 1, 0.25)
    for row in (x, y):
        low, high = wilson_by_hand(row.correct, row.n)
        assert row.low == pytest.approx(low, abs=1e-9) and row.high == pytest.approx(high, abs=1e-9)
    assert wilson(7, 10) == pytest.approx((0.3967781, 0.8922087), abs=1e-6)  # published value for 7/10
    assert wilson(7, 10, 0.9)[0] > x.low  # the level is honoured


def test_what_broke_counts_mcnemar_and_holm_on_a_constructed_example():
    # A: teacher right on all 10, model on 4 → 6 teacher-only; B: identical; C: model fixes 3 teacher errors.
    teacher = [True] * 10 + [True] * 5 + [False] * 5 + [False] * 3 + [True] * 7
    model = [True] * 4 + [False] * 6 + [True] * 5 + [False] * 5 + [True] * 3 + [True] * 7
    groups = ["A"] * 10 + ["B"] * 10 + ["C"] * 10
    rows = what_broke(teacher, model, groups)
    assert [r["group"] for r in rows] == ["A", "B", "C"]  # largest fall first
    a, b, c = rows
    assert (a["teacher_only_correct"], a["model_only_correct"]) == (6, 0)
    assert (b["teacher_only_correct"], b["model_only_correct"]) == (0, 0)
    assert (c["teacher_only_correct"], c["model_only_correct"]) == (0, 3)
    assert a["change"] == pytest.approx(-0.6) and c["change"] == pytest.approx(0.3)
    assert a["p_value"] == pytest.approx(binomtest(6, 6, 0.5).pvalue) == pytest.approx(2 * 0.5**6)
    assert b["p_value"] == 1.0 and c["p_value"] == pytest.approx(0.25)
    expected = holm([a["p_value"], b["p_value"], c["p_value"]])
    assert [r["p_holm"] for r in rows] == pytest.approx(expected)
    assert a["p_holm"] == pytest.approx(3 * 2 * 0.5**6) and not a["significant"]


def test_summarise_reports_overall_groups_examples_and_argmax(tmp_path):
    suite = load_suite(plain_file(tmp_path / "s.csv"), LABELS,
                       CheckConfig(text_column="sentence", label_column="gold", group_columns=("kind",),
                                   examples_per_group=1))
    gold = suite.gold  # [0, 0, 1, 1, 0, 1, 0]
    wrong_on_a = [1 - g if i < 3 else g for i, g in enumerate(gold)]
    check = summarise(suite, {"teacher": gold, "odd": wrong_on_a}, LABELS, "teacher",
                      CheckConfig(examples_per_group=1))
    assert check["threshold"] == "argmax"
    assert check["overall"]["teacher"] == {"n": 7, "accuracy": 1.0, "macro_f1": 1.0}
    assert check["overall"]["odd"]["accuracy"] == pytest.approx(4 / 7)
    grouping = check["groupings"][0]
    assert grouping["column"] == "kind"
    assert grouping["groups"] == [{"group": "a", "n": 3, "dropped": 0}, {"group": "b", "n": 2, "dropped": 1},
                                  {"group": "c", "n": 2, "dropped": 0}]
    assert [r["accuracy"] for r in grouping["accuracy"]["odd"]] == [0.0, 1.0, 1.0]
    worst = grouping["broke"]["odd"][0]
    assert (worst["group"], worst["teacher_only_correct"], worst["change"]) == ("a", 3, -1.0)
    assert worst["examples"] == [{"text": "love sunny coffee", "gold": "neutral", "teacher": "neutral",
                                  "model": "toxic"}]
    assert "examples" not in grouping["broke"]["odd"][1]  # only groups that fell get examples
    assert any("1 case(s) dropped" in note for note in check["notes"])


def test_overall_macro_f1_is_over_every_run_label_even_on_a_one_class_suite(tmp_path):
    """Before: macro-F1 averaged over the classes each model happened to predict: on an all-hateful suite the teacher
    scored 1.0 and a model with one mistake in ten 0.474."""
    write_csv(tmp_path / "s.csv", [(f"hate case {i}", "toxic") for i in range(10)])
    suite = load_suite(tmp_path / "s.csv", LABELS)
    one_mistake = [0] + [1] * 9
    check = summarise(suite, {"teacher": [1] * 10, "odd": one_mistake}, LABELS, "teacher")
    assert check["overall"]["teacher"]["macro_f1"] == pytest.approx(0.5)  # toxic 1.0, neutral (no cases) 0
    assert check["overall"]["odd"]["macro_f1"] == pytest.approx((0 + 2 * 9 / (2 * 9 + 1)) / 2)
    assert any("no case of 'neutral' in the suite" in note and "at most 0.50" in note for note in check["notes"])


def test_a_group_whose_every_case_was_dropped_keeps_an_empty_row(tmp_path):
    write_csv(tmp_path / "s.csv", [("love sunny", "neutral", "a"), ("hate trash", "toxic", "a"), (" ", "toxic", "z")],
              header=("text", "label", "kind"))
    suite = load_suite(tmp_path / "s.csv", LABELS, CheckConfig(group_columns=("kind",)))
    check = summarise(suite, {"teacher": [0, 1], "odd": [0, 0]}, LABELS, "teacher")
    check["name"] = "s"
    grouping = check["groupings"][0]
    assert grouping["groups"][-1] == {"group": "z", "n": 0, "dropped": 1}
    assert grouping["accuracy"]["odd"][-1] == {"group": "z", "n": 0, "correct": 0, "accuracy": None, "low": None,
                                               "high": None}
    assert accuracy_heatmap(check, grouping, tmp_path / "heat.png").stat().st_size > 0


# ---- suites and labels ---------------------------------------------------------------------------------------------
def test_hatecheck_format_is_detected_and_mapped_onto_the_binary_run(tmp_path):
    suite = load_suite(hatecheck_file(tmp_path / "hc.csv"), LABELS)
    assert suite.format == "hatecheck"
    assert (suite.text_column, suite.label_column) == ("test_case", "label_gold")
    assert suite.group_columns == ["functionality", "target_ident"]
    assert suite.label_mapping == {"hateful": "toxic", "non-hateful": "neutral"}
    assert suite.gold == [1, 1, 0, 0]
    assert "hateful → class 1 (toxic)" in suite.mapping_source
    assert "non-hateful → class 0 (neutral)" in suite.mapping_source


def test_packaged_mini_hatecheck_suite_reads_without_options():
    suite = load_suite(PACKAGED_SUITE, ["not-hate", "hate"])
    assert suite.format == "hatecheck" and len(suite.texts) >= 30 and suite.dropped_total == 0
    assert len(set(suite.groups["functionality"])) >= 6 and set(suite.gold) == {0, 1}


def test_plain_labels_map_to_themselves_or_by_class_id_or_by_label_map(tmp_path):
    ids = tmp_path / "ids.jsonl"
    ids.write_text("\n".join(json.dumps({"text": t, "label": y}) for t, y in [("a b", 0), ("c d", 1)]) + "\n")
    assert load_suite(ids, LABELS).label_mapping == {"0": "neutral", "1": "toxic"}
    parquet = tmp_path / "names.parquet"
    Dataset.from_dict({"text": ["a b", "c d"], "label": ["toxic", "neutral"]}).to_parquet(str(parquet))
    assert load_suite(parquet, LABELS).gold == [1, 0]
    suite = load_suite(hatecheck_file(tmp_path / "hc.csv"), LABELS,
                       label_map=parse_label_map("hateful=neutral,non-hateful=toxic"))
    assert suite.gold == [0, 0, 1, 1] and suite.mapping_source == "--label-map"


@pytest.mark.parametrize("label_map, phrase", [("hateful=toxic", "not mapped"), ("hateful=toxic,non-hateful=nice",
                                                                                    "lacks: nice")])
def test_unmapped_label_is_refused_before_any_model_runs(label_map, phrase, tiny_run, tmp_path, no_models, capsys):
    suite = hatecheck_file(tmp_path / "hc.csv")
    code = main(["check", "--run", str(tiny_run), "--suite", str(suite), "--label-map", label_map])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("distilora check: error: ")
    assert phrase in lines[0] and (phrase != "not mapped" or "non-hateful" in lines[0])
    assert not (tiny_run / "checks").exists()


def test_unknown_gold_labels_without_a_map_are_refused(tmp_path):
    write_csv(tmp_path / "s.csv", [("some text", "offensive"), ("other text", "neutral")])
    with pytest.raises(ValueError, match="offensive"):
        load_suite(tmp_path / "s.csv", LABELS)


def test_hatecheck_labels_need_a_map_on_a_three_class_run(tmp_path):
    with pytest.raises(ValueError, match="binary run"):
        load_suite(hatecheck_file(tmp_path / "hc.csv"), ["a", "b", "c"])


BAD_SUITES = {
    "empty file": ("s.csv", "", "empty"),
    "header only": ("s.csv", "text,label\n", "no cases"),
    "missing column": ("s.csv", "sentence,label\nhi,neutral\n", "no column 'text'"),
    "all blank": ("s.csv", "text,label\n  ,neutral\n,toxic\n", "blank"),
    "unknown format": ("s.txt", "text,label\nhi,neutral\n", "unknown suite format"),
    "not found": (None, "", "not found"),
    "bad group column": ("s.csv", "text,label\nhi,neutral\n", "no column 'topic'"),
}


@pytest.mark.parametrize("case", list(BAD_SUITES))
def test_bad_suites_are_one_line_errors_before_any_model(case, tiny_run, tmp_path, no_models, capsys):
    name, content, phrase = BAD_SUITES[case]
    path = tmp_path / (name or "missing.csv")
    if name:
        path.write_text(content)
    extra = ["--group-columns", "topic"] if case == "bad group column" else []
    code = main(["check", "--run", str(tiny_run), "--suite", str(path), *extra])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert phrase in lines[0]


def test_one_valued_group_column_and_no_groups_are_stated(tmp_path):
    write_csv(tmp_path / "s.csv", [("a", "neutral", "g"), ("b", "toxic", "g")], header=("text", "label", "topic"))
    one = load_suite(tmp_path / "s.csv", LABELS, CheckConfig(group_columns=("topic",)))
    assert any("'topic' has one value only" in note for note in one.notes)
    none = load_suite(tmp_path / "s.csv", LABELS)
    assert none.groups == {"all": ["all", "all"]} and any("no grouping columns" in n for n in none.notes)


def test_models_choice_always_keeps_the_teacher():
    models = {name: ModelResult(route=route) for name, route in (("teacher", "fine-tune"), ("odd", "distil"),
                                                                   ("lora", "lora"))}
    assert teacher_of(models) == "teacher"
    assert choose_models(models, ["odd"]) == ["teacher", "odd"]
    assert choose_models(models, None) == ["teacher", "odd", "lora"]
    with pytest.raises(ValueError, match="no model even"):
        choose_models(models, ["even"])


# ---- end to end: command, report, API ------------------------------------------------------------------------------
def test_check_end_to_end_writes_json_report_section_and_api(run_copy, tmp_path, capsys):
    suite = plain_file(tmp_path / "plain.csv")
    assert main(["check", "--run", str(run_copy), "--suite", str(suite), "--name", "mini", "--text-column",
                 "sentence", "--label-column", "gold", "--group-columns", "kind"]) == 0
    out = capsys.readouterr().out
    assert "accuracy by kind" in out and "What compression broke" in out
    check = json.loads((run_copy / "checks" / "mini.json").read_text())
    assert check["models"] == ["teacher", "odd", "even", "lora"] and check["teacher"] == "teacher"
    assert check["threshold"] == "argmax" and check["suite"]["dropped_blank_text"] == 1
    grouping = check["groupings"][0]
    assert [g["n"] for g in grouping["groups"]] == [3, 2, 2] and set(grouping["broke"]) == {"odd", "even", "lora"}
    for model, rows in grouping["accuracy"].items():
        for row in rows:
            assert row["low"] <= row["accuracy"] <= row["high"], model
    assert RunChecks(RunLayout(run_copy)).plot("mini", "kind").is_file()

    assert main(["check", "--run", str(run_copy), "--suite", str(PACKAGED_SUITE)]) == 0
    out = capsys.readouterr().out
    assert "hateful → toxic" in out and "class 1 (toxic)" in out

    with pytest.MonkeyPatch.context() as patch:  # the report is built from checks/*.json alone
        patch.setattr(backends, "backend_for", lambda *a, **k: pytest.fail("the report loaded a model"))
        assert main(["report", str(run_copy), "--resamples", "1000"]) == 0
    report = (run_copy / "report.md").read_text()
    assert "## Behavioural checks" in report
    assert "Check 'mini': accuracy by kind" in report and "Check 'mini_hatecheck': accuracy by functionality" in report
    assert "checks_mini_hatecheck_functionality.png" in report
    assert "Behavioural checks" in (run_copy / "report.html").read_text()

    from distilora.serve import create_app

    client = TestClient(create_app(run_copy), base_url="http://127.0.0.1")
    response = client.get("/api/v1/checks")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert [c["name"] for c in checks] == ["mini", "mini_hatecheck"]
    assert checks[0]["groupings"][0]["accuracy"] == grouping["accuracy"]
    assert str(tmp_path) not in response.text  # file names only, no local paths
    page = client.get("/").text
    assert 'id="checks"' in page and "Behavioural checks" in page


def test_api_checks_is_empty_without_checks(tiny_run):
    from distilora.serve import create_app

    assert not (tiny_run / "checks").exists()
    response = TestClient(create_app(tiny_run), base_url="http://127.0.0.1").get("/api/v1/checks")
    assert response.status_code == 200 and response.json() == {"checks": []}
