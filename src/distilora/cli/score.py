"""``distilora score``: moderate a file of any size (CSV, JSON Lines, Parquet) with one model of a run."""

from __future__ import annotations

import argparse
import sys

from distilora.cli.options import add_dataclass_arguments, dataclass_from_args
from distilora.config import ScoreConfig

HELP = "score every row of a CSV / JSON Lines / Parquet file with a trained model (streaming, resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="a run directory made by distilora run")
    parser.add_argument("--model", default="odd", help="teacher, odd, even, lora, …")
    parser.add_argument("--input", required=True, help="the file to score: .csv, .jsonl, .parquet")
    parser.add_argument("--output", required=True, help="where the scores go (format by extension); an unfinished "
                        "job's parts wait beside it in OUTPUT.parts/ until it is complete")
    add_dataclass_arguments(parser, ScoreConfig)


def main(args: argparse.Namespace) -> int:
    from distilora.scoring import InputError, score_file

    config = dataclass_from_args(ScoreConfig, args)
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
