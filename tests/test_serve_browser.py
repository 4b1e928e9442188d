"""The page of ``distilora serve`` in real headless Chromium (Playwright), against a real uvicorn server."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import all_kinds
import pytest
from playwright.sync_api import expect
from server_process import ServerProcess

from distilora.serve import ModelRegistry
from distilora.serve.schemas import ModelsResponse

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
MODELS = ["teacher", "odd", "even", "lora"]
LABELS = {"neutral", "toxic"}  # the tiny run's labels

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install chromium, or scripts/ensure_chromium.sh)"),
]


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    with ServerProcess(tiny_run, tmp_path_factory.mktemp("serve") / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url + "/")
    expect(page.locator("#model option")).to_have_count(5)
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def _bars(card) -> dict[str, float]:
    """A result card's probability bars: label → probability (from the bar's data and its visible percentage)."""
    bars = {}
    for bar in card.locator("li.bar").all():
        label = bar.get_attribute("data-label")
        shown = float(bar.locator(".bar-value").inner_text().rstrip("%")) / 100
        assert float(bar.get_attribute("data-score")) == pytest.approx(shown, abs=0.0006)
        bars[label] = shown
    return bars


def test_classify_one_text_then_compare_all_four_models(page, tmp_path, tiny_run):
    options = page.locator("#model option").all_inner_texts()
    assert [o.split()[0] for o in options[:4]] == MODELS and options[4].startswith("compare all")

    page.fill("#text", "you are worthless trash")
    page.select_option("#model", "teacher")
    page.click("#classify")
    card = page.locator("#answer .result")
    card.wait_for()
    assert card.count() == 1
    assert card.get_attribute("data-model") == "teacher"
    label = card.locator(".prediction .label").inner_text()
    assert label in LABELS
    bars = _bars(card)
    assert set(bars) == LABELS
    assert math.fsum(bars.values()) == pytest.approx(1.0, abs=0.002)
    # The label is the tuned threshold's call on the calibrated score, and the card says so.
    threshold = json.loads((tiny_run / "results.json").read_text())["models"]["teacher"]["calibration"]["threshold"]
    toxic = float(card.locator('li.bar[data-label="toxic"]').get_attribute("data-score"))
    assert (label == "toxic") == (toxic >= threshold)
    assert f"toxic if P ≥ {threshold:.3f}" in card.locator(".decision").inner_text()
    meta = card.locator(".meta.time").inner_text().replace("\u00a0", " ")
    assert meta.split()[1] == "ms" and meta.endswith("· pytorch fp32")  # what computed the answer
    assert page.locator("#run-info").inner_text().endswith("· runs on pytorch fp32.")
    assert "test F1" in card.inner_text().replace("\u00a0", " ")
    page.screenshot(path=str(tmp_path / "single.png"), full_page=True)

    page.select_option("#model", "__compare__")
    page.click("#classify")
    expect(page.locator("#answer .compare .result")).to_have_count(4)
    cards = page.locator("#answer .compare .result")
    assert [c.get_attribute("data-model") for c in cards.all()] == MODELS
    labels = [c.locator(".prediction .label").inner_text() for c in cards.all()]
    assert set(labels) <= LABELS
    for c in cards.all():
        assert math.fsum(_bars(c).values()) == pytest.approx(1.0, abs=0.002)
    summary = page.locator("#answer .agreement").inner_text()
    assert ("agree" in summary) and (("disagree" in summary) == (len(set(labels)) > 1))
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    assert (tmp_path / "compare.png").stat().st_size > 10_000


def test_compare_marks_disagreeing_models_in_text(page):
    """With answers that differ, the summary and the odd one out say so in words, not only colour."""
    def fake(route):
        model = json.loads(route.request.post_data)["model"]
        label = "toxic" if model == "even" else "neutral"
        scores = {"neutral": 0.2, "toxic": 0.8} if label == "toxic" else {"neutral": 0.9, "toxic": 0.1}
        route.fulfill(json={"model": model, "results": [{"label": label, "scores": scores, "truncated": False}],
                            "elapsed_ms": 1.5})

    page.route("**/api/v1/classify", fake)
    page.fill("#text", "anything")
    page.select_option("#model", "__compare__")
    page.click("#classify")
    expect(page.locator("#answer .compare .result")).to_have_count(4)
    assert "disagree" in page.locator("#answer .agreement").inner_text()
    marked = page.locator("#answer .result.disagrees")
    assert marked.count() == 1
    assert marked.get_attribute("data-model") == "even"
    assert "disagrees (majority: neutral)" in marked.locator(".badge").inner_text()


def test_example_sentence_fills_the_text_area_and_errors_are_shown(page):
    example = page.locator("button.example").first
    example.click()
    assert page.input_value("#text") == example.inner_text()
    page.fill("#text", "   ")
    page.click("#classify")
    assert "type a text first" in page.locator("#single-error").inner_text()
    page.fill("#text", "x" * 10_000 + " more")  # the text area stops at 10,000 characters
    assert len(page.input_value("#text")) == 10_000


def test_batch_lines_and_csv_upload_give_a_table_and_a_csv_download(page, tmp_path):
    lines = ["love the garden", "you are vermin", "meh, whatever"]
    page.fill("#batch-text", "\n".join(lines) + "\n\n")
    page.select_option("#batch-model", "odd")
    page.click("#batch-run")
    expect(page.locator("#batch-table tbody tr")).to_have_count(3)
    rows = page.locator("#batch-table tbody tr")
    assert [r.locator("td.text").inner_text() for r in rows.all()] == lines
    assert "3 texts classified by odd" in page.locator("#batch-status").inner_text()

    upload = tmp_path / "texts.csv"
    upload.write_text('id,text\n1,"hello, friend"\n2,"she said ""hi"""\n3,=cmd\n4,\n', encoding="utf-8")
    page.set_input_files("#batch-file", str(upload))
    page.select_option("#batch-model", "__compare__")
    page.click("#batch-run")
    expect(page.locator("#batch-status")).to_contain_text("3 texts classified by teacher, odd, even, lora")
    expect(page.locator("#batch-table tbody tr")).to_have_count(3)
    texts = [r.locator("td.text").inner_text() for r in page.locator("#batch-table tbody tr").all()]
    assert texts == ["hello, friend", 'she said "hi"', "=cmd"]

    with page.expect_download() as info:
        page.click("#batch-download")
    saved = tmp_path / "results.csv"
    info.value.save_as(saved)
    table = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert [r["text"] for r in table] == ["hello, friend", 'she said "hi"', "'=cmd"]  # formula defused
    for row in table:
        for model in MODELS:
            assert row[f"{model}_label"] in LABELS
            assert math.fsum(float(row[f"{model}_p_{label}"]) for label in LABELS) == pytest.approx(1.0, abs=1e-4)
        assert row["agree"] in {"yes", "no"}


def test_about_panel_shows_each_models_trade_off(page, tiny_run):
    results = json.loads((tiny_run / "results.json").read_text())
    rows = page.locator("#about-table tbody tr")
    assert rows.count() == 4
    for row, name in zip(rows.all(), MODELS, strict=True):
        cells = [row.locator("th").inner_text(), *row.locator("td").all_inner_texts()]
        assert cells[0].split()[0] == name
        test = results["models"][name]["metrics"]["test"]
        assert cells[5] == f"{test['macro_f1']:.3f}" and cells[6] == f"{test['accuracy']:.3f}"
        assert cells[7] == f"toxic if P ≥ {results['models'][name]['calibration']['threshold']:.3f}"
        assert "MB" in cells[4]
    assert rows.nth(1).locator("td").nth(1).inner_text() == "1, 3 (2)"


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 900)])
def test_page_fits_the_screen_width(browser, server, tmp_path, width, height):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(server.url + "/")
    expect(page.locator("#model option")).to_have_count(5)
    page.fill("#text", "you are worthless trash")
    page.select_option("#model", "__compare__")
    page.click("#classify")
    expect(page.locator("#answer .compare .result")).to_have_count(4)
    # Nothing but the tables' own scroll boxes may be wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(tmp_path / f"page-{width}.png"), full_page=True)
    context.close()


def _all_kinds_models(tmp_path: Path) -> dict:
    """What GET /api/v1/models answers for a run of all 16 models (every kind, one collapsed), schema-checked."""
    registry = ModelRegistry(tmp_path, {n: all_kinds.FakeClassifier() for n in all_kinds.MODELS},
                             all_kinds.results_without_predictions())
    return ModelsResponse.model_validate(registry.describe_all()).model_dump(mode="json")


def test_sixteen_models_are_grouped_by_kind_and_fit_a_1280_px_window(browser, server, tmp_path):
    body = _all_kinds_models(tmp_path)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route("**/api/v1/models", lambda route: route.fulfill(json=body))
    page.goto(server.url + "/")
    expect(page.locator("#model option")).to_have_count(len(all_kinds.MODELS) + 1)
    groups = page.eval_on_selector_all(
        "#model optgroup", "gs => gs.map(g => [g.label, [...g.querySelectorAll('option')].map(o => o.value)])")
    kinds = {"Teacher": "fine-tune", "Distilled students": "distil", "LoRA": "lora",
             "Hybrids (LoRA + distillation)": "hybrid", "Baselines": "baseline"}
    assert [label for label, _ in groups] == list(kinds)
    for label, names in groups:
        assert names == [n for n, spec in all_kinds.MODELS.items() if spec[0] == kinds[label]], label
    assert page.locator("#batch-model optgroup").count() == len(kinds)
    flagged = page.locator("#model option", has_text="⚠ collapsed")
    assert flagged.count() == 1 and flagged.get_attribute("value") == all_kinds.COLLAPSED
    assert page.input_value("#model") == body["default_model"] == "odd"

    rows = page.locator("#about-table tbody tr")
    assert rows.count() == len(all_kinds.MODELS)
    collapsed_row = page.locator(f'#about-table tr[data-model="{all_kinds.COLLAPSED}"]')
    assert "⚠ collapsed" in collapsed_row.locator("th").inner_text()
    assert page.locator("#about-table .flag").count() == 1
    assert all_kinds.description("odd-lora") in page.locator('#about-table tr[data-model="odd-lora"] th').inner_text()
    assert page.locator('#about-table tr[data-model="tfidf"] td').nth(1).inner_text() == "none"
    # The page never scrolls sideways, and the About table fits its own box (no inner scroll either).
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    wrap = page.evaluate("(() => { const w = document.querySelector('#about .table-wrap');"
                         " return [w.scrollWidth, w.clientWidth]; })()")
    assert wrap[0] <= wrap[1], wrap
    page.screenshot(path=str(tmp_path / "all-kinds-1280.png"), full_page=True)
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def multi_label_server(tmp_path_factory):
    """A uvicorn server (in a thread) of two multi-label models: ``multi`` (insult on) and ``quiet`` (none on)."""
    import threading
    import time

    import uvicorn
    from server_process import LOOPBACK, free_port

    from distilora.inference import load_classifier
    from distilora.serve import create_app
    from tests.multi_label_model import ALL_OFF, LABELS, make_served_model

    run = tmp_path_factory.mktemp("multi-label-page")
    models = {"multi": make_served_model(run / "multi"), "quiet": make_served_model(run / "quiet", ALL_OFF)}
    registry = ModelRegistry(run, {name: load_classifier(path) for name, path in models.items()},
                             {"labels": list(LABELS), "models": {}})
    port = free_port()
    config = uvicorn.Config(create_app(registry=registry), host=LOOPBACK, port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the multi-label server did not start"
    yield f"http://{LOOPBACK}:{port}"
    server.should_exit = True
    thread.join(10)


def test_a_multi_label_model_shows_every_labels_bar_and_a_chip_per_label_that_is_on(browser, multi_label_server,
                                                                                   tmp_path):
    on = 1 / (1 + math.exp(-3.0))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(multi_label_server + "/")
    expect(page.locator("#model option")).to_have_count(3)
    page.fill("#text", "you absolute clown")
    page.select_option("#model", "multi")
    page.click("#classify")
    card = page.locator("#answer .result")
    card.wait_for()
    assert _bars(card) == pytest.approx({"insult": on, "threat": 1 - on, "obscene": 1 - on}, abs=0.0006)
    bars = card.locator("li.bar")
    assert [bar.get_attribute("data-label") for bar in bars.all()] == ["insult", "threat", "obscene"]
    assert [bar.get_attribute("data-on") for bar in bars.all()] == ["true", "false", "false"]
    assert bars.first.locator(".bar-label").inner_text() == "insult ✓"
    assert card.locator(".track .threshold").count() == 3
    assert card.locator(".prediction .chip").all_inner_texts() == ["insult"]
    assert "each label if P ≥ 0.500" in card.locator(".decision").inner_text()
    page.screenshot(path=str(tmp_path / "multi-label.png"), full_page=True)

    page.select_option("#model", "quiet")
    page.click("#classify")
    expect(page.locator("#answer .result .prediction .chip")).to_have_text(["none"])
    expect(page.locator("#answer .result li.bar")).to_have_count(3)

    page.select_option("#model", "__compare__")
    page.click("#classify")
    expect(page.locator("#answer .agreement")).to_have_text(
        "⚠ The models disagree: multi says insult; quiet says none.")

    page.fill("#batch-text", "first text\nsecond text")
    page.select_option("#batch-model", "multi")
    page.click("#batch-run")
    expect(page.locator("#batch-table tbody tr")).to_have_count(2)
    assert page.locator("#batch-table thead th").all_inner_texts()[2] == "labels"
    assert page.locator("#batch-table tbody tr").first.locator("td").nth(2).inner_text() == "insult"
    decision = page.locator('#about-table tr[data-model="multi"] td[data-label="Decision"]')
    assert decision.inner_text() == "each label if P ≥ 0.500"
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
