"""The command line: flags reach the configuration, bad input is one line on stderr and exit status 2."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from distilora.cli import build_parser, main
from distilora.cli.run import config_from_args


def parse(*argv: str):
    return config_from_args(build_parser().parse_args(["run", *argv]))


def one_error_line(captured) -> str:
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


# ---- distilora run: impossible layer specs are refused before anything is trained --------------------------------

BAD_SPECS = ["0", "5", "1,1", "", "abc", "2,,3"]  # the tiny teacher has 4 layers


@pytest.mark.parametrize("spec", BAD_SPECS)
def test_run_refuses_bad_layer_spec_before_training(spec, tiny_teacher, tiny_dataset, tmp_path, capsys):
    output = tmp_path / "run"
    code = main(["run", "--dataset", str(tiny_dataset), "--teacher", str(tiny_teacher), "--output-dir", str(output),
                 "--layers", "odd", "--layers", spec, "--epochs", "1"])
    line = one_error_line(capsys.readouterr())
    assert code == 2
    assert line.startswith("distilora run: error: ") and "layer" in line
    assert not output.exists(), "nothing may be written (let alone trained) before the specs are checked"


def test_run_subprocess_exit_status_and_single_stderr_line(tiny_teacher, tiny_dataset, tmp_path):
    """The real process: exit status 2, exactly one line on stderr, nothing on stdout."""
    output = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "distilora.cli", "run", "--dataset", str(tiny_dataset), "--teacher", str(tiny_teacher),
         "--output-dir", str(output), "--layers", "2,9"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "distilora run: error: layer spec '2,9': layers [9] do not exist; the teacher has 1..4"
    ]
    assert proc.stdout == ""
    assert not output.exists()


def test_run_reports_data_errors_in_one_line(tiny_teacher, tmp_path, capsys):
    from conftest import make_dataset

    dataset = make_dataset(tmp_path / "data")
    (dataset / "test.csv").unlink()
    code = main(["run", "--dataset", str(dataset), "--teacher", str(tiny_teacher), "--output-dir",
                 str(tmp_path / "run")])
    line = one_error_line(capsys.readouterr())
    assert code == 2
    assert line.startswith(f"distilora run: error: {dataset}: no test split found")


@pytest.mark.parametrize("flags", [["--w-ce", "-1"], ["--w-ce", "0", "--w-kd", "0", "--w-cos", "0"]])
def test_run_refuses_bad_distillation_weights(flags, capsys):
    assert main(["run", *flags]) == 2
    assert "distillation weights" in one_error_line(capsys.readouterr())


@pytest.mark.parametrize("flags", [["--epochs", "0"], ["--temperature", "-2"], ["--max-train-samples", "0"],
                                   ["--lora-r", "0"], ["--batch-size", "x"]])
def test_run_argparse_refuses_non_positive_numbers(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["run", *flags])
    assert exit_info.value.code == 2
    assert flags[0] in capsys.readouterr().err


# ---- distilora run: flags → ExperimentConfig ---------------------------------------------------------------------

def test_run_defaults_are_the_config_defaults():
    """The CLI restates no default: with no flags it gives exactly ExperimentConfig(), and --help shows them."""
    from distilora.config import ExperimentConfig

    assert parse() == ExperimentConfig()
    defaults = ExperimentConfig()
    help_text = build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    help_text = " ".join(help_text.split())
    for shown in (f"--lora-r LORA_R adapter rank (default: {defaults.lora.r})", "(default: query,value)",
                  f"T of the KL term (default: {defaults.distillation.temperature})",
                  f"(default: teacher {defaults.teacher_training.epochs:g}, "
                  f"students {defaults.student_training.epochs:g}"):
        assert shown in help_text, shown
    assert "(default: None)" not in help_text and "(default: False)" not in help_text


def subcommand(name: str):
    return build_parser()._subparsers._group_actions[0].choices[name]


def field_value(config, path: tuple[str, ...]):
    for name in path:
        config = getattr(config, name)
    return config


def test_every_experiment_config_field_is_a_flag_or_marked_as_not_an_option():
    from distilora.cli.options import field_options, unmarked_fields
    from distilora.config import ExperimentConfig

    assert list(unmarked_fields(ExperimentConfig)) == []
    flags = subcommand("run")._option_string_actions
    options = list(field_options(ExperimentConfig))
    assert all(option.flag in flags for option in options)
    reached = {option.path for option in options}
    assert {("data", "dataset"), ("num_seeds",), ("students",), ("lora", "target_modules"), ("measure_speed",),
            ("calibration", "target_recall"), ("distillation", "w_hidden")} <= reached
    assert flags["--lora-targets"].dest == "lora_targets" and "--no-speed" in flags and "--seeds" in flags


# Each sub-command whose options restate a config dataclass, with the arguments it requires.
CONFIG_COMMANDS = [("run", "ExperimentConfig", []), ("score", "ScoreConfig", ["--run", "r", "--input", "i",
                                                                                  "--output", "o"]),
                   ("serve", "ServeConfig", []), ("export", "ExportConfig", ["--run", "r", "--model", "odd"]),
                   ("check", "CheckConfig", ["--run", "r", "--suite", "s.csv"])]


@pytest.mark.parametrize(("command", "config_name", "required"), CONFIG_COMMANDS)
def test_the_defaults_argparse_gives_are_the_dataclass_defaults(command, config_name, required):
    import distilora.config
    from distilora.cli.options import dataclass_from_args, field_options

    config_class = getattr(distilora.config, config_name)
    defaults = config_class()
    args = build_parser().parse_args([command, *required])
    options = list(field_options(config_class))
    assert options
    for option in options:
        assert option.value(args) == field_value(defaults, option.path), option.flag
    kept = {"allowed_hosts": defaults.allowed_hosts} if command == "serve" else {}
    assert dataclass_from_args(config_class, args, kept) == defaults


def test_run_flags_reach_the_configuration():
    config = parse(
        "--dataset", "/data/x", "--text-column", "tweet", "--label-column", "class", "--max-train-samples", "200",
        "--max-eval-samples", "100", "--max-length", "64", "--teacher", "/models/t", "--output-dir", "/out",
        "--layers", "6,1", "--layers", "first", "--routes", "odd, tfidf,all", "--lora-variant", "dora",
        "--student-depth", "2", "--class-weight", "balanced", "--seed", "7", "--epochs", "1.5", "--batch-size", "8",
        "--w-ce", "0.5", "--w-kd", "0.25", "--w-cos", "0.25", "--temperature", "3", "--w-hidden", "2", "--lora-r", "4",
        "--lora-alpha", "8", "--lora-dropout", "0.0", "--lora-targets", "query, key ,value,",
    )
    data = config.data
    assert (data.dataset, data.text_column, data.label_column) == ("/data/x", "tweet", "class")
    assert (data.max_train_samples, data.max_eval_samples, data.max_length) == (200, 100, 64)
    assert (config.teacher, config.output_dir, config.seed) == ("/models/t", "/out", 7)
    assert config.students == ("6,1", "first") and config.routes == ("odd", "tfidf", "all", "lora-dora")
    assert (config.student_depth, config.class_weight) == (2, "balanced")
    for training in (config.teacher_training, config.student_training, config.lora_training):
        assert (training.epochs, training.batch_size) == (1.5, 8)
    d = config.distillation
    assert (d.w_ce, d.w_kd, d.w_cos, d.temperature, d.w_hidden) == (0.5, 0.25, 0.25, 3.0, 2.0)
    assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (4, 8, 0.0)
    assert config.lora.target_modules == ("query", "key", "value")


def test_operating_point_flags_reach_the_configuration_and_are_checked(capsys):
    assert parse("--target-precision", "0.9").calibration.target_precision == 0.9
    assert parse("--target-recall", "1").calibration.target_recall == 1.0
    assert parse().calibration.target_precision is None and parse().calibration.target_recall is None
    for flags, phrase in ((["--target-precision", "0"], "must be in (0, 1]"),
                          (["--target-recall", "1.2"], "must be in (0, 1]"),
                          (["--target-recall", "high"], "must be a number in (0, 1]"),
                          (["--target-precision", "0.9", "--target-recall", "0.8"], "not allowed with argument")):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(["run", *flags])
        assert exit_info.value.code == 2
        assert phrase in capsys.readouterr().err, flags


def test_default_output_dir_is_named_after_the_dataset():
    assert str(parse("--dataset", "../shared/datasets/tweet_eval_hate/").resolved_output_dir()) == \
        "runs/tweet_eval_hate"


# ---- distilora predict -------------------------------------------------------------------------------------------

def test_predict_prints_one_json_line_per_text(tiny_run, capsys):
    assert main(["-q", "predict", "--run", str(tiny_run), "--model", "even", "hello there", "you are " * 40]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    answers = [json.loads(line) for line in lines]
    assert [a["text"] for a in answers] == ["hello there", "you are " * 40]
    for answer in answers:
        assert answer["label"] in ("neutral", "toxic")
        assert sum(answer["scores"].values()) == pytest.approx(1.0, abs=1e-6)
        assert answer["threshold"] is not None and answer["calibrated"] is True
        assert answer["label"] == ("toxic" if answer["scores"]["toxic"] >= answer["threshold"] else "neutral")
    assert [a["windows"] > 1 for a in answers] == [False, True]  # the long text is read whole, in windows
    assert [a["truncated"] for a in answers] == [False, False]


def test_predict_says_which_threshold_it_applies_and_argmax_skips_it(tiny_run, capsys):
    from distilora import load_classifier

    calibration = load_classifier(tiny_run, "odd").calibration
    assert main(["-q", "predict", "--run", str(tiny_run), "--model", "odd", "hello there"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == f"odd: {calibration.describe()}"
    assert f"P(toxic) ≥ {calibration.threshold:.3f}" in captured.err
    assert json.loads(captured.out)["threshold"] == calibration.threshold
    assert main(["-q", "predict", "--run", str(tiny_run), "--model", "odd", "--argmax", "hello there"]) == 0
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert (answer["threshold"], answer["calibrated"]) == (None, False) and "argmax" in captured.err
    assert answer["label"] == max(answer["scores"], key=answer["scores"].get)


def test_predict_reads_stdin(tiny_run, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("first text\n\n   \nsecond text\n"))
    assert main(["predict", "--run", str(tiny_run)]) == 0
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == ["first text", "second text"]


def test_predict_errors(tiny_run, capsys, monkeypatch):
    assert main(["predict", "--run", str(tiny_run), "--model", "nope", "x"]) == 2
    assert "no saved model here" in one_error_line(capsys.readouterr())
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["predict", "--run", str(tiny_run)]) == 2
    assert "no text given" in one_error_line(capsys.readouterr())
