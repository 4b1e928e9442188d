"""The benchmark (benchmarks/): the FLOP counter, the padding of each variant, a ``--quick`` run's JSON (no
timings)."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch

from benchmarks.flops import ModelShape, count_flops, forward_flops, training_flops
from benchmarks.inference import padded_tokens
from benchmarks.sample import naive_loader
from distilora.config import INT8_VARIANTS

TEXTS = ["hi", "you are so kind and the garden is sunny today", "coffee with friends", "a " * 40 + "long one"]


def tiny_classifier():
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2)
    return BertForSequenceClassification(config)


def test_flop_counter_matches_hand_computation():
    shape = ModelShape.of(tiny_classifier())
    assert shape == ModelShape(hidden=32, intermediate=64, layers=4, num_labels=2)
    # h=32, i=64, 4 layers, 2 labels; sequences of 5 and 7 real tokens.
    dense_per_token_layer = 2 * (4 * 32 * 32 + 2 * 32 * 64)  # 16,384
    seq5 = 4 * (5 * dense_per_token_layer + 2 * 2 * 5 * 5 * 32) + 2 * 32 * 32 + 2 * 32 * 2  # 340,480 + 2,176
    seq7 = 4 * (7 * dense_per_token_layer + 2 * 2 * 7 * 7 * 32) + 2 * 32 * 32 + 2 * 32 * 2  # 483,840 + 2,176
    assert seq5 + seq7 == 828_672
    assert forward_flops(shape, [5, 7]) == 828_672
    assert training_flops(shape, [5, 7]) == 3 * 828_672


def test_flop_counter_counts_lora_adapters_and_frozen_base():
    from peft import LoraConfig, TaskType, get_peft_model

    model = get_peft_model(tiny_classifier(), LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8,
                                                         target_modules=["query", "value"]))
    shape = ModelShape.of(model)
    assert shape.lora_per_token == 4 * 2 * 2 * 4 * (32 + 32)  # layers × modules × 2·r·(in+out) = 4,096
    flops = count_flops(shape, [5, 7])
    assert (flops.dense, flops.attention, flops.adapters, flops.head) == (786_432, 37_888, 12 * 4_096, 2 * 2_176)
    # Frozen base: dense weights 2× forward, attention / adapters / head 3×.
    assert training_flops(shape, [5, 7], frozen_base=True) == 2 * 786_432 + 3 * (37_888 + 49_152 + 4_352)
    assert ModelShape.of(model.merge_and_unload()).lora_per_token == 0


def test_naive_batches_pad_to_128_while_distilora_pads_to_the_batch_max(tiny_teacher):
    from transformers import AutoTokenizer

    from distilora.training.trainer import TeacherTargetCollator

    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    lengths = [len(ids) for ids in tokenizer(TEXTS)["input_ids"]]
    batches = list(naive_loader(tokenizer, TEXTS, [0, 1, 0, 1], batch_size=3, max_length=128, seed=0))
    assert [len(b["labels"]) for b in batches] == [3, 1]
    for batch in batches:
        assert batch["input_ids"].shape[1] == 128 and batch["attention_mask"].shape[1] == 128
    assert sorted(int(n) for b in batches for n in b["attention_mask"].sum(dim=1)) == sorted(lengths)

    encoded = tokenizer(TEXTS[:3])
    features = [{k: encoded[k][i] for k in encoded} | {"labels": i % 2} for i in range(3)]
    batch = TeacherTargetCollator(tokenizer)(features)
    assert batch["input_ids"].shape[1] == max(lengths[:3]) < 128
    assert batch["attention_mask"].sum().item() == sum(lengths[:3])
    assert padded_tokens([3, 5, 2], batch_size=2) == 2 * 5 + 1 * 2
    assert padded_tokens([3, 5, 2], batch_size=2, pad_to=128) == 3 * 128


def _positive_numbers(entry: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        assert entry[key] > 0, key


@pytest.fixture(scope="module")
def quick_bench(tiny_teacher, tiny_dataset, tmp_path_factory) -> tuple[dict, str]:
    """One ``python -m benchmarks --quick`` run (tiny sizes, 1 thread); its JSON and what it printed."""
    from benchmarks.__main__ import main

    output = tmp_path_factory.mktemp("bench") / "bench.json"
    threads = torch.get_num_threads()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["--quick", "--dataset", str(tiny_dataset), "--teacher", str(tiny_teacher),
                     "--output", str(output), "--steps", "2", "--batch-size", "8", "--infer-samples", "32",
                     "--latency-samples", "4", "--threads", "1"])
    assert code == 0
    assert torch.get_num_threads() == threads  # --threads is undone when the bench returns
    return json.loads(output.read_text()), printed.getvalue()


def test_quick_bench_writes_every_section(quick_bench):
    results, printed = quick_bench
    assert {"meta", "methods", "peak", "training", "inference", "quantization", "export", "targets"} <= set(results)
    assert results["meta"]["options"]["quick"] is True
    flags = results["meta"]["cpu_flags"]
    assert isinstance(flags, list) and flags == sorted(flags) and all(isinstance(f, str) for f in flags)
    assert "2*2*n^2*h" in results["methods"]["flops"] and "RSS" in results["methods"]["memory"]
    _positive_numbers(results["peak"], ("gflops", "best_seconds", "threads"))

    assert {name: entry["kind"] for name, entry in results["training"].items()} == \
        {"teacher": "fine-tune", "odd": "distil", "lora": "lora"}, "the registry's routes, by their names"
    for route in ("teacher", "odd", "lora"):
        for variant in ("naive", "trainer", "distilora"):
            entry = results["training"][route][variant]
            assert entry["steps"] == 2 and entry["samples"] == 16
            _positive_numbers(entry, ("seconds", "samples_per_s", "useful_tokens_per_s", "useful_gflops_per_s",
                                      "fraction_of_peak", "speedup_vs_naive", "speedup_vs_trainer"))
            _positive_numbers(entry["memory"], ("peak_rss_mb",))
        naive, distilora = results["training"][route]["naive"], results["training"][route]["distilora"]
        assert naive["executed_tokens"] == naive["samples"] * 128  # padded to 128
        assert distilora["executed_tokens"] < naive["executed_tokens"]  # padded to each batch's longest
    assert results["training"]["lora"]["distilora"]["shape"]["lora_per_token"] > 0
    student = results["training"]["odd"]
    _positive_numbers(student["teacher_targets"], ("seconds", "samples", "useful_gflops_per_s"))
    assert student["distilora"]["amortised"]["seconds"] > student["distilora"]["seconds"]

    for model in ("teacher", "odd", "even", "lora"):
        entry = results["inference"][model]
        for path in ("pipeline_pad128", "pipeline_default", "serving_predict", "serving_forward"):
            _positive_numbers(entry["batch"][path], ("samples_per_s", "useful_tokens_per_s", "fraction_of_peak"))
        for path in ("pipeline", "serving"):
            _positive_numbers(entry["latency"][path], ("p50_ms", "p99_ms"))
    assert results["inference"]["odd"]["shape"]["layers"] == results["inference"]["teacher"]["shape"]["layers"] // 2

    quant = results["quantization"]
    _positive_numbers(quant, ("batch_speed_ratio", "latency_p50_speed_ratio"))
    assert 0 <= quant["prediction_agreement"] <= 1

    export = results["export"]
    assert export["model"] == "odd" and export["batch_size"] == 64 and export["samples"] == 32
    assert set(export["variants"]) == {"pytorch-fp32", "onnx-fp32", *(f"onnx-int8-{v}" for v in INT8_VARIANTS)}
    for entry in export["variants"].values():
        _positive_numbers(entry, ("throughput", "latency_ms", "throughput_vs_pytorch", "latency_speedup_vs_pytorch"))
        assert 0 <= entry["agreement"] <= 1
    assert export["variants"]["pytorch-fp32"]["agreement"] == 1.0
    assert export["variants"]["onnx-fp32"]["agreement"] == 1.0  # the same function, exported
    assert export["variants"]["onnx-fp32"]["max_abs_dp"] < 1e-4
    assert export["int8_choice"].startswith("onnx-int8-")

    targets = {t["name"]: t for t in results["targets"]}
    assert set(targets) == {"distillation_vs_naive", "distillation_vs_trainer", "teacher_inference_fraction_of_peak",
                            "student_vs_teacher_inference", "student_latency_p50", "onnx_int8_latency_vs_pytorch",
                            "onnx_int8_agreement"}
    for target in targets.values():
        _positive_numbers(target, ("value", "required", "margin"))
        assert target["pass"] == (target["margin"] >= 1)

    assert "Targets" in printed and "distillation_vs_naive" in printed and "Saved to" in printed
    assert "PyTorch fp32 vs ONNX (odd" in printed and "onnx-int8-per-channel" in printed and "CPU flags:" in printed


def test_quick_bench_compares_fp32_and_bf16(quick_bench):
    from distilora.precision import native_bf16

    results, printed = quick_bench
    section = results["precision"]
    assert results["meta"]["cpu_flags"] == section["cpu_flags"]
    assert "fp32 vs bf16" in printed
    if not native_bf16("cpu"):
        assert section["native_bf16"] is False and "emulated" in section["skipped"]
        assert section["training"] == {} and section["inference"] == {}
        return
    assert {"avx512_bf16", "amx_bf16"} & set(section["cpu_flags"])
    assert section["peak_bf16"]["dtype"] == "bfloat16" and section["peak_bf16"]["gflops"] > 0
    assert set(section["training"]) == {"teacher", "odd", "lora"}
    for entry in section["training"].values():
        for precision in ("fp32", "bf16"):
            assert entry[precision]["steps"] == 2
            _positive_numbers(entry[precision], ("useful_tokens_per_s", "fraction_of_peak"))
        assert entry["speedup"] > 0 and entry["bf16"]["fraction_of_bf16_peak"] > 0
    assert section["training"]["odd"]["teacher_targets_bf16"]["samples"] == 24
    assert set(section["inference"]) == {"teacher", "odd", "even", "lora"}
    for entry in section["inference"].values():
        _positive_numbers(entry["fp32"], ("samples_per_s",))
        _positive_numbers(entry["bf16"], ("samples_per_s",))
        assert 0 <= entry["label_agreement"] <= 1 and entry["max_abs_probability_difference"] >= 0
        assert entry["samples"] == 32
