"""``distilora score``: moderate a file of any size (CSV, JSON Lines, Parquet) with one model of a run."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from distilora.config import LONG_TEXT_POLICIES, PRECISIONS, SCORE_BACKENDS, SCORE_ENGINES, ScoreConfig

HELP = "score every row of a CSV / JSON Lines / Parquet file with a trained model (streaming, resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = ScoreConfig()
    parser.add_argument("--run", required=True, help="a run directory made by distilora run")
    parser.add_argument("--model", default="odd", help="teacher, odd, even, lora, …")
    parser.add_argument("--input", required=True, help="the file to score: .csv, .jsonl, .parquet")
    parser.add_argument("--output", required=True, help="where the scores go (format by extension); an unfinished "
                        "job's parts wait beside it in OUTPUT.parts/ until it is complete")
    parser.add_argument("--text-column", default=d.text_column, help="the column holding the texts")
    parser.add_argument("--id-column", default=d.id_column, help="a column identifying rows, copied to the output")
    parser.add_argument("--keep-columns", default="", help="more input columns to copy, comma-separated")
    parser.add_argument("--long-text", choices=LONG_TEXT_POLICIES, default=d.long_text,
                        help="texts longer than the model reads: max over overlapping windows, or the first window")
    parser.add_argument("--backend", choices=SCORE_BACKENDS, default=d.backend,
                        help="auto: the fastest runtime whose labels agree with PyTorch fp32 on the first texts")
    parser.add_argument("--precision", choices=PRECISIONS, default=d.precision, help="with --backend pytorch")
    parser.add_argument("--chunk-rows", type=int, default=d.chunk_rows, help="rows per resumable part")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="texts per forward pass")
    parser.add_argument("--engine", choices=SCORE_ENGINES, default=d.engine,
                        help="local, or ray (Ray Data actors; pip install 'distilora[ray]')")
    parser.add_argument("--workers", type=int, default=d.workers, help="with --engine ray: actors")
    parser.add_argument("--address", default=d.address, help="with --engine ray: auto or ray://HOST:PORT")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> ScoreConfig:
    given = {f.name: getattr(args, f.name) for f in fields(ScoreConfig) if hasattr(args, f.name)}
    given["keep_columns"] = tuple(c.strip() for c in args.keep_columns.split(",") if c.strip())
    given["progress"] = not args.no_progress
    return ScoreConfig(**given)


def main(args: argparse.Namespace) -> int:
    from distilora.scoring import InputError, score_file

    config = config_from_args(args)
    try:
        if config.engine == "ray":
            from distilora.integrations.ray import score_file_with_ray

            summary = score_file_with_ray(args.run, args.model, args.input, args.output, config)
        else:
            summary = score_file(args.run, args.model, args.input, args.output, config)
    except InputError as error:
        print(f"distilora score: error: {error}", file=sys.stderr)
        return 2
    print(f"distilora score: {args.output}: {summary.describe()}", file=sys.stderr)
    return 0
