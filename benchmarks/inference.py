"""Inference throughput at a fixed batch size and single-text latency: ``transformers.pipeline`` vs distilora.

Batch paths, all over the same texts:

* ``pipeline_pad128``: ``pipeline("text-classification")``, random order, every text padded to ``max_length``;
* ``pipeline_default``: the same pipeline with its default padding (longest in each random-order batch);
* ``serving_predict``: :meth:`distilora.Classifier.predict` — text in, labels and probabilities out;
* ``serving_forward``: :func:`distilora.inference.forward_in_batches` on pre-tokenized texts (model time only).

Latency: one text per call, ``pipeline(text)`` vs ``Classifier.predict(text)``, after a few warm-up calls.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from transformers import PreTrainedModel, pipeline

from benchmarks.config import BenchConfig
from benchmarks.flops import ModelShape, achieved, forward_flops
from benchmarks.memory import PeakRSS
from benchmarks.peak import synchronize
from benchmarks.sample import BenchSample
from distilora.inference import TorchClassifier, forward_in_batches

BATCH_PATHS = ("pipeline_pad128", "pipeline_default", "serving_predict", "serving_forward")
LATENCY_WARMUP = 3


def padded_tokens(lengths: list[int], batch_size: int, pad_to: int | None = None) -> int:
    """Tokens actually computed when ``lengths`` (in batch order) are batched and padded to each batch's longest."""
    total = 0
    for start in range(0, len(lengths), batch_size):
        chunk = lengths[start : start + batch_size]
        total += len(chunk) * (pad_to or max(chunk))
    return total


def latency(call: Callable[[str], object], texts: list[str], device: torch.device) -> dict[str, float]:
    """p50 / p99 / mean milliseconds of ``call(text)``, one text at a time."""
    for text in texts[:LATENCY_WARMUP]:
        call(text)
    times = []
    for text in texts:
        started = time.perf_counter()
        call(text)
        synchronize(device)
        times.append((time.perf_counter() - started) * 1e3)
    return {"samples": len(times), "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "mean_ms": float(np.mean(times))}


def _timed_batch(call: Callable[[], object], warmup: Callable[[], object], device: torch.device
                 ) -> tuple[float, dict]:
    warmup()
    synchronize(device)
    with PeakRSS() as memory:
        started = time.perf_counter()
        call()
        synchronize(device)
        seconds = time.perf_counter() - started
    return seconds, memory.as_dict()


def measure_model(model: PreTrainedModel, sample: BenchSample, options: BenchConfig) -> dict:
    """Batch throughput on every path, and single-text latency for the pipeline and the serving path."""
    model.eval()
    device = next(model.parameters()).device
    tokenizer, batch, length = sample.tokenizer, options.infer_batch_size, options.max_length
    texts, encodings, lengths = sample.infer_texts, sample.infer_encodings, sample.infer_lengths
    order = np.random.default_rng(options.seed).permutation(len(texts))
    shuffled = [texts[i] for i in order]
    shape = ModelShape.of(model)
    flops = forward_flops(shape, lengths)
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=device)
    classifier = TorchClassifier(model, tokenizer, "bench", max_length=length, batch_size=batch)
    pad128 = {"truncation": True, "padding": "max_length", "max_length": length}
    default = {"truncation": True, "max_length": length}
    paths: dict[str, tuple[Callable[[list[str], list[dict]], object], int]] = {
        "pipeline_pad128": (lambda t, e: pipe(t, batch_size=batch, **pad128), len(texts) * length),
        "pipeline_default": (lambda t, e: pipe(t, batch_size=batch, **default),
                             padded_tokens([lengths[i] for i in order], batch)),
        "serving_predict": (lambda t, e: classifier.predict(t), padded_tokens(sorted(lengths), batch)),
        "serving_forward": (lambda t, e: forward_in_batches(model, e, tokenizer, batch),
                            padded_tokens(sorted(lengths), batch)),
    }
    results: dict = {}
    for name, (run, executed) in paths.items():
        seconds, memory = _timed_batch(lambda run=run: run(shuffled, encodings),
                                       lambda run=run: run(shuffled[:batch], encodings[:batch]), device)
        results[name] = {"seconds": seconds, "samples_per_s": len(texts) / seconds,
                         "useful_tokens_per_s": sum(lengths) / seconds, "executed_tokens": executed,
                         "padding_fraction": 1 - sum(lengths) / executed} | achieved(flops, seconds)
        results[name]["memory"] = memory
    few = shuffled[: options.latency_samples]
    with PeakRSS() as memory:
        latencies = {"pipeline": latency(lambda t: pipe(t, **default), few, device),
                     "serving": latency(lambda t: classifier.predict(t), few, device)}
    latencies["memory"] = memory.as_dict()
    return {"shape": shape.to_dict(), "params": sum(p.numel() for p in model.parameters()),
            "samples": len(texts), "useful_tokens": sum(lengths), "batch_size": batch, "batch": results,
            "latency": latencies}


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A CPU copy with every ``nn.Linear`` dynamically quantized to int8 (weights int8, activations per batch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).cpu().eval(), {torch.nn.Linear},
                                                      dtype=torch.qint8)


def measure_quantization(model: PreTrainedModel, sample: BenchSample, options: BenchConfig) -> dict:
    """fp32 vs dynamic-int8 on the serving path (CPU): batch speed, single-text p50 and prediction agreement."""
    cpu = torch.device("cpu")
    fp32 = copy.deepcopy(model).cpu().eval()
    variants = {"fp32": fp32, "int8": quantize_int8(fp32)}
    batch, few = options.infer_batch_size, sample.infer_texts[: options.latency_samples]
    out: dict = {}
    logits = {}
    for name, variant in variants.items():
        def run(encodings=sample.infer_encodings, variant=variant):
            return forward_in_batches(variant, encodings, sample.tokenizer, batch)

        seconds, memory = _timed_batch(run, lambda run=run: run(sample.infer_encodings[:batch]), cpu)
        logits[name] = run().logits
        classifier = TorchClassifier(variant, sample.tokenizer, name, max_length=options.max_length, batch_size=batch)
        out[name] = {"seconds": seconds, "samples_per_s": len(sample.infer_texts) / seconds, "memory": memory,
                     "latency": latency(lambda t, c=classifier: c.predict(t), few, cpu)}
    probs = {name: torch.softmax(torch.from_numpy(x).double(), dim=-1).numpy() for name, x in logits.items()}
    out["batch_speed_ratio"] = out["int8"]["samples_per_s"] / out["fp32"]["samples_per_s"]
    out["latency_p50_speed_ratio"] = out["fp32"]["latency"]["p50_ms"] / out["int8"]["latency"]["p50_ms"]
    out["prediction_agreement"] = float(np.mean(probs["fp32"].argmax(-1) == probs["int8"].argmax(-1)))
    out["max_abs_probability_difference"] = float(np.abs(probs["fp32"] - probs["int8"]).max())
    out["samples"] = len(sample.infer_texts)
    return out
