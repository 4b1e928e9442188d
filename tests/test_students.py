"""Students are built from exact copies of the chosen teacher layers; impossible layer specs are refused early."""

from __future__ import annotations

import re

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from distilora.models.students import LayerSpecError, build_student, parse_layer_spec, student_name

LAYER_KEY = re.compile(r"^bert\.encoder\.layer\.(\d+)\.(.+)$")


def random_teacher(num_layers: int) -> BertForSequenceClassification:
    """A tiny random BERT whose layers all differ (so copying the wrong layer is detectable)."""
    torch.manual_seed(num_layers)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=2,
                        intermediate_size=48, max_position_embeddings=64, num_labels=3)
    return BertForSequenceClassification(config).eval()


@pytest.fixture(scope="module")
def teacher12():
    return random_teacher(12)


@pytest.fixture(scope="module")
def teacher6():
    return random_teacher(6)


def split_params(model) -> tuple[dict[int, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """``({layer index: {suffix: tensor}}, {other name: tensor})`` over named parameters *and* buffers."""
    layers: dict[int, dict[str, torch.Tensor]] = {}
    rest: dict[str, torch.Tensor] = {}
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        match = LAYER_KEY.match(name)
        if match:
            layers.setdefault(int(match.group(1)), {})[match.group(2)] = tensor
        else:
            rest[name] = tensor
    return layers, rest


def assert_exact_copy(student, teacher, expected_teacher_layers: list[int]) -> None:
    s_layers, s_rest = split_params(student)
    t_layers, t_rest = split_params(teacher)
    assert sorted(s_layers) == list(range(len(expected_teacher_layers)))
    assert student.config.num_hidden_layers == len(expected_teacher_layers)
    for student_index, teacher_layer in enumerate(expected_teacher_layers):
        source = t_layers[teacher_layer - 1]
        assert s_layers[student_index].keys() == source.keys()
        for suffix, tensor in s_layers[student_index].items():
            message = f"student layer {student_index}.{suffix} != teacher layer {teacher_layer}"
            assert torch.equal(tensor, source[suffix]), message
            assert tensor.data_ptr() != source[suffix].data_ptr(), "student must own a copy, not share the tensor"
        # ... and it is *not* equal to any other teacher layer (the check above can fail).
        for other in range(len(t_layers)):
            if other != teacher_layer - 1:
                weight = "attention.self.query.weight"
                assert not torch.equal(s_layers[student_index][weight], t_layers[other][weight])
    # Embeddings, pooler and classifier head are copied too.
    assert s_rest.keys() == t_rest.keys()
    assert any(k.startswith("bert.embeddings.") for k in s_rest)
    assert {"bert.pooler.dense.weight", "classifier.weight", "classifier.bias"} <= s_rest.keys()
    for name, tensor in s_rest.items():
        assert torch.equal(tensor, t_rest[name]), name


@pytest.mark.parametrize(
    ("depth", "spec", "expected"),
    [
        (12, "odd", [1, 3, 5, 7, 9, 11]),
        (12, "even", [2, 4, 6, 8, 10, 12]),
        (6, "odd", [1, 3, 5]),
        (6, "even", [2, 4, 6]),
        (6, "6,1", [6, 1]),
        (12, "12, 2 ,7", [12, 2, 7]),
    ],
)
def test_student_layers_are_exact_copies(depth, spec, expected, teacher12, teacher6):
    teacher = teacher12 if depth == 12 else teacher6
    layers = parse_layer_spec(spec, depth)
    assert layers == expected
    student = build_student(teacher, layers)
    assert_exact_copy(student, teacher, expected)
    assert student.config.distilora_layers == expected
    assert teacher.config.num_hidden_layers == depth, "building a student must not change the teacher's config"


def test_student_with_every_layer_in_order_is_the_teacher(teacher6):
    """Copying all layers 1..N must reproduce the teacher's logits exactly (nothing else is re-initialised)."""
    student = build_student(teacher6, parse_layer_spec("1,2,3,4,5,6", 6)).eval()
    inputs = {"input_ids": torch.tensor([[2, 17, 45, 99, 3], [2, 8, 3, 0, 0]]),
              "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])}
    with torch.no_grad():
        assert torch.equal(student(**inputs).logits, teacher6(**inputs).logits)
        reordered = build_student(teacher6, [2, 1, 3, 4, 5, 6]).eval()
        assert not torch.allclose(reordered(**inputs).logits, teacher6(**inputs).logits)


def test_student_is_independent_of_the_teacher(teacher6):
    student = build_student(teacher6, [1, 3, 5])
    before = teacher6.bert.encoder.layer[0].attention.self.query.weight.clone()
    with torch.no_grad():
        student.bert.encoder.layer[0].attention.self.query.weight.add_(1.0)
        student.classifier.weight.add_(1.0)
    assert torch.equal(teacher6.bert.encoder.layer[0].attention.self.query.weight, before)


def test_student_saves_and_reloads_with_its_layers(teacher6, tmp_path):
    from transformers import AutoModelForSequenceClassification

    build_student(teacher6, [6, 1]).save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert reloaded.config.num_hidden_layers == 2
    assert reloaded.config.distilora_layers == [6, 1]
    assert_exact_copy(reloaded, teacher6, [6, 1])


def test_layer_spec_parsing():
    assert parse_layer_spec("ODD", 4) == [1, 3]
    assert parse_layer_spec(" even ", 5) == [2, 4]
    assert parse_layer_spec("odd", 5) == [1, 3, 5]
    assert parse_layer_spec([4, 2], 4) == [4, 2]
    assert parse_layer_spec("1", 1) == [1]
    assert student_name("odd") == "odd"
    assert student_name("EVEN") == "even"
    assert student_name("6,1") == "layers-6-1"
    assert student_name("1, 4 ,6") == "layers-1-4-6"


@pytest.mark.parametrize(
    ("spec", "depth", "message"),
    [
        ("0", 12, r"\[0\] do not exist.*1\.\.12"),
        ("13", 12, r"\[13\] do not exist.*1\.\.12"),
        ("1,7", 6, r"\[7\] do not exist.*1\.\.6"),
        ("-1", 6, r"\[-1\] do not exist"),
        ("1,1", 6, "selected twice"),
        ("3,5,3", 6, "selected twice"),
        ("", 6, "empty layer spec"),
        ("   ", 6, "empty layer spec"),
        ([], 6, "empty layer spec"),
        ("abc", 6, r"'abc'.*odd, even or comma-separated"),
        ("1,,3", 6, "comma-separated"),
        ("1.5", 6, "comma-separated"),
        ("even", 1, "layer"),  # a 1-layer teacher has no even layer: must not build a 0-layer student
    ],
)
def test_impossible_layer_specs_raise(spec, depth, message):
    with pytest.raises(LayerSpecError, match=message) as error:
        parse_layer_spec(spec, depth)
    assert isinstance(error.value, ValueError)
    assert "\n" not in str(error.value)


def test_build_student_refuses_a_model_without_encoder_layers():
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=16, max_position_embeddings=16))
    model.config.num_hidden_layers = 5  # no ModuleList of 5 layers exists
    with pytest.raises(LayerSpecError, match="could not find its list of 5 encoder layers"):
        build_student(model, [1])
