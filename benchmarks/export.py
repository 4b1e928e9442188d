"""PyTorch fp32 vs its ONNX export (fp32, and every int8 variant ``distilora export`` tries), on the serving path.

All variants are distilora classifiers over the same texts (``Classifier`` / ``OnnxClassifier``: tokenization,
length-sorted batches of ``infer_batch_size``, softmax), timed together by :func:`distilora.evaluation.speed.measure`
(warm-up on every input, then interleaved rounds): texts/s at batch 64, median single-text ms; and each variant's
label agreement and max |Δp| against PyTorch on those texts.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

from transformers import PreTrainedModel

from benchmarks.config import BenchConfig
from benchmarks.sample import BenchSample
from distilora.config import INT8_VARIANTS, ExportConfig
from distilora.evaluation.speed import measure
from distilora.export.onnx import choose_int8, export_onnx, quantize_int8
from distilora.export.parity import agreement, probability_deltas
from distilora.inference import Classifier, OnnxClassifier, TorchClassifier

REFERENCE = "pytorch-fp32"


def measure_export(model: PreTrainedModel, sample: BenchSample, options: BenchConfig) -> dict:
    """``{variants: {name: {throughput, latency_ms, agreement, …}}, …}`` for PyTorch fp32 and the ONNX exports."""
    import onnxruntime

    batch, tokenizer = options.infer_batch_size, sample.tokenizer
    fp32 = copy.deepcopy(model).cpu().float().eval()
    opset = ExportConfig().opset
    classifiers: dict[str, Classifier] = {
        REFERENCE: TorchClassifier(fp32, tokenizer, REFERENCE, max_length=options.max_length, batch_size=batch)}
    with tempfile.TemporaryDirectory(prefix="distilora-bench-onnx-") as work:
        onnx_fp32 = Path(work) / "fp32.onnx"
        export_onnx(fp32, tokenizer, onnx_fp32, opset)
        files = {"onnx-fp32": (onnx_fp32, None)}
        for variant in INT8_VARIANTS:
            target = Path(work) / f"int8-{variant}.onnx"
            files[f"onnx-int8-{variant}"] = (target, quantize_int8(onnx_fp32, target, variant))
        for name, (path, _) in files.items():
            classifiers[name] = OnnxClassifier.from_file(path, tokenizer, fp32.config, name=name)
            classifiers[name].batch_size = batch
            classifiers[name].max_length = options.max_length
        sizes = {name: path.stat().st_size / 2**20 for name, (path, _) in files.items()}
    texts = sample.infer_texts
    speeds = measure(classifiers, texts, single_texts=options.latency_samples)
    logits = {name: classifier.logits(texts) for name, classifier in classifiers.items()}
    reference = speeds[REFERENCE]
    variants = {}
    for name, speed in speeds.items():
        variants[name] = {
            "throughput": speed["throughput"], "latency_ms": speed["latency_ms"],
            "latency_ms_p90": speed["latency_ms_p90"],
            "throughput_vs_pytorch": speed["throughput"] / reference["throughput"],
            "latency_speedup_vs_pytorch": reference["latency_ms"] / speed["latency_ms"],
            "agreement": agreement(logits[REFERENCE], logits[name]),
            "max_abs_dp": float(probability_deltas(logits[REFERENCE], logits[name]).max()),
            "size_mb": sizes.get(name), "quantization": files[name][1] if name in files else None,
            "quantized_weight_share": (files[name][1] or {}).get("quantized_weight_share") if name in files else None,
        }
    return {"samples": len(texts), "batch_size": batch, "single_texts": reference["single_texts"],
            "rounds": reference["rounds"], "opset": opset, "onnxruntime": onnxruntime.__version__,
            "variants": variants, "int8_choice": choose_int8(
                {name: v for name, v in variants.items() if name.startswith("onnx-int8-")},
                ExportConfig().min_agreement)}
