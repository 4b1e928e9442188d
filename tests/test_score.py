"""``distilora score`` / ``score_file``: every input row gives exactly one output row, scored like
``Classifier.predict`` or kept with the reason it could not be; resumable after an interruption; bad input is one line
and nothing written."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distilora.config import ScoreConfig
from distilora.inference import load_classifier
from distilora.scoring import InputError, Scorer, score_file
from distilora.scoring.scorer import EMPTY_TEXT, MISSING_TEXT, NOT_TEXT
from tests.conftest import synthetic_rows
from tests.keyword_model import long_text_with_keyword_at_end

PLAIN = ScoreConfig(backend="pytorch", precision="fp32", progress=False)


def write_texts_csv(path: Path, texts: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["comment_id", "text", "source"])
        writer.writerows([f"c{i:05d}", text, "forum" if i % 2 else "chat"] for i, text in enumerate(texts))
    return path


def texts(n: int, seed: int = 5) -> list[str]:
    return [text for text, _ in synthetic_rows(n, seed=seed)]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "distilora", "score", "--no-progress", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_a_csv_is_scored_row_for_row_like_predict_with_the_reasons_of_unscorable_rows(tiny_run, tmp_path):
    given = [*texts(40), "", "   ", "short, kind & sunny"]
    source = write_texts_csv(tmp_path / "in.csv", given)
    config = ScoreConfig(**{**PLAIN.__dict__, "id_column": "comment_id", "keep_columns": ("source",),
                            "chunk_rows": 16})
    summary = score_file(tiny_run, "odd", source, tmp_path / "out.parquet", config)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == len(given) == summary.rows
    assert table.column("row").to_pylist() == list(range(len(given)))
    assert table.column("comment_id").to_pylist() == [f"c{i:05d}" for i in range(len(given))]
    assert table.column_names[:3] == ["row", "comment_id", "source"]
    classifier = load_classifier(tiny_run, "odd")
    expected = classifier.predict([t for t in given if t.strip()])
    rows = [r for r in table.to_pylist() if r["reason"] is None]
    assert len(rows) == len(expected) == summary.scored
    for row, prediction in zip(rows, expected, strict=True):
        assert row["label"] == prediction.label and row["windows"] == prediction.windows
        assert row["score_toxic"] == pytest.approx(prediction.scores["toxic"], abs=1e-6)
        assert row["threshold"] == prediction.threshold is not None
        assert row["policy"] == classifier.decision["policy"] == "max-macro-f1"
    empty = table.filter(pa.compute.is_valid(table.column("reason"))).to_pylist()
    assert [(r["row"], r["reason"], r["score_toxic"], r["label"]) for r in empty] == \
        [(40, EMPTY_TEXT, None, None), (41, EMPTY_TEXT, None, None)]
    assert summary.unscorable == {EMPTY_TEXT: 2}
    assert summary.flagged == sum(p.label == "toxic" for p in expected)
    metadata = json.loads(pq.read_schema(tmp_path / "out.parquet").metadata[b"distilora"])
    assert metadata["model"]["model"] == "odd" and len(metadata["model"]["manifest_sha256"]) == 64
    assert metadata["backend"] == "backend pytorch fp32 (asked for)"
    assert not (tmp_path / "out.parquet.parts").exists()


def test_jsonl_rows_that_are_not_text_are_kept_with_their_reason(tiny_run, tmp_path):
    lines = ['{"id": 1, "text": "you are kind"}', '{"id": 2, "text": 42}', '{"id": 3}', "not json at all",
             "", '{"id": 5, "text": null}', '["a list"]', '{"id": 7, "text": "worthless scum"}']
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    config = ScoreConfig(**{**PLAIN.__dict__, "id_column": "id"})
    summary = score_file(tiny_run, "odd", source, tmp_path / "out.jsonl", config)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rows] == [None, NOT_TEXT, MISSING_TEXT, "invalid JSON", MISSING_TEXT,
                                           "not a JSON object", None]
    assert [r["id"] for r in rows] == [1, 2, 3, None, 5, None, 7]
    assert rows[0]["label"] in ("neutral", "toxic") and rows[1]["score_toxic"] is None
    assert summary.rows == 7 and summary.scored == 2
    meta = json.loads((tmp_path / "out.jsonl.meta.json").read_text())
    assert meta["model"]["model"] == "odd" and meta["labels"] == ["neutral", "toxic"]


def test_an_interrupted_job_resumes_without_redoing_finished_parts(tiny_run, tmp_path, monkeypatch):
    source = write_texts_csv(tmp_path / "in.csv", texts(100))
    config = ScoreConfig(**{**PLAIN.__dict__, "id_column": "comment_id", "chunk_rows": 20})
    calls = {"n": 0}
    original = Scorer.score_table

    def interrupted(self, table):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, table)

    monkeypatch.setattr(Scorer, "score_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        score_file(tiny_run, "odd", source, tmp_path / "out.csv", config)
    assert not (tmp_path / "out.csv").exists()
    assert sorted(p.name for p in (tmp_path / "out.csv.parts").iterdir()) == \
        ["manifest.json", "part-000000.csv", "part-000001.csv"]
    calls["n"] = 10
    summary = score_file(tiny_run, "odd", source, tmp_path / "out.csv", config)
    assert calls["n"] == 13 and summary.resumed_parts == 2 and summary.rows == 100
    assert summary.backend == "backend pytorch fp32 (chosen when this job started)"  # one runtime per output
    resumed = pd.read_csv(tmp_path / "out.csv")
    whole = score_file(tiny_run, "odd", source, tmp_path / "whole.csv", config)
    assert whole.resumed_parts == 0
    pd.testing.assert_frame_equal(resumed, pd.read_csv(tmp_path / "whole.csv"))
    assert resumed["comment_id"].tolist() == [f"c{i:05d}" for i in range(100)]
    again = score_file(tiny_run, "odd", source, tmp_path / "out.csv", config)  # complete: nothing to do
    assert again.rows == 100 and again.rows_this_run == 0


def manifest_parts(parts_dir: Path) -> list[dict]:
    """The parts a scoring job's manifest lists (none before its first manifest is written)."""
    manifest = parts_dir / "manifest.json"
    return json.loads(manifest.read_text())["parts"] if manifest.exists() else []


def test_kill_9_midway_then_the_same_command_completes_with_one_row_per_input_row(tiny_run, tmp_path):
    source = tmp_path / "in.parquet"
    rows = 20_000  # 200 parts: far more than a busy machine can write between two polls before the kill
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(rows)], "text": texts(rows)}), source)
    output = tmp_path / "out.parquet"
    args = ["--run", str(tiny_run), "--model", "odd", "--input", str(source), "--output", str(output),
            "--id-column", "id", "--chunk-rows", "100", "--backend", "pytorch", "--precision", "fp32"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen([sys.executable, "-m", "distilora", "score", "--no-progress", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "out.parquet.parts"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(manifest_parts(parts)) < 5:  # a part file lands before its entry
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = manifest_parts(parts)
    assert 5 <= len(finished) < rows // 100 and not output.exists()
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert f"{len(finished)} finished parts reused" in result.stderr
    ids = pq.read_table(output, columns=["id"]).column("id").to_pylist()
    assert len(ids) == rows and len(set(ids)) == rows and ids == [f"r{i}" for i in range(rows)]


def test_long_texts_are_scored_by_their_most_positive_window_unless_truncated(keyword_model, tmp_path):
    source = write_texts_csv(tmp_path / "in.csv", [long_text_with_keyword_at_end(), "you are kind"])
    run, model = keyword_model.parent, keyword_model.name
    windows = score_file(run, model, source, tmp_path / "windows.csv", PLAIN)
    truncate = score_file(run, model, source, tmp_path / "truncate.csv",
                          ScoreConfig(**{**PLAIN.__dict__, "long_text": "truncate"}))
    by_windows, by_truncation = pd.read_csv(tmp_path / "windows.csv"), pd.read_csv(tmp_path / "truncate.csv")
    assert by_windows["label"].tolist() == ["toxic", "neutral"] and by_windows["windows"][0] > 1
    assert by_truncation["label"].tolist() == ["neutral", "neutral"] and by_truncation["windows"][0] == 1
    assert (windows.flagged, truncate.flagged) == (1, 0)


def test_auto_picks_a_backend_whose_labels_agree_and_says_why(tiny_run, tmp_path):
    source = write_texts_csv(tmp_path / "in.csv", texts(200))
    summary = score_file(tiny_run, "odd", source, tmp_path / "out.csv", ScoreConfig(progress=False))
    assert summary.backend.startswith("backend pytorch fp32") or summary.backend.startswith("backend ")
    assert "agree with pytorch fp32" in summary.backend and "texts/s" in summary.backend
    assert summary.scored == 200


def test_the_scorer_takes_a_pandas_batch_and_gives_one_back(tiny_run):
    classifier = load_classifier(tiny_run, "odd")
    frame = pd.DataFrame({"text": ["love coffee", None, "scum vermin"], "user": ["a", "b", "c"]})
    scored = Scorer(classifier, keep_columns=["user"])(frame)
    assert isinstance(scored, pd.DataFrame) and scored["user"].tolist() == ["a", "b", "c"]
    assert scored["reason"].tolist()[1] == MISSING_TEXT
    assert scored["score_toxic"].isna().tolist() == [False, True, False]


@pytest.mark.parametrize("case", ["missing column", "unreadable", "empty", "other model's output", "bad format"])
def test_bad_input_is_one_line_and_nothing_is_written(tiny_run, tmp_path, case):
    source = write_texts_csv(tmp_path / "in.csv", texts(10))
    output = tmp_path / "out.parquet"
    args = ["--run", str(tiny_run), "--input", str(source), "--output", str(output), "--backend", "pytorch"]
    if case == "missing column":
        args += ["--text-column", "comment"]
    elif case == "unreadable":
        (tmp_path / "in.parquet").write_bytes(b"PAR1 this is not parquet")
        args[3] = str(tmp_path / "in.parquet")
    elif case == "empty":
        (tmp_path / "empty.csv").write_text("")
        args[3] = str(tmp_path / "empty.csv")
    elif case == "other model's output":
        assert run_cli(*args, "--model", "even").returncode == 0
        before = output.read_bytes()
    else:
        args[5] = str(tmp_path / "out.xlsx")
    result = run_cli(*args, "--model", "odd")
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("distilora score: error: "), result.stderr
    assert "Traceback" not in result.stderr
    expected_word = {"missing column": "no column 'comment'", "unreadable": "cannot be read",
                     "empty": "is empty", "other model's output": "not this job's output",
                     "bad format": "unknown format"}[case]
    assert expected_word in message[0]
    if case == "other model's output":
        assert output.read_bytes() == before
    else:
        assert not output.exists() and not (tmp_path / "out.parquet.parts").exists()


def test_an_input_error_is_a_value_error_for_python_callers(tiny_run, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        score_file(tiny_run, "odd", tmp_path / "missing.csv", tmp_path / "out.csv", PLAIN)
