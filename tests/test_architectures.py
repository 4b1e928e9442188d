"""Layer surgery and LoRA targets work for any encoder teacher in the table, not only BERT."""

from __future__ import annotations

import peft
import pytest
import torch
from peft.tuners.lora import LoraLayer
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel

from distilora.models import LayerSpecError, build_student, lora_target_modules, parse_layer_spec
from distilora.models.architectures import ARCHITECTURES
from distilora.models.students import encoder_layers_prefix

DEPTH = 4
SMALL = {"vocab_size": 1000, "max_position_embeddings": 64, "num_labels": 2}
BERT_LIKE = {"hidden_size": 32, "num_hidden_layers": DEPTH, "num_attention_heads": 2, "intermediate_size": 37}

# model type -> (config kwargs, attention q and v module paths inside one layer: checked independently of the table)
CASES = {
    "bert": (BERT_LIKE, ("attention.self.query", "attention.self.value")),
    "roberta": (BERT_LIKE, ("attention.self.query", "attention.self.value")),
    "distilbert": (
        {"dim": 32, "n_layers": DEPTH, "n_heads": 2, "hidden_dim": 37}, ("attention.q_lin", "attention.v_lin")
    ),
    "mpnet": (BERT_LIKE, ("attention.attn.q", "attention.attn.v")),
    "electra": ({**BERT_LIKE, "embedding_size": 16}, ("attention.self.query", "attention.self.value")),
    "deberta-v2": (  # DeBERTa-v3 style: relative attention with shared, normalised relative embeddings and a conv
        {**BERT_LIKE, "relative_attention": True, "pos_att_type": ["p2c", "c2p"], "position_buckets": 16,
         "norm_rel_ebd": "layer_norm", "share_att_key": True, "position_biased_input": False, "conv_kernel_size": 3},
        ("attention.self.query_proj", "attention.self.value_proj"),
    ),
}
# Encoder-level modules shared by all layers (must be copied into the student unchanged).
SHARED = {
    "mpnet": "mpnet.encoder.relative_attention_bias.weight",
    "deberta-v2": "deberta.encoder.rel_embeddings.weight",
}


def random_teacher(model_type: str) -> PreTrainedModel:
    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, **SMALL, **CASES[model_type][0])
    return AutoModelForSequenceClassification.from_config(config).eval()


def random_batch(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, SMALL["vocab_size"], (4, 12), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 8:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@pytest.fixture(scope="module", params=list(CASES))
def teacher(request) -> PreTrainedModel:
    return random_teacher(request.param)


@pytest.mark.parametrize("spec", ["odd", "even"])
def test_student_copies_layers_trains_and_reloads(teacher, spec, tmp_path):
    model_type = teacher.config.model_type
    q_path = CASES[model_type][1][0]
    layers = parse_layer_spec(spec, DEPTH)
    student = build_student(teacher, layers)

    prefix = encoder_layers_prefix(student)
    assert prefix == f"{teacher.base_model_prefix}.{ARCHITECTURES[model_type].layers}"  # the table, not the search
    student_layers, teacher_layers = student.get_submodule(prefix), teacher.get_submodule(prefix)
    assert len(student_layers) == len(layers) == 2
    for index, teacher_layer in enumerate(layers):
        weight = student_layers[index].get_submodule(q_path).weight
        assert torch.equal(weight, teacher_layers[teacher_layer - 1].get_submodule(q_path).weight)
        for other in set(range(DEPTH)) - {teacher_layer - 1}:
            assert not torch.equal(weight, teacher_layers[other].get_submodule(q_path).weight)
    if model_type in SHARED:
        assert torch.equal(student.state_dict()[SHARED[model_type]], teacher.state_dict()[SHARED[model_type]])

    student.train()
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3)
    for step in range(2):
        loss = student(**random_batch(step), labels=torch.tensor([0, 1, 1, 0])).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    student.eval()

    student.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(reloaded) is type(student)
    assert reloaded.config.distilora_layers == layers
    assert len(reloaded.get_submodule(prefix)) == len(layers)
    batch = random_batch(7)
    with torch.no_grad():
        assert torch.equal(reloaded(**batch).logits, student(**batch).logits)


def test_lora_targets_are_the_attention_query_and_value(teacher):
    model_type = teacher.config.model_type
    targets = lora_target_modules(teacher, ("query", "value"))
    model = AutoModelForSequenceClassification.from_config(teacher.config)  # get_peft_model changes its model
    config = peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=2, target_modules=targets)
    adapted = [name for name, module in peft.get_peft_model(model, config).named_modules()
               if isinstance(module, LoraLayer)]
    prefix = encoder_layers_prefix(teacher)
    expected = [f"{prefix}.{i}.{path}" for i in range(DEPTH) for path in CASES[model_type][1]]
    assert sorted(name.removeprefix("base_model.model.") for name in adapted) == sorted(expected)
    assert len(adapted) == 2 * DEPTH


def test_lora_target_names_map_and_pass_through(teacher):
    model_type = teacher.config.model_type
    q_name, v_name = (path.rsplit(".", 1)[-1] for path in CASES[model_type][1])
    assert lora_target_modules(teacher, ("query", "value")) == [q_name, v_name]
    assert lora_target_modules(teacher, (q_name, v_name, "query")) == [q_name, v_name]  # same module once
    assert len(lora_target_modules(teacher, ("key",))) == 1
    peft_default = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    if peft_default:  # the table agrees with PEFT's own defaults where PEFT has one
        assert [q_name, v_name] == list(peft_default)


def test_unknown_lora_target_is_a_clear_error():
    model = random_teacher("mpnet")
    with pytest.raises(ValueError, match=r"LoRA target 'qeury' matches no module of this mpnet model.*\bq\b.*\bv\b"):
        lora_target_modules(model, ("qeury", "value"))
    with pytest.raises(ValueError, match="'dense' matches no module of this distilbert"):
        lora_target_modules(random_teacher("distilbert"), ("dense",))


class ToyConfig(PretrainedConfig):
    model_type = "toy-encoder"

    def __init__(self, num_hidden_layers: int = 3, **kwargs):
        self.num_hidden_layers = num_hidden_layers
        super().__init__(**kwargs)


class ToyModel(PreTrainedModel):
    config_class = ToyConfig

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.blocks = torch.nn.Sequential(*(torch.nn.Linear(4, 4) for _ in range(config.num_hidden_layers)))


def test_model_without_a_findable_layer_list_is_a_clear_error():
    assert "toy-encoder" not in ARCHITECTURES
    with pytest.raises(LayerSpecError, match=r"model type 'toy-encoder'.*3 encoder layers.*ARCHITECTURES") as error:
        build_student(ToyModel(ToyConfig()), [1])
    assert "\n" not in str(error.value)
