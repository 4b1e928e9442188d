"""Bias metrics of ``distilora check``: subgroup / BPSN / BNSP AUC per identity, the power mean, the final bias
metric and the paired comparison against the teacher."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_csv
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score

from distilora.checks.bias import BiasSettings, CaseResamples, measure_bias, power_mean
from distilora.checks.run import bias_block
from distilora.checks.suite import load_suite
from distilora.cli import main
from distilora.config import CheckConfig
from distilora.inference import registry as backends

LABELS = ["neutral", "toxic"]  # the tiny run's labels; HateCheck's hateful maps onto toxic (class 1)
PACKAGED_SUITE = Path(__file__).resolve().parents[1] / "src/distilora/checks/suites/mini_hatecheck.csv"
HEADER = ("case_id", "functionality", "test_case", "label_gold", "target_ident", "direction")


def identity_suite(path: Path, one_class_identity: bool = False) -> Path:
    """Groups A, B and C, 8 hateful and 8 non-hateful cases each (``one_class_identity``: and 3 hateful cases of D)."""
    rows = []
    for group in "ABC":
        for i in range(8):
            rows.append((len(rows), "derog", f"group {group} hateful text {i}", "hateful", group, "general"))
            rows.append((len(rows), "neutral", f"group {group} friendly text {i}", "non-hateful", group, "general"))
    if one_class_identity:
        rows += [(len(rows), "derog", f"group D hateful text {i}", "hateful", "D", "general") for i in range(3)]
    write_csv(path, rows, header=HEADER)
    return path


def fair_score(text: str) -> float:
    """Hateful texts in [0.5, 0.85], friendly ones in [0.1, 0.45]: every AUC is 1."""
    step = 0.05 * int(text.rsplit(" ", 1)[1])
    return (0.5 if "hateful" in text else 0.1) + step


def group_a_score(text: str) -> float:
    """The fair score, plus 0.45 for every text mentioning group A."""
    return fair_score(text) + (0.45 if "group A" in text else 0.0)


def scores_of(suite, *scorers) -> dict[str, list[float]]:
    return {name: [scorer(t) for t in suite.texts] for name, scorer in zip(("teacher", "biased"), scorers,
                                                                              strict=True)}


def auc_row(model_bias: dict, identity: str, metric: str) -> dict:
    return next(a for a in model_bias["aucs"] if a["identity"] == identity and a["metric"] == metric)


def test_a_model_scoring_group_a_higher_loses_bpsn_for_a_as_a_hand_computation_says(tmp_path):
    suite = load_suite(identity_suite(tmp_path / "s.csv"), LABELS)
    assert suite.identity_column == "target_ident"
    scores = scores_of(suite, fair_score, group_a_score)
    bias, notes = bias_block(suite, scores, 1, LABELS, "teacher", CheckConfig(bias_resamples=300))
    assert notes == [] and bias["positive_label"] == "toxic"
    biased, teacher = bias["models"]["biased"], bias["models"]["teacher"]
    # by hand: BPSN for A = A's non-hateful cases and the other groups' hateful cases
    texts, gold = suite.texts, np.asarray(suite.gold)
    picked = [i for i, t in enumerate(texts) if ("group A" in t) != (gold[i] == 1)]
    hand = roc_auc_score(gold[picked], [group_a_score(texts[i]) for i in picked])
    bpsn_a = auc_row(biased, "A", "bpsn")
    assert bpsn_a["auc"] == pytest.approx(hand) and hand < 0.5
    assert bpsn_a["n"] == len(picked) == 8 + 16 and bpsn_a["low"] <= bpsn_a["auc"] <= bpsn_a["high"]
    assert auc_row(biased, "A", "subgroup")["auc"] == 1.0 and auc_row(biased, "B", "bpsn")["auc"] == 1.0
    assert all(a["auc"] == 1.0 for a in teacher["aucs"])
    # against the teacher, A's BPSN is the largest fall, and the paired interval excludes 0
    worst = bias["changes"]["biased"]["rows"][0]
    assert (worst["identity"], worst["metric"]) == ("A", "bpsn")
    assert worst["change"] == pytest.approx(hand - 1.0) and worst["high"] < 0 and worst["p_value"] < 0.01


def test_the_final_bias_metric_is_the_weighted_overall_auc_and_power_means(tmp_path):
    suite = load_suite(identity_suite(tmp_path / "s.csv"), LABELS)
    bias, _ = bias_block(suite, scores_of(suite, fair_score, group_a_score), 1, LABELS, "teacher",
                         CheckConfig(bias_resamples=200))
    model = bias["models"]["biased"]
    overall = roc_auc_score(suite.gold, [group_a_score(t) for t in suite.texts])
    assert model["overall"]["auc"] == pytest.approx(overall)
    means = {}
    for metric in ("subgroup", "bpsn", "bnsp"):
        aucs = np.array([auc_row(model, g, metric)["auc"] for g in "ABC"])
        means[metric] = np.mean(aucs ** -5.0) ** (1 / -5.0)
        assert model["power_means"][metric] == pytest.approx(means[metric])
    assert model["final"]["estimate"] == pytest.approx(0.25 * (overall + sum(means.values())))
    assert model["final"]["low"] <= model["final"]["estimate"] <= model["final"]["high"]


def test_the_power_mean_follows_its_formula():
    values = [0.9, 0.8, 0.6]
    by_hand = ((0.9 ** -5 + 0.8 ** -5 + 0.6 ** -5) / 3) ** (1 / -5)
    assert power_mean(values, -5) == pytest.approx(by_hand)
    assert min(values) < power_mean(values, -5) < np.mean(values)  # p = -5 leans towards the worst identity
    assert power_mean(values, 1) == pytest.approx(np.mean(values))
    assert power_mean([0.7, 0.7], -5) == pytest.approx(0.7)


def test_the_resampled_auc_with_every_case_drawn_once_is_sklearns_ties_included():
    rng = np.random.default_rng(3)
    positive = rng.random(40) < 0.4
    scores = np.round(rng.random(40), 1)  # ties
    draws = CaseResamples(positive, resamples=1, seed=0)
    draws.weights = np.ones((1, 40))
    mask = rng.random(40) < 0.7
    assert draws.aucs(scores, mask)[0] == pytest.approx(roc_auc_score(positive[mask], scores[mask]))


def test_an_identity_with_one_class_is_skipped_for_those_metrics_and_named(tmp_path):
    suite = load_suite(identity_suite(tmp_path / "s.csv", one_class_identity=True), LABELS)
    bias, notes = bias_block(suite, scores_of(suite, fair_score, group_a_score), 1, LABELS, "teacher",
                             CheckConfig(bias_resamples=100))
    assert {(s["identity"], s["metric"]) for s in bias["skipped"]} == {("D", "subgroup"), ("D", "bpsn")}
    assert len(notes) == 1 and "'D'" in notes[0] and "subgroup" in notes[0] and "no neutral case" in notes[0]
    model = bias["models"]["biased"]
    assert auc_row(model, "D", "bnsp")["n"] == 3 + 24  # D's hateful cases and the others' non-hateful ones
    assert not any(a["identity"] == "D" and a["metric"] != "bnsp" for a in model["aucs"])
    assert all(np.isfinite(v) for v in model["power_means"].values()) and np.isfinite(model["final"]["estimate"])


def test_cases_mentioning_no_identity_are_background_only():
    identities = ["A", "A", "(none)", "(none)", "B", "B"]
    report = measure_bias(identities, [True, False, True, False, True, False], {"m": [0.9, 0.2, 0.8, 0.1, 0.7, 0.3]},
                          None, BiasSettings("target", ("neutral", "toxic"), resamples=50), background="(none)")
    assert [i.identity for i in report.identities] == ["A", "B"]
    assert next(a for a in report.models["m"].aucs if a.identity == "A" and a.metric == "bpsn").n == 1 + 2
    assert report.changes == {}


def test_a_suite_without_the_default_identity_column_has_no_bias_metrics_and_says_so(tmp_path):
    write_csv(tmp_path / "s.csv", [("a", "neutral", "g"), ("b", "toxic", "g")], header=("text", "label", "topic"))
    suite = load_suite(tmp_path / "s.csv", LABELS)
    assert suite.identity_column is None and suite.identities is None
    assert sum("no identity column" in note and "--identity-column" in note for note in suite.notes) == 1
    assert bias_block(suite, {"m": [0.1, 0.9]}, 1, LABELS, None, CheckConfig()) == (None, [])


def test_a_named_identity_column_picks_that_column(tmp_path):
    write_csv(tmp_path / "s.csv", [("a", "neutral", "x"), ("b", "toxic", "y")], header=("text", "label", "topic"))
    suite = load_suite(tmp_path / "s.csv", LABELS, CheckConfig(identity_column="topic"))
    assert suite.identity_column == "topic" and suite.identities == ["x", "y"]


def test_a_three_class_run_gets_no_bias_metrics_and_a_note(tmp_path):
    suite = load_suite(identity_suite(tmp_path / "s.csv"), ["a", "b", "c"], label_map={"hateful": "c",
                                                                                       "non-hateful": "a"})
    bias, notes = bias_block(suite, {}, None, ["a", "b", "c"], None, CheckConfig())
    assert bias is None and len(notes) == 1 and "binary run" in notes[0]


def test_an_identity_column_the_suite_lacks_is_one_line_error_before_any_model(tiny_run, monkeypatch, capsys):
    monkeypatch.setattr(backends, "backend_for", lambda *a, **k: pytest.fail("a model was loaded"))
    code = main(["check", "--run", str(tiny_run), "--suite", str(PACKAGED_SUITE), "--identity-column", "religion"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("distilora check: error: ")
    assert "--identity-column 'religion'" in lines[0] and "target_ident" in lines[0]  # the columns it has
    assert not (tiny_run / "checks").exists()


def test_bias_metrics_of_the_mini_suite_reach_the_json_report_and_api(tiny_run, tmp_path, capsys):
    run = Path(shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns(".work", ".cache")))
    assert main(["check", "--run", str(run), "--suite", str(PACKAGED_SUITE)]) == 0
    out = capsys.readouterr().out
    assert "bias metrics by target_ident" in out and "which identity got worse" in out
    bias = json.loads((run / "checks" / "mini_hatecheck.json").read_text())["bias"]
    assert [i["identity"] for i in bias["identities"]] == ["women", "immigrants", "gay people"]
    assert list(bias["models"]) == ["teacher", "odd", "even", "lora"] and set(bias["changes"]) == {"odd", "even",
                                                                                                   "lora"}
    for model in bias["models"].values():
        assert model["overall"]["n"] == 42 and len(model["aucs"]) == 9 and not bias["skipped"]
        assert {a["n"] for a in model["aucs"] if a["metric"] == "subgroup"} == {14}
        assert all(0 <= a["auc"] <= 1 and a["low"] <= a["auc"] <= a["high"] for a in model["aucs"])
        assert 0 <= model["final"]["estimate"] <= 1
    assert main(["report", str(run), "--resamples", "1000"]) == 0
    report = (run / "report.md").read_text()
    assert "Check 'mini_hatecheck': bias metrics by target_ident" in report and "final bias metric" in report

    from distilora.serve import create_app

    client = TestClient(create_app(run), base_url="http://127.0.0.1")
    served = client.get("/api/v1/checks").json()["checks"][0]["bias"]
    assert served == bias
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "BiasReport" in schema and "bias" in schema["CheckEntry"]["properties"]


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_the_pages_checks_panel_shows_the_bias_tables(tiny_run, tmp_path):
    from playwright.sync_api import expect, sync_playwright
    from server_process import ServerProcess

    run = Path(shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns(".work", ".cache")))
    assert main(["check", "--run", str(run), "--suite", str(PACKAGED_SUITE)]) == 0
    errors: list[str] = []
    with ServerProcess(run, tmp_path / "server.log") as server, sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                              args=["--no-sandbox", "--disable-gpu"])
        page = chromium.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url + "/")
        table = page.locator('[data-check="mini_hatecheck"] .bias-table')
        expect(table.locator("tbody tr")).to_have_count(1 + 9 + 3 + 1)  # overall, 3 identities × 3, power means, final
        assert "Bias metrics by target_ident" in table.locator("caption").inner_text()
        changes = page.locator('[data-check="mini_hatecheck"] .bias-change-table')
        expect(changes.locator("tr.bias-final-row")).to_have_count(3)
        chromium.close()
    assert errors == []


def test_a_check_whose_bias_block_does_not_fit_the_schema_is_left_out_and_logged(tiny_run, tmp_path, caplog):
    from distilora.serve import create_app

    run = Path(shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns(".work", ".cache")))
    (run / "checks").mkdir()
    (run / "checks" / "broken.json").write_text(json.dumps({"name": "broken", "bias": {"power": "minus five"}}))
    (run / "checks" / "plain.json").write_text(json.dumps({"name": "plain", "bias": None}))
    with caplog.at_level("WARNING", logger="distilora.serve.app"):
        client = TestClient(create_app(run), base_url="http://127.0.0.1")
    assert [c["name"] for c in client.get("/api/v1/checks").json()["checks"]] == ["plain"]
    assert any("checks/broken.json" in r.getMessage() and "left out" in r.getMessage() for r in caplog.records)
