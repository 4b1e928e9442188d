"""``distilora predict``: classify texts with one model of a run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from distilora.config import LONG_TEXT_POLICIES, PRECISIONS, WINDOWS, ServeConfig

if TYPE_CHECKING:
    from distilora.inference import Prediction

HELP = "classify texts (arguments, or one per line on stdin) with a trained model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", help="texts to classify; none: read lines from stdin")
    parser.add_argument("--run", required=True, help="a run directory made by distilora run")
    parser.add_argument("--model", default="odd", help="teacher, odd, even, lora, …")
    parser.add_argument("--precision", choices=PRECISIONS, default=ServeConfig().precision,
                        help="fp32; bf16 (refused without native bf16); auto: bf16 where native")
    parser.add_argument("--long-text", choices=LONG_TEXT_POLICIES, default=WINDOWS,
                        help="texts longer than the model's maximum length: read in overlapping windows and scored by "
                             "the most positive one (windows), or cut to their first window (truncate)")
    parser.add_argument("--argmax", action="store_true",
                        help="raw softmax scores and the argmax label (what a plain transformers pipeline gives) "
                             "instead of the calibrated scores and the threshold tuned on validation (a multi-label "
                             "model: raw sigmoid scores, each label on at 0.5)")


def main(args: argparse.Namespace) -> int:
    from distilora.inference import load_classifier

    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError("no text given: pass texts as arguments or one per line on stdin")
    classifier = load_classifier(args.run, args.model, precision=args.precision)
    calibrated = not args.argmax and classifier.calibration is not None
    uncalibrated = ("each label on at 0.5 of its raw sigmoid" if classifier.multi_label else "argmax of the raw "
                    "softmax") + " (not calibrated)"
    rule = classifier.calibration.describe() if calibrated else uncalibrated
    print(f"{args.model}: {rule}", file=sys.stderr)
    predictions = classifier.predict(texts, calibrated=not args.argmax, long_text=args.long_text)
    for text, prediction in zip(texts, predictions, strict=True):
        print(json.dumps(printed(text, prediction, calibrated)))
    return 0


def printed(text: str, prediction: Prediction, calibrated: bool) -> dict:
    """One printed line: the label, scores and threshold; a multi-label model's decided set (``labels``, possibly
    empty), every label's score and each label's threshold."""
    if prediction.labels is None:
        return {"text": text, "label": prediction.label, "scores": prediction.scores,
                "truncated": prediction.truncated, "windows": prediction.windows, "threshold": prediction.threshold,
                "calibrated": calibrated}
    return {"text": text, "labels": prediction.labels, "scores": prediction.scores,
            "thresholds": prediction.thresholds, "truncated": prediction.truncated, "windows": prediction.windows,
            "calibrated": calibrated}
