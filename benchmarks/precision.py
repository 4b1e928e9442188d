"""fp32 against bf16 on this machine, back to back on the same models and texts.

* the matmul peak in bf16 (beside the fp32 one);
* training: distilora's ``train_model`` for each timed route, in fp32 and then with the Trainer's bf16 (autocast
  around the forward pass, fp32 weights and optimizer) — useful tokens/s; the teacher-target pass in both;
* inference: ``forward_in_batches`` at batch 64 on the serving path, fp32 then bf16 autocast — texts/s, and the
  share of texts whose predicted label is the same, with the largest class-probability difference.

Where the device has no native bf16 (:func:`distilora.precision.native_bf16`) the section says so and measures
nothing: emulated bf16 is not what ``--precision`` would ever run.
"""

from __future__ import annotations

import time

import torch
from transformers import PreTrainedModel

from benchmarks.config import BenchConfig
from benchmarks.flops import ModelShape, achieved, forward_flops
from benchmarks.peak import matmul_peak, synchronize
from benchmarks.sample import BenchSample
from distilora.export.parity import agreement, probability_deltas
from distilora.inference import forward_in_batches
from distilora.precision import BF16, FP32, cpu_name, native_bf16, recorded_cpu_flags
from distilora.routes import Route

PRECISIONS = (FP32, BF16)


def precision_section(device: torch.device) -> dict:
    """The section's header: the device, the CPU and its flags, and whether bf16 is native (measured) or not."""
    available = native_bf16(device.type)
    section = {"device": device.type, "cpu": cpu_name(), "cpu_flags": recorded_cpu_flags(), "native_bf16": available,
               "training": {}, "inference": {}}
    if not available:
        section["skipped"] = (f"{device.type} has no native bf16 (CPU flags avx512_bf16 / amx_bf16 / bf16, or a CUDA "
                              "GPU that supports it): bf16 would be emulated, so it is not measured")
    return section


def bf16_peak(options: BenchConfig, device: torch.device) -> dict:
    return matmul_peak(options.peak_size, options.peak_repeats, device, dtype=torch.bfloat16)


def measure_training(route: Route, ctx, sample: BenchSample, options: BenchConfig, device: torch.device) -> dict:
    """distilora's training of ``route`` in fp32 then bf16: useful tokens/s each and the bf16 speed-up."""
    from benchmarks.training import measure_variant, teacher_target_pass

    out: dict = {}
    for precision in PRECISIONS:
        targets = None
        if route.needs_teacher_targets:
            targets, out[f"teacher_targets_{precision}"] = teacher_target_pass(ctx.teacher, sample, precision)
        out[precision] = measure_variant(route, ctx, "distilora", sample, options, device, targets, precision=precision)
    out["speedup"] = out[BF16]["useful_tokens_per_s"] / out[FP32]["useful_tokens_per_s"]
    if route.needs_teacher_targets:
        out["teacher_targets_speedup"] = (out[f"teacher_targets_{FP32}"]["seconds"]
                                          / out[f"teacher_targets_{BF16}"]["seconds"])
    return out


def measure_inference(model: PreTrainedModel, sample: BenchSample, options: BenchConfig) -> dict:
    """Batch inference on the serving path in fp32 then bf16: texts/s, speed-up and label agreement."""
    device = next(model.parameters()).device
    batch, encodings = options.infer_batch_size, sample.infer_encodings
    flops = forward_flops(ModelShape.of(model), sample.infer_lengths)
    out: dict = {}
    logits = {}
    for precision in PRECISIONS:
        forward_in_batches(model, encodings[:batch], sample.tokenizer, batch, precision=precision)  # warm-up
        synchronize(device)
        started = time.perf_counter()
        logits[precision] = forward_in_batches(model, encodings, sample.tokenizer, batch, precision=precision).logits
        synchronize(device)
        seconds = time.perf_counter() - started
        out[precision] = {"seconds": seconds, "samples_per_s": len(encodings) / seconds,
                          "useful_tokens_per_s": sum(sample.infer_lengths) / seconds} | achieved(flops, seconds)
    out["speedup"] = out[BF16]["samples_per_s"] / out[FP32]["samples_per_s"]
    out["label_agreement"] = agreement(logits[FP32], logits[BF16])
    out["max_abs_probability_difference"] = float(probability_deltas(logits[FP32], logits[BF16]).max())
    out["samples"] = len(encodings)
    out["batch_size"] = batch
    return out


def add_bf16_fractions(section: dict) -> None:
    """``fraction_of_bf16_peak`` beside every bf16 measurement's useful GFLOP/s."""
    peak = section.get("peak_bf16", {}).get("gflops")
    if not peak:
        return
    for group in ("training", "inference"):
        for entry in section[group].values():
            if BF16 in entry:
                entry[BF16]["fraction_of_bf16_peak"] = entry[BF16]["useful_gflops_per_s"] / peak


def format_section(section: dict) -> list[str]:
    """The printed lines of the fp32-vs-bf16 section."""
    from benchmarks.report import _num, _table

    flags = ", ".join(f for f in section["cpu_flags"] if "bf16" in f or "amx" in f) or "none"
    lines = [f"fp32 vs bf16 ({section['device']}; bf16 flags: {flags})"]
    if section.get("skipped"):
        return [*lines, f"not measured: {section['skipped']}", ""]
    if "peak_bf16" in section:
        lines.append(f"bf16 matmul peak: {_num(section['peak_bf16']['gflops'])} GFLOP/s")
    rows = [["train", route, _num(e[FP32]["useful_tokens_per_s"], 0), _num(e[BF16]["useful_tokens_per_s"], 0),
             f"{e['speedup']:.2f}x", "", ""] for route, e in section["training"].items()]
    rows += [["infer", model, _num(e[FP32]["samples_per_s"]), _num(e[BF16]["samples_per_s"]), f"{e['speedup']:.2f}x",
              f"{e['label_agreement']:.1%}", f"{e['max_abs_probability_difference']:.3f}"]
             for model, e in section["inference"].items()]
    if rows:
        lines += ["(train: distilora useful tokens/s; infer: forward_in_batches texts/s at batch 64)"]
        lines += _table(["", "model", "fp32", "bf16", "bf16 speed-up", "same label", "max |Δp|"], rows)
    return [*lines, ""]
