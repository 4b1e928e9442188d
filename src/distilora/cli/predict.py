"""``distilora predict``: classify texts with one model of a run."""

from __future__ import annotations

import argparse
import json
import sys

from distilora.config import PRECISIONS

HELP = "classify texts (arguments, or one per line on stdin) with a trained model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", help="texts to classify; none: read lines from stdin")
    parser.add_argument("--run", required=True, help="a run directory made by distilora run")
    parser.add_argument("--model", default="odd", help="teacher, odd, even, lora, …")
    parser.add_argument("--precision", choices=PRECISIONS, default=PRECISIONS[0],
                        help="fp32; bf16 (refused without native bf16); auto: bf16 where native")


def main(args: argparse.Namespace) -> int:
    from distilora.inference import Classifier

    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError("no text given: pass texts as arguments or one per line on stdin")
    classifier = Classifier.load(args.run, args.model, precision=args.precision)
    for text, prediction in zip(texts, classifier.predict(texts), strict=True):
        print(json.dumps({"text": text, "label": prediction.label, "scores": prediction.scores,
                          "truncated": prediction.truncated}))
    return 0
