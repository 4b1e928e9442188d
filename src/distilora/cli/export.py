"""``distilora export``: a run's model as ONNX (fp32 or int8) behind a parity gate, in ``RUN/export/NAME[-int8]/``."""

from __future__ import annotations

import argparse
import sys

from distilora.cli.options import add_dataclass_arguments, dataclass_from_args
from distilora.config import ExportConfig

HELP = "export a run's model to ONNX (optionally int8) and check its labels against the PyTorch model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="a run directory made by distilora run")
    parser.add_argument("--model", required=True, help="the model to export: teacher, odd, even, lora, …")
    add_dataclass_arguments(parser, ExportConfig)
    parser.add_argument("--dataset", default=None,
                        help="where the run's dataset is now, if it moved (its content must be the same); default: "
                             "the path results.json records")


def main(args: argparse.Namespace) -> int:
    from distilora.export import ParityGateFailed, export_model

    config = dataclass_from_args(ExportConfig, args)
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
    raw = "all labels at 0.5" if parity.get("multi_label") else "argmax"
    print(f"| split | n | label agreement ({raw}) | label agreement (as served) | max |Δp| | macro-F1 PyTorch | "
          "macro-F1 ONNX | difference [95 % CI] |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for split in ("validation", "test"):
        s = parity[split]
        d = s["macro_f1_difference"]
        print(f"| {split} | {s['n']} | {s['agreement']:.4f} | {s['decision_agreement']:.4f} | {s['max_abs_dp']:.4f} | "
              f"{s['macro_f1']['pytorch']:.4f} | {s['macro_f1']['onnx']:.4f} | "
              f"{d['estimate']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] |")
