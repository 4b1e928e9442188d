"""The performance targets as pass/fail ratios, and the printed tables."""

from __future__ import annotations

from benchmarks.training import VARIANTS
from distilora.routes.kinds import RouteKind

STUDENTS = ("odd", "even")


def _target(name: str, description: str, value: float, required: float, at_least: bool = True,
            unit: str = "x") -> dict:
    """``margin`` ≥ 1 exactly when the target passes (value / required, or required / value for a limit)."""
    margin = value / required if at_least else required / value
    return {"name": name, "description": description, "value": value, "required": required,
            "comparison": ">=" if at_least else "<=", "unit": unit, "margin": margin, "pass": margin >= 1}


def evaluate_targets(results: dict) -> list[dict]:
    """Every target the bench has the measurements for, all from this one run."""
    targets = []
    training = results.get("training", {}).values()
    student = next((entry for entry in training if entry.get("kind") == RouteKind.DISTIL), None)
    if student:
        distilora = student["distilora"]["effective_useful_tokens_per_s"]
        targets.append(_target(
            "distillation_vs_naive",
            "student distillation useful tokens/s, distilora (teacher-target pass amortised over 2 students) "
            "/ naive loop", distilora / student["naive"]["effective_useful_tokens_per_s"], 3.0))
        targets.append(_target(
            "distillation_vs_trainer",
            "student distillation useful tokens/s, distilora (amortised) / plain transformers.Trainer",
            distilora / student["trainer"]["effective_useful_tokens_per_s"], 1.5))
    inference = results.get("inference", {})
    teacher = inference.get("teacher")
    if teacher:
        targets.append(_target(
            "teacher_inference_fraction_of_peak",
            f"teacher batch-{teacher['batch_size']} inference (serving path, forward_in_batches) useful GFLOP/s "
            "/ fp32 matmul peak", teacher["batch"]["serving_forward"]["fraction_of_peak"], 0.5, unit="fraction"))
    export = results.get("export")
    if export and export.get("int8_choice"):
        chosen = export["variants"][export["int8_choice"]]
        targets.append(_target(
            "onnx_int8_latency_vs_pytorch",
            f"{export['model']} single-text median ms, PyTorch fp32 / ONNX {export['int8_choice']} (the int8 variant "
            "distilora export would keep)", chosen["latency_speedup_vs_pytorch"], 1.5))
        targets.append(_target(
            "onnx_int8_agreement",
            f"{export['model']} label agreement of ONNX {export['int8_choice']} with PyTorch fp32 on "
            f"{export['samples']} texts", chosen["agreement"], 0.99, unit="fraction"))
    students = [name for name in STUDENTS if name in inference]
    if teacher and students:
        speed = min(inference[name]["batch"]["serving_predict"]["samples_per_s"] for name in students)
        targets.append(_target(
            "student_vs_teacher_inference",
            f"slowest 3-layer student ({'/'.join(students)}) / teacher, Classifier.predict samples/s at batch "
            f"{teacher['batch_size']}", speed / teacher["batch"]["serving_predict"]["samples_per_s"], 1.8))
    if students:
        p50 = max(inference[name]["latency"]["serving"]["p50_ms"] for name in students)
        targets.append(_target(
            "student_latency_p50",
            f"slowest student ({'/'.join(students)}) single-text p50 latency via Classifier.predict, ms",
            p50, 10.0, at_least=False, unit="ms"))
    return targets


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]


def _num(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def format_report(results: dict) -> str:
    """Plain-text tables: peak, training, inference, int8, targets."""
    meta, peak = results["meta"], results["peak"]
    flags = ", ".join(meta.get("cpu_flags", [])) or "none recorded"
    lines = [f"distilora bench — {meta['cpu']}, {meta['torch_threads']} torch threads, device {meta['device']}, "
             f"load average at start {meta['load_average_start'][0]:.2f}, {meta.get('seconds', 0):.0f} s",
             f"CPU flags: {flags}",
             "", f"fp32 matmul peak ({peak['size']}², best of {peak['repeats']}, at start and end): "
             f"{_num(peak['gflops'])} GFLOP/s (measured: {', '.join(_num(g) for g in peak['measurements_gflops'])})",
             ""]
    if meta.get("busy"):
        lines[1:1] = [f"WARNING: the machine was busy ({'; '.join(meta['busy'])}): timings are not reliable."]
    rows = []
    for route, variants in results.get("training", {}).items():
        for name in VARIANTS:
            v = variants[name]
            amortised = v.get("amortised", v)
            rows.append([route, name, _num(amortised["samples_per_s"]), _num(amortised["useful_tokens_per_s"], 0),
                         f"{v['padding_fraction']:.0%}", _num(amortised["useful_gflops_per_s"]),
                         f"{amortised['fraction_of_peak']:.1%}", _num(v["memory"]["peak_rss_mb"], 0),
                         f"{v['speedup_vs_naive']:.2f}x", f"{v['speedup_vs_trainer']:.2f}x"])
    if rows:
        lines += ["Training (timed steps after warm-up; distilora student includes its amortised teacher-target share)"]
        lines += _table(["route", "variant", "samples/s", "useful tok/s", "padding", "GFLOP/s", "of peak",
                         "peak RSS MB", "vs naive", "vs Trainer"], rows)
        targets = next((entry["teacher_targets"] for entry in results["training"].values()
                        if "teacher_targets" in entry), None)
        if targets:
            lines.append(f"teacher-target pass: {targets['samples']} texts in {targets['seconds']:.2f} s "
                         f"({_num(targets['samples_per_s'])}/s, {targets['fraction_of_peak']:.1%} of peak), "
                         f"amortised over {targets['amortised_over_students']} students")
        lines.append("")
    rows = []
    for model, entry in results.get("inference", {}).items():
        for path, b in entry["batch"].items():
            latency = {"pipeline_default": entry["latency"]["pipeline"], "serving_predict": entry["latency"]["serving"]}
            lat = latency.get(path)
            rows.append([model, path, _num(b["samples_per_s"]), _num(b["useful_tokens_per_s"], 0),
                         f"{b['padding_fraction']:.0%}", _num(b["useful_gflops_per_s"]), f"{b['fraction_of_peak']:.1%}",
                         f"{lat['p50_ms']:.1f}" if lat else "", f"{lat['p99_ms']:.1f}" if lat else "",
                         _num(b["memory"]["peak_rss_mb"], 0)])
    if rows:
        lines += ["Inference (batch throughput; single-text latency on the pipeline-default and serving rows)"]
        lines += _table(["model", "path", "texts/s", "useful tok/s", "padding", "GFLOP/s", "of peak", "p50 ms",
                         "p99 ms", "peak RSS MB"], rows)
        lines.append("")
    quant = results.get("quantization")
    if quant:
        lines += [f"int8 dynamic quantization ({quant['model']}, serving path, CPU): batch speed "
                  f"{quant['batch_speed_ratio']:.2f}x, p50 latency speed {quant['latency_p50_speed_ratio']:.2f}x "
                  f"({quant['fp32']['latency']['p50_ms']:.1f} → {quant['int8']['latency']['p50_ms']:.1f} ms), "
                  f"prediction agreement {quant['prediction_agreement']:.1%} on {quant['samples']} texts, "
                  f"max |Δp| {quant['max_abs_probability_difference']:.3f}", ""]
    export = results.get("export")
    if export:
        lines += [f"PyTorch fp32 vs ONNX ({export['model']}, serving path, batch {export['batch_size']}, "
                  f"{export['samples']} texts; single text: median of {export['single_texts']} × {export['rounds']}; "
                  f"onnxruntime {export['onnxruntime']}, opset {export['opset']})"]
        lines += _table(["variant", "texts/s", "vs PyTorch", "single-text ms", "speed-up", "agreement", "max |Δp|"],
                        [[name, _num(v["throughput"]), f"{v['throughput_vs_pytorch']:.2f}x", f"{v['latency_ms']:.2f}",
                          f"{v['latency_speedup_vs_pytorch']:.2f}x", f"{v['agreement']:.2%}", f"{v['max_abs_dp']:.3f}"]
                         for name, v in export["variants"].items()])
        lines.append("")
    if "precision" in results:
        from benchmarks.precision import format_section

        lines += format_section(results["precision"])
    rows = [[t["name"], f"{t['value']:.3g} {t['unit']}", f"{t['comparison']} {t['required']:g}", f"{t['margin']:.2f}",
             "PASS" if t["pass"] else "FAIL"] for t in results.get("targets", [])]
    if rows:
        lines += ["Targets"] + _table(["target", "measured", "required", "margin", "result"], rows)
    return "\n".join(lines)
