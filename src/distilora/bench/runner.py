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

from distilora.bench.flops import FLOP_METHOD, add_fractions
from distilora.bench.inference import measure_model, measure_quantization
from distilora.bench.memory import MEMORY_METHOD, PeakRSS
from distilora.bench.options import BenchOptions
from distilora.bench.peak import best_peak, matmul_peak
from distilora.bench.report import evaluate_targets
from distilora.bench.sample import load_sample
from distilora.bench.training import Route, measure_route
from distilora.config import MODEL_NAMES, ExperimentConfig
from distilora.inference import Classifier
from distilora.models import (
    build_lora_model,
    build_student,
    load_pretrained_classifier,
    load_tokenizer,
    parse_layer_spec,
    resolve_checkpoint,
)

QUANTIZED_MODEL = "odd"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _meta(options: BenchOptions, device: torch.device) -> dict:
    import peft
    import transformers

    from distilora import __version__

    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": options.to_dict(),
        "device": str(device),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": list(os.getloadavg()),
        "versions": {"distilora": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__, "python": platform.python_version()},
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


def _merged_lora(checkpoint: str, labels: list[str]) -> PreTrainedModel:
    return build_lora_model(checkpoint, labels, ExperimentConfig().lora).merge_and_unload()


def inference_builders(options: BenchOptions, checkpoint: str, labels: list[str], teacher: PreTrainedModel
                       ) -> dict[str, Callable[[], PreTrainedModel]]:
    """teacher, odd, even and the merged LoRA model: from ``--run``, or built from the pretrained teacher."""
    if options.run:
        run = Path(options.run)
        return {name: (lambda name=name: Classifier.load(run, name).model)
                for name in MODEL_NAMES if (run / name / "config.json").exists()}
    depth = teacher.config.num_hidden_layers
    return {
        "teacher": lambda: teacher,
        "odd": lambda: build_student(teacher, parse_layer_spec("odd", depth)),
        "even": lambda: build_student(teacher, parse_layer_spec("even", depth)),
        "lora": lambda: _merged_lora(checkpoint, labels),
    }


def training_routes(checkpoint: str, labels: list[str], teacher: PreTrainedModel) -> list[Route]:
    """The three routes with distilora's default learning rates; the student is the odd-layer one."""
    defaults = ExperimentConfig()
    odd = parse_layer_spec("odd", teacher.config.num_hidden_layers)
    return [
        Route("teacher", lambda: load_pretrained_classifier(checkpoint, labels),
              defaults.teacher_training.learning_rate),
        Route("student", lambda: build_student(teacher, odd), defaults.student_training.learning_rate,
              teacher=teacher),
        Route("lora", lambda: build_lora_model(checkpoint, labels, defaults.lora),
              defaults.lora_training.learning_rate, frozen_base=True),
    ]


def run_bench(options: BenchOptions, log: Callable[[str], None] = lambda message: None) -> dict:
    """Measure everything (see docs/performance.md) and write the JSON to ``options.output`` if set."""
    options = options.resolved()
    threads = torch.get_num_threads()
    if options.threads:
        torch.set_num_threads(options.threads)
    try:
        return _run(options, log)
    finally:
        torch.set_num_threads(threads)


def _run(options: BenchOptions, log: Callable[[str], None]) -> dict:
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
        teacher = Classifier.load(options.run, "teacher").model
    else:
        teacher = load_pretrained_classifier(checkpoint, sample.labels)
    teacher = teacher.to(device).eval().requires_grad_(False)

    results["training"] = {}
    for route in training_routes(checkpoint, sample.labels, teacher):
        log(f"training: {route.name} (naive, plain Trainer, distilora; {options.steps} steps at batch "
            f"{options.batch_size})")
        results["training"][route.name] = measure_route(route, sample, options, device)
        lap(f"training_{route.name}")

    results["inference"] = {}
    for name, build in inference_builders(options, checkpoint, sample.labels, teacher).items():
        log(f"inference: {name}")
        set_seed(options.seed)
        model = build().to(device).eval()
        results["inference"][name] = measure_model(model, sample, options)
        lap(f"inference_{name}")
        if name == QUANTIZED_MODEL:
            log(f"int8 dynamic quantization: {name}")
            results["quantization"] = {"model": name} | measure_quantization(model, sample, options)
            lap("quantization")
        del model
        gc.collect()

    log("matmul peak again")
    peak_end = matmul_peak(options.peak_size, options.peak_repeats, device)
    lap("peak_end")
    results["peak"] = best_peak(peak_start, peak_end) | {"memory": memory.as_dict()}
    add_fractions(results, results["peak"]["gflops"])
    results["targets"] = evaluate_targets(results)
    results["meta"]["seconds"] = time.perf_counter() - started
    results["meta"]["load_average_end"] = list(os.getloadavg())
    results["meta"]["busy"] = busy_reasons(results)
    if options.output:
        output = Path(options.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=1))
    return results
