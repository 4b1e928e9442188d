"""Scoring with a multi-label model: a score and a 0/1 flag per label and the decided set, in every output format,
with column names that are plain, unique identifiers; what was flagged is counted per label."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distilora.artifacts import write_manifest
from distilora.config import ScoreConfig
from distilora.inference import load_classifier
from distilora.scoring import InputFile, ScoreJob, Scorer, backends, score_file
from distilora.scoring.job import METADATA_KEY
from distilora.scoring.scorer import EMPTY_TEXT, safe_column_names
from tests.multi_label_model import LABELS, make_multi_label_model

TEXTS = ["you are a clown", "the garden is sunny", "I will hurt you, idiot", "damn this coffee", "kind words",
         "what a moron"]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return load_classifier(make_multi_label_model(tmp_path_factory.mktemp("multi-label-model")), verify=False)


def test_each_label_gets_a_score_a_0_1_flag_and_the_decided_set_lists_the_flagged_labels(classifier):
    table = pa.table({"id": [f"c{i}" for i in range(len(TEXTS) + 1)], "text": [*TEXTS, "  "]})
    scored = Scorer(classifier, keep_columns=["id"])(table)
    assert scored.column_names == ["id", "score_insult", "score_threat", "score_obscene", "flag_insult",
                                   "flag_threat", "flag_obscene", "labels", "windows", "reason"]
    probs = classifier.predict_proba(TEXTS)
    scores = np.column_stack([scored.column(f"score_{label}").to_numpy(zero_copy_only=False)[:-1]
                              for label in LABELS])
    np.testing.assert_allclose(scores, probs, rtol=1e-6)
    flags = np.column_stack([scored.column(f"flag_{label}").to_pylist()[:-1] for label in LABELS])
    np.testing.assert_array_equal(flags, (probs >= 0.5).astype(int))
    assert flags[:, 0].all() and not flags[:, 1].any()  # the model's head: insult always on, threat never
    decided = scored.column("labels").to_pylist()
    assert decided[:-1] == [[label for label, on in zip(LABELS, row, strict=True) if on] for row in flags]
    assert scored.column("flag_insult").type == pa.int8()
    assert decided[-1] is None and scored.column("flag_insult").to_pylist()[-1] is None
    assert scored.column("reason").to_pylist() == [None] * len(TEXTS) + [EMPTY_TEXT]
    assert Scorer(classifier).positive_label is None


def test_label_names_become_identifiers_unique_among_the_output_columns():
    names = safe_column_names(["identity hate", "identity-hate", "threat", "!!"], "score_",
                              ["score_threat", "labels"])
    assert names == {"identity hate": "score_identity_hate", "identity-hate": "score_identity_hate_2",
                     "threat": "score_threat_2", "!!": "score_label"}


def test_a_kept_column_named_like_a_score_column_is_kept_and_the_score_goes_beside_it(tmp_path):
    model = load_classifier(make_multi_label_model(tmp_path / "m", labels=("identity hate", "threat", "labels")),
                            verify=False)
    table = pa.table({"text": TEXTS[:2], "score_threat": ["gold a", "gold b"]})
    scored = Scorer(model, keep_columns=["score_threat"])(table)
    assert scored.column_names[:7] == ["score_threat", "score_identity_hate", "score_threat_2", "score_labels",
                                       "flag_identity_hate", "flag_threat", "flag_labels"]
    assert scored.column("score_threat").to_pylist() == ["gold a", "gold b"]


def _score(classifier, source: Path, output: Path):
    job = ScoreJob(InputFile(source, "text", ["id", "text"]), output, {"model": "test"}, chunk_rows=4,
                   progress=False)
    return job.run(lambda probe, runtime: (Scorer(classifier, keep_columns=["id"]), "pytorch fp32", {}))


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_a_scored_file_holds_the_decided_set_in_every_format_and_its_metadata_names_thresholds_and_columns(
        classifier, tmp_path, suffix):
    source = tmp_path / "in.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["id", "text"], *([f"c{i}", t] for i, t in enumerate([*TEXTS, ""]))])
    output = tmp_path / f"out{suffix}"
    summary = _score(classifier, source, output)
    expected = Scorer(classifier)(pa.table({"text": [*TEXTS, ""]})).column("labels").to_pylist()
    if suffix == ".parquet":
        table = pq.read_table(output)
        decided = table.column("labels").to_pylist()
        metadata = json.loads(table.schema.metadata[METADATA_KEY.encode()])
    elif suffix == ".csv":
        with output.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        decided = [json.loads(row["labels"]) if row["labels"] else None for row in rows]
        assert rows[0]["flag_insult"] == "1" and rows[0]["flag_threat"] == "0"
        metadata = json.loads(output.with_name(output.name + ".meta.json").read_text())
    else:
        decided = [json.loads(line)["labels"] for line in output.read_text().splitlines()]
        metadata = json.loads(output.with_name(output.name + ".meta.json").read_text())
    assert decided == expected and decided[-1] is None
    assert metadata["multi_label"] is True
    assert metadata["thresholds"] == dict.fromkeys(LABELS, 0.5)
    assert metadata["flag_columns"] == {label: f"flag_{label}" for label in LABELS}
    assert metadata["positive_label"] is None
    counts = {label: sum(label in row for row in expected if row) for label in LABELS}
    assert summary.flagged_labels == counts and counts["insult"] == len(TEXTS) and counts["threat"] == 0
    assert summary.flagged == len(TEXTS)
    assert f"{len(TEXTS)} with at least one label on" in summary.describe()
    assert f"insult {len(TEXTS)}, threat 0, obscene {counts['obscene']}" in summary.describe()


def test_runtimes_are_compared_on_the_decided_set_of_each_text(classifier):
    decided, _ = backends._time(classifier, TEXTS)
    assert decided == [tuple(prediction.labels) for prediction in classifier.predict(TEXTS)]
    assert ("insult",) in decided or ("insult", "obscene") in decided


@pytest.fixture(scope="module")
def model_run(tmp_path_factory):
    """A run directory holding the multi-label model as ``tiny`` (checksummed, as a run's models are)."""
    run = tmp_path_factory.mktemp("multi-label-run")
    write_manifest(make_multi_label_model(run / "tiny"), {"model": "tiny"})
    return run


def test_score_file_and_the_ray_scorer_write_the_same_multi_label_columns(model_run, tmp_path):
    from distilora.integrations.ray import RayScorer

    given = [*TEXTS * 5, ""]
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(len(given))], "text": given}), source)
    config = ScoreConfig(backend="pytorch", precision="fp32", id_column="id", chunk_rows=8, progress=False)
    summary = score_file(model_run, "tiny", source, tmp_path / "out.parquet", config)
    scored = pq.read_table(tmp_path / "out.parquet")
    assert scored.column_names[:2] == ["row", "id"] and "labels" in scored.column_names
    assert summary.flagged == len(given) - 1 and summary.flagged_labels["insult"] == len(given) - 1
    by_ray = RayScorer(str(model_run), "tiny", keep_columns=["id"])(pq.read_table(source))
    assert by_ray.column_names == scored.column_names[1:]
    assert by_ray.column("labels").to_pylist() == scored.column("labels").to_pylist()
    assert by_ray.column("flag_obscene").to_pylist() == scored.column("flag_obscene").to_pylist()


def test_the_ray_engine_writes_what_the_local_engine_writes_for_a_multi_label_model(model_run, tmp_path):
    ray = pytest.importorskip("ray")
    from distilora.integrations.ray import score_file_with_ray

    given = [f"{text} {i}" for i in range(60) for text in TEXTS[:5]] + [""]
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(len(given))], "text": given}), source)
    config = ScoreConfig(backend="pytorch", precision="fp32", id_column="id", chunk_rows=100, progress=False,
                         workers=1)
    local = score_file(model_run, "tiny", source, tmp_path / "local.parquet", config)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        distributed = score_file_with_ray(model_run, "tiny", source, tmp_path / "ray.parquet", config)
    finally:
        ray.shutdown()
    ours, theirs = pq.read_table(tmp_path / "local.parquet"), pq.read_table(tmp_path / "ray.parquet")
    assert ours.schema.remove_metadata() == theirs.schema.remove_metadata()
    assert theirs.column("labels").to_pylist() == ours.column("labels").to_pylist()
    assert distributed.flagged_labels == local.flagged_labels and distributed.flagged == local.flagged == 300
