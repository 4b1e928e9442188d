"""``--precision fp32|bf16|auto``: resolution on hardware with and without native bf16, the one-line refusal,
separate fingerprints and teacher-target caches, and bf16 training / inference on the tiny models."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_experiment_config
from safetensors.torch import load_file

from distilora import precision
from distilora.cli import main
from distilora.config import DataConfig, ExperimentConfig, TrainConfig
from distilora.precision import BF16, FP32, native_bf16, resolve_precision
from distilora.routes import RouteSetup, create_route
from distilora.run_dir import StageStore, fingerprint
from distilora.training.teacher_targets import CACHE_FORMAT, cache_key

needs_native_bf16 = pytest.mark.skipif(not native_bf16("cpu"),
                                       reason="this CPU has no native bf16 (avx512_bf16 / amx_bf16)")


@pytest.fixture
def without_native_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)


@pytest.fixture
def with_native_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)


# ---- resolution ------------------------------------------------------------------------------------------------

def test_auto_is_bf16_exactly_where_it_is_native(monkeypatch):
    for native, expected in ((True, BF16), (False, FP32)):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda native=native: native)
        assert resolve_precision("auto", "cpu") == expected
        assert resolve_precision("fp32", "cpu") == FP32


def test_bf16_is_used_where_native(with_native_bf16):
    assert resolve_precision("bf16", "cpu") == BF16


def test_bf16_without_native_support_is_refused_not_emulated(without_native_bf16):
    with pytest.raises(ValueError, match=r"--precision bf16: .*no native bf16.*use --precision fp32 or auto"):
        resolve_precision("bf16", "cpu")
    with pytest.raises(ValueError, match="choose from fp32, bf16, auto"):
        resolve_precision("fp16", "cpu")


def test_native_check_wants_bf16_flags_not_plain_avx512(monkeypatch):
    """AVX512 alone lets oneDNN emulate bf16 (slowly): that is not native."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq"}))
    assert not precision.cpu_has_native_bf16()
    for flag in ("avx512_bf16", "amx_bf16", "bf16"):
        monkeypatch.setattr(precision, "cpu_flags", lambda flag=flag: frozenset({"avx512f", flag}))
        assert precision.cpu_has_native_bf16(), flag


def test_config_and_presets():
    assert ExperimentConfig().precision == "auto", "bf16 where native: the full default run stayed inside fp32's CIs"
    with pytest.raises(ValueError, match="--precision 'fp16'"):
        ExperimentConfig(precision="fp16")
    config = ExperimentConfig(precision=FP32)
    config.apply_preset("gpu")
    assert config.precision == FP32 and config.teacher_training.epochs == 3, "the preset leaves precision alone"


# ---- the command line --------------------------------------------------------------------------------------------

def test_cli_precision_flag_and_preset(tmp_path):
    from distilora.cli import build_parser
    from distilora.cli.run import config_from_args

    def parse(*argv):
        return config_from_args(build_parser().parse_args(["run", *argv]))

    assert parse().precision == "auto"
    assert parse("--precision", "fp32").precision == FP32
    assert parse("--preset", "gpu").precision == "auto"
    assert parse("--preset", "gpu", "--precision", "fp32").precision == FP32, "an explicit option wins"


def test_cli_bf16_without_native_support_is_one_line(without_native_bf16, tiny_teacher, tiny_dataset, tmp_path,
                                                     capsys):
    output = tmp_path / "run"
    code = main(["run", "--precision", "bf16", "--dataset", str(tiny_dataset), "--teacher", str(tiny_teacher),
                 "--output-dir", str(output)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("distilora run: error: --precision bf16: "), lines
    assert not output.exists(), "refused before anything is written"


@pytest.mark.parametrize("argv", [["predict", "--model", "odd", "some text"], ["serve"]])
def test_cli_predict_and_serve_bf16_without_native_support_is_one_line(argv, without_native_bf16, tmp_path, capsys):
    code = main([*argv, "--run", str(tmp_path), "--precision", "bf16"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"distilora {argv[0]}: error: --precision bf16"), lines


# ---- fingerprints and the teacher-target cache --------------------------------------------------------------------

def _context(precision_name: str = FP32, world_size: int = 1) -> SimpleNamespace:
    return SimpleNamespace(config=ExperimentConfig(), data_fingerprint="data", precision=precision_name,
                           world_size=world_size, teacher_identity=lambda: ("teacher-fp", "teacher-weights"),
                           class_weight="none", multi_label=False)


@pytest.mark.parametrize("name", ["teacher", "odd", "lora"])
def test_bf16_and_multi_process_stages_are_other_stages(name):
    route = create_route(name, RouteSetup(4, 2))
    fp32 = route.fingerprint(_context(), 42)
    assert fp32 == fingerprint(*route.fingerprint_parts(_context()), "none", 42), \
        "fp32 in one process keeps the fingerprint stages had before precisions existed (they are reused)"
    others = {route.fingerprint(_context(BF16), 42), route.fingerprint(_context(world_size=2), 42),
              route.fingerprint(_context(BF16, 2), 42)}
    assert len(others) == 3 and fp32 not in others


def test_text_baselines_do_not_depend_on_precision():
    route = create_route("tfidf", RouteSetup(4, 2))
    assert route.fingerprint(_context(), 42) == route.fingerprint(_context(BF16, 2), 42)


def test_teacher_target_cache_key_separates_precisions():
    fp32 = cache_key("weights", "data", 128, FP32)
    assert fp32 == fingerprint("weights", "data", 128, CACHE_FORMAT), "fp32 caches written before stay valid"
    assert cache_key("weights", "data", 128, BF16) != fp32


# ---- bf16 on the tiny models -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bf16_trained(tiny_teacher, tiny_dataset, tmp_path_factory):
    """The tiny teacher fine-tuned with the Trainer's bf16 (lr and epochs high enough for it to learn the toy task);
    the dtypes its classifier head produced during training."""
    from distilora.data import encode_splits, load_task_data
    from distilora.models import load_pretrained_classifier, load_tokenizer
    from distilora.training import train_model
    from distilora.training.losses import CrossEntropyObjective

    if not native_bf16("cpu"):
        pytest.skip("this CPU has no native bf16 (avx512_bf16 / amx_bf16)")
    task = load_task_data(DataConfig(dataset=str(tiny_dataset), max_length=32))
    tokenizer = load_tokenizer(str(tiny_teacher))
    encoded = encode_splits(task.splits, tokenizer, 32)
    torch.manual_seed(0)
    model = load_pretrained_classifier(str(tiny_teacher), task.labels)
    produced = set()
    hook = model.classifier.register_forward_hook(lambda module, args, output: produced.add(output.dtype))
    config = TrainConfig(epochs=3, learning_rate=1e-2, batch_size=8, eval_batch_size=32, logging_steps=2,
                         evals_per_epoch=1)
    result = train_model(model, tokenizer, encoded["train"], encoded["validation"], CrossEntropyObjective(), config,
                         tmp_path_factory.mktemp("bf16-train"), 0, task.labels, precision=BF16)
    hook.remove()
    return result, produced, task, tokenizer


def test_bf16_training_learns_with_fp32_master_weights(bf16_trained):
    result, produced, _, _ = bf16_trained
    assert produced == {torch.bfloat16}, "the forward pass ran under bf16 autocast"
    assert {p.dtype for p in result.model.parameters()} == {torch.float32}, "weights (and optimizer) stay fp32"
    losses = [entry["loss"] for entry in result.history if "loss" in entry]
    assert losses[-1] < 0.5 * losses[0], losses  # starts at ln 2 ≈ 0.69: a model that learns nothing stays there
    assert max(e["eval_macro_f1"] for e in result.history if "eval_macro_f1" in e) >= 0.9


def test_bf16_inference_agrees_with_fp32(bf16_trained):
    from distilora.inference import TorchClassifier

    result, _, task, tokenizer = bf16_trained
    texts = list(task.splits["validation"]["text"]) + list(task.splits["test"]["text"])
    fp32 = TorchClassifier(result.model, tokenizer, precision=FP32).predict_proba(texts)
    bf16 = TorchClassifier(result.model, tokenizer, precision=BF16).predict_proba(texts)
    assert bf16.dtype == fp32.dtype
    assert (fp32.argmax(1) == bf16.argmax(1)).mean() >= 0.95
    assert abs(fp32 - bf16).max() < 0.05
    assert not (fp32 == bf16).all(), "bf16 was really used"


@needs_native_bf16
def test_bf16_run_records_its_precision_everywhere(tiny_teacher, tiny_dataset, tmp_path):
    from distilora import run_experiment

    output = tmp_path / "run"
    results = run_experiment(tiny_experiment_config(tiny_dataset, tiny_teacher, output, precision="auto",
                                                routes=("odd", "tfidf"), report=False, measure_speed=True))
    assert results["precision"] | {"cpu_flags": None} == {
        "requested": "auto", "resolved": BF16, "device": "cpu", "native_bf16": True, "cpu": precision.cpu_name(),
        "cpu_flags": None}
    assert {"avx512_bf16", "amx_bf16"} & set(results["precision"]["cpu_flags"])
    assert {name: entry["precision"] for name, entry in results["models"].items()} == \
        {"teacher": BF16, "odd": BF16, "tfidf": None}
    assert json.loads((output / "odd" / "stage.json").read_text())["precision"] == BF16
    # Timed as `distilora serve` runs the models by default (fp32): bf16 is slower on single texts.
    assert results["speed"]["precision"] == FP32
    assert {name: s["precision"] for name, s in results["speed"]["models"].items()} == \
        {"teacher": FP32, "odd": FP32, "tfidf": None}
    weights = load_file(output / "odd" / "model.safetensors")
    assert {tensor.dtype for tensor in weights.values()} == {torch.float32}, "saved in fp32"
    key = cache_key(StageStore.weights_hash(output / "teacher"), results["data_fingerprint"], 32, BF16)
    assert [p.name for p in (output / ".cache").iterdir()] == [f"teacher-targets-{key}.safetensors"]
