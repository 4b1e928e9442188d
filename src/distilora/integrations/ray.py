"""Scoring beyond one machine with Ray Data (``pip install 'distilora[ray]'``).

``RayScorer`` is a callable class for ``Dataset.map_batches``: each actor loads the model once and scores pyarrow
batches exactly as ``distilora score`` does::

    import ray
    from distilora.integrations.ray import RayScorer

    scored = ray.data.read_parquet("s3://bucket/comments/").map_batches(
        RayScorer, fn_constructor_kwargs={"run": "/shared/runs/tweet_eval_hate", "model": "odd"},
        compute=ray.data.ActorPoolStrategy(size=8), num_cpus=4, batch_size=10_000, batch_format="pyarrow")
    scored.write_parquet("s3://bucket/scores/")

Ray starts workers with ``OMP_NUM_THREADS=1`` (ray#28044): each actor sets torch's and onnxruntime's intra-op threads
to the CPUs Ray assigned it (``num_cpus``), so a 4-CPU actor computes on 4 cores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from distilora.config import WINDOWS, ScoreConfig
from distilora.scoring import backends
from distilora.scoring.job import ScoreSummary
from distilora.scoring.scorer import Scorer
from distilora.scoring.service import ScoringPlan, plan


def assigned_cpus() -> int:
    """The CPUs Ray gave this worker (1 outside Ray)."""
    import ray

    if not ray.is_initialized():
        return 1
    return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))


class RayScorer:
    """Load ``model`` of ``run`` once per actor; score each pyarrow / pandas batch (see :class:`Scorer`).

    ``backend``: ``pytorch`` (at ``precision``) or ``onnx`` (the export directory ``export`` of the run);
    ``threads``: intra-op threads (default: the actor's ``num_cpus``).
    """

    def __init__(self, run: str, model: str, backend: str = "pytorch", precision: str = "fp32",
                 export: str | None = None, text_column: str = "text", keep_columns: Sequence[str] = (),
                 long_text: str = WINDOWS, batch_size: int = 64, threads: int | None = None):
        import torch

        threads = threads or assigned_cpus()
        torch.set_num_threads(threads)  # onnxruntime sessions take torch's thread count too
        candidate = backends.Candidate(backend, precision if backend == "pytorch" else None, export)
        classifier = backends.load(Path(run), model, candidate)
        classifier.batch_size = batch_size
        self.scorer = Scorer(classifier, text_column, list(keep_columns), long_text)

    def __call__(self, batch: Any) -> Any:
        return self.scorer(batch)


def read_dataset(scoring: ScoringPlan):
    """The input as a Ray Dataset, read as ``distilora score`` reads it (CSV: every column as text)."""
    import ray

    source = scoring.job.source
    path = str(source.path)
    if source.format == "parquet":
        return ray.data.read_parquet(path, columns=source.columns)
    if source.format == "csv":
        return ray.data.read_csv(
            path, parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(include_columns=source.columns,
                                                  column_types={c: pa.string() for c in source.columns},
                                                  strings_can_be_null=False, quoted_strings_can_be_null=False))
    return ray.data.read_json(path, lines=True)


def score_file_with_ray(run: str | Path, model: str, input_file: str | Path, output: str | Path,
                        config: ScoreConfig | None = None) -> ScoreSummary:
    """``distilora score --engine ray``: the same output as the local engine, scored by ``config.workers`` Ray actors
    (the driver reads nothing but the first chunk, to choose the runtime, and writes the parts in input order)."""
    import ray

    config = config or ScoreConfig(engine="ray")
    scoring = plan(run, model, input_file, output, config)
    if not ray.is_initialized():
        ray.init(address=config.address, include_dashboard=False, log_to_driver=False)
    total_cpus = ray.cluster_resources().get("CPU", 1.0)
    threads = max(1, int(total_cpus // config.workers))
    # Ray Data lists and reads files in tasks of one CPU each: the actors leave that CPU free, or nothing is read.
    reserved = max(0.25, (total_cpus - 1) / config.workers)

    def scored_stream(scorer: Scorer) -> Iterator[pa.Table]:
        candidate = scoring.candidate or backends.Candidate("pytorch", "fp32")
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # parts are written in input order
        dataset = read_dataset(scoring).map_batches(
            RayScorer, batch_format="pyarrow", batch_size=config.chunk_rows, num_cpus=reserved,
            compute=ray.data.ActorPoolStrategy(size=config.workers),
            fn_constructor_kwargs={"run": str(Path(run).resolve()), "model": model, "backend": candidate.backend,
                                   "precision": candidate.precision or "fp32", "export": candidate.export,
                                   "text_column": config.text_column, "keep_columns": scoring.kept,
                                   "long_text": config.long_text, "batch_size": config.batch_size,
                                   "threads": threads})
        yield from dataset.iter_batches(batch_format="pyarrow", batch_size=config.chunk_rows)

    return scoring.job.run(scoring.make_scorer, scored_stream)
