"""Run every bench stage in one process and collect one JSON-able result."""

from __future__ import annotations

import gc
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
from transformers import PreTrainedModel, set_seed

from benchmarks.config import BenchConfig
from benchmarks.export import measure_export
from benchmarks.flops import FLOP_METHOD, add_fractions
from benchmarks.inference import measure_model, measure_quantization
from benchmarks.memory import MEMORY_METHOD, PeakRSS
from benchmarks.peak import best_peak, matmul_peak
from benchmarks.precision import add_bf16_fractions, bf16_peak, precision_section
from benchmarks.precision import measure_inference as measure_precision_inference
from benchmarks.precision import measure_training as measure_precision_training
from benchmarks.report import evaluate_targets
from benchmarks.sample import load_sample
from benchmarks.training import BenchContext, measure_route
from distilora.inference import load_classifier
from distilora.models import load_pretrained_classifier, load_tokenizer, resolve_checkpoint
from distilora.precision import cpu_name, recorded_cpu_flags
from distilora.routes import Route, RouteKind, RouteSetup, create_route
from distilora.run_dir import RunLayout
from distilora.versions import library_versions

QUANTIZED_MODEL = "odd"


def _meta(options: BenchConfig, device: torch.device) -> dict:
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": options.to_dict(),
        "device": str(device),
        "cpu": cpu_name(),
        "cpu_flags": recorded_cpu_flags(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": list(os.getloadavg()),
        "versions": library_versions() | {"python": platform.python_version()},
        "models": "trained weights from --run" if options.run else
                  "randomly initialised heads / students built from the pretrained teacher (speed only)",
    }


def busy_reasons(results: dict) -> list[str]:
    """Signs that other work shared the CPU during the bench (its timings are then not reliable)."""
    cpus = results["meta"]["cpu_count"] or 1
    reasons = []
    load = results["meta"]["load_average_start"][0]
    if load > 0.5 * cpus:
        reasons.append(f"load average {load:.1f} on {cpus} CPUs before the bench started")
    if results["peak"]["spread"] < 0.8:
        low, high = min(results["peak"]["measurements_gflops"]), max(results["peak"]["measurements_gflops"])
        reasons.append(f"the matmul peak varied from {low:.0f} to {high:.0f} GFLOP/s between start and end")
    return reasons


ROUTES = ("teacher", "odd", "lora")
"""The routes whose training is timed: one of each kind, by their registered names."""
INFERENCE_MODELS = ("teacher", "odd", "even", "lora")


def inference_builders(options: BenchConfig, ctx: BenchContext) -> dict[str, Callable[[], PreTrainedModel]]:
    """teacher, odd, even and the merged LoRA model: from ``--run``, or built from the pretrained teacher."""
    if options.run:
        run = RunLayout(options.run)
        return {name: (lambda name=name: load_classifier(run.model_dir(name)).model)
                for name in INFERENCE_MODELS if (run.model_dir(name) / "config.json").exists()}
    depth = ctx.teacher.config.num_hidden_layers
    builders: dict[str, Callable[[], PreTrainedModel]] = {"teacher": lambda: ctx.teacher}
    for name in INFERENCE_MODELS[1:]:
        route = create_route(name, RouteSetup(depth, depth // 2))
        builders[name] = lambda route=route: _untrained(route, ctx)
    return builders


def _untrained(route: Route, ctx: BenchContext) -> PreTrainedModel:
    """The route's model as built before training (speed does not depend on trained values); LoRA merged."""
    model = route.build(ctx)
    return model.merge_and_unload() if route.kind is RouteKind.LORA else model


def run_bench(options: BenchConfig, log: Callable[[str], None] = lambda message: None) -> dict:
    """Measure everything (see docs/performance.md) and write the JSON to ``options.output`` if set."""
    options = options.resolved()
    threads = torch.get_num_threads()
    if options.threads:
        torch.set_num_threads(options.threads)
    try:
        return _run(options, log)
    finally:
        torch.set_num_threads(threads)


def _run(options: BenchConfig, log: Callable[[str], None]) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    results: dict = {"meta": _meta(options, device), "methods": {"flops": FLOP_METHOD, "memory": MEMORY_METHOD}}
    stage_seconds = results["meta"]["stage_seconds"] = {}
    last = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        stage_seconds[name] = now - last
        last = now

    checkpoint = resolve_checkpoint(options.teacher)
    source = str(Path(options.run) / "teacher") if options.run else checkpoint
    tokenizer = load_tokenizer(source)
    tokenizer.model_max_length = options.max_length
    sample = load_sample(options.dataset, tokenizer, options.train_samples, options.infer_samples,
                         options.max_length, options.seed)
    results["meta"]["samples"] = {"train": options.train_samples, "inference": options.infer_samples,
                                  "latency": options.latency_samples}
    lap("load_data")

    log(f"matmul peak ({options.peak_size}² fp32, best of {options.peak_repeats}; again at the end)")
    with PeakRSS() as memory:
        peak_start = matmul_peak(options.peak_size, options.peak_repeats, device)
    lap("peak")

    set_seed(options.seed)
    if options.run:
        teacher = load_classifier(RunLayout(options.run).model_dir("teacher")).model
    else:
        teacher = load_pretrained_classifier(checkpoint, sample.labels)
    teacher = teacher.to(device).eval().requires_grad_(False)

    ctx = BenchContext(checkpoint, sample.labels, teacher)
    results["training"] = {}
    for name in ROUTES:
        depth = teacher.config.num_hidden_layers
        route = create_route(name, RouteSetup(depth, depth // 2))
        log(f"training: {route.name} ({route.kind.value}; naive, plain Trainer, distilora; {options.steps} steps "
            f"at batch {options.batch_size})")
        results["training"][route.name] = measure_route(route, ctx, sample, options, device)
        results["training"][route.name]["kind"] = route.kind.value
        lap(f"training_{route.name}")

    section = results["precision"] = precision_section(device)
    if section["native_bf16"]:
        log("fp32 vs bf16: matmul peak, then distilora's training of each route in both")
        section["peak_bf16"] = bf16_peak(options, device)
        for name in ROUTES:
            route = create_route(name, RouteSetup(teacher.config.num_hidden_layers,
                                                  teacher.config.num_hidden_layers // 2))
            section["training"][name] = measure_precision_training(route, ctx, sample, options, device)
        lap("precision_training")

    results["inference"] = {}
    for name, build in inference_builders(options, ctx).items():
        log(f"inference: {name}")
        set_seed(options.seed)
        model = build().to(device).eval()
        results["inference"][name] = measure_model(model, sample, options)
        lap(f"inference_{name}")
        if section["native_bf16"]:
            section["inference"][name] = measure_precision_inference(model, sample, options)
            lap(f"precision_inference_{name}")
        if name == QUANTIZED_MODEL:
            log(f"int8 dynamic quantization: {name}")
            results["quantization"] = {"model": name} | measure_quantization(model, sample, options)
            lap("quantization")
            log(f"PyTorch fp32 vs ONNX fp32 vs ONNX int8: {name}")
            results["export"] = {"model": name} | measure_export(model, sample, options)
            lap("export")
        del model
        gc.collect()

    log("matmul peak again")
    peak_end = matmul_peak(options.peak_size, options.peak_repeats, device)
    lap("peak_end")
    results["peak"] = best_peak(peak_start, peak_end) | {"memory": memory.as_dict()}
    add_fractions(results, results["peak"]["gflops"])
    add_bf16_fractions(section)
    results["targets"] = evaluate_targets(results)
    results["meta"]["seconds"] = time.perf_counter() - started
    results["meta"]["load_average_end"] = list(os.getloadavg())
    results["meta"]["busy"] = busy_reasons(results)
    if options.output:
        output = Path(options.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=1))
    return results
