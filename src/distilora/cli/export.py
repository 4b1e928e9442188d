"""``distilora export``: a run's model as ONNX (fp32 or int8) behind a parity gate, in ``RUN/export/NAME[-int8]/``."""

from __future__ import annotations

import argparse
import sys

from distilora.config import QUANTIZATIONS, ExportConfig

HELP = "export a run's model to ONNX (optionally int8) and check its labels against the PyTorch model"


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ExportConfig()
    parser.add_argument("--run", required=True, help="a run directory made by distilora run")
    parser.add_argument("--model", required=True, help="the model to export: teacher, odd, even, lora, …")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=defaults.quantize,
                        help="int8: dynamic int8 quantization (the variant that agrees most on validation is kept); "
                             "default: fp32")
    parser.add_argument("--min-agreement", type=_fraction, default=defaults.min_agreement,
                        help="the share of validation and of test labels that must equal the PyTorch model's, at "
                             "the argmax and as served (calibrated threshold), in (0, 1]; below it the numbers are "
                             "written, the export is marked failed (installed beside a passing export of the same "
                             "name as NAME.rejected-<time>, never over it) and the exit status is 1")
    parser.add_argument("--opset", type=int, default=defaults.opset, help="ONNX opset")
    parser.add_argument("--dataset", default=None,
                        help="where the run's dataset is now, if it moved (its content must be the same); default: "
                             "the path results.json records")


def main(args: argparse.Namespace) -> int:
    from distilora.export import ParityGateFailed, export_model

    config = ExportConfig(quantize=args.quantize, min_agreement=args.min_agreement, opset=args.opset)
    try:
        path, parity = export_model(args.run, args.model, config, dataset=args.dataset)
    except ParityGateFailed as failed:
        _summary(failed.parity)
        print(f"distilora export: parity gate failed: {failed}", file=sys.stderr)
        return 1
    _summary(parity)
    print(f"\nWrote {path}; serve it with `distilora serve --run {args.run} --backend onnx`.")
    return 0


def _summary(parity: dict) -> None:
    print(f"{parity['export']}: ONNX {parity['size_mb']:.1f} MB, quantization "
          f"{(parity['settings']['quantization'] or {}).get('variant', 'none (fp32)')}")
    print("| split | n | label agreement (argmax) | label agreement (as served) | max |Δp| | macro-F1 PyTorch | "
          "macro-F1 ONNX | difference [95 % CI] |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for split in ("validation", "test"):
        s = parity[split]
        d = s["macro_f1_difference"]
        print(f"| {split} | {s['n']} | {s['agreement']:.4f} | {s['decision_agreement']:.4f} | {s['max_abs_dp']:.4f} | "
              f"{s['macro_f1']['pytorch']:.4f} | {s['macro_f1']['onnx']:.4f} | "
              f"{d['estimate']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] |")
