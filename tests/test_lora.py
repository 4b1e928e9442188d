"""LoRA trains only the adapters and the classification head, and the merged saved model predicts like PEFT."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from distilora.config import LoraConfig
from distilora.routes.lora import build_lora_model, save_lora

HIDDEN, INTERMEDIATE, LAYERS = 32, 64, 4  # the tiny teacher of conftest
LABELS = ["neutral", "toxic", "mixed"]
HEAD = HIDDEN * len(LABELS) + len(LABELS)  # classifier weight + bias


def trainable(model) -> dict[str, int]:
    return {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}


def batch():
    torch.manual_seed(0)
    return {"input_ids": torch.randint(1000, 3000, (3, 7)),
            "attention_mask": torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4])}


@pytest.mark.parametrize(
    ("targets", "r", "per_layer"),
    [
        # query and value are HIDDEN → HIDDEN: r·(in + out) each
        (("query", "value"), 4, 2 * (HIDDEN + HIDDEN)),
        (("query", "value"), 16, 2 * (HIDDEN + HIDDEN)),
        # dense: attention.output (H→H), intermediate (H→I), output (I→H); plus the pooler's dense (H→H), once
        (("key", "dense"), 2,
         (HIDDEN + HIDDEN) + (HIDDEN + HIDDEN) + (HIDDEN + INTERMEDIATE) + (INTERMEDIATE + HIDDEN)),
    ],
)
def test_only_adapters_and_head_are_trainable(tiny_teacher, targets, r, per_layer):
    model = build_lora_model(str(tiny_teacher), LABELS, LoraConfig(r=r, alpha=2 * r, target_modules=targets,
                                                                    modules_to_save=()))
    params = trainable(model)
    for name in params:
        assert ".lora_" in name or ".classifier.modules_to_save." in name, f"unexpected trainable parameter {name}"
    lora = sum(n for name, n in params.items() if ".lora_" in name)
    head = sum(n for name, n in params.items() if ".classifier.modules_to_save." in name)
    pooler = r * (HIDDEN + HIDDEN) if "dense" in targets else 0
    assert lora == r * per_layer * LAYERS + pooler
    assert head == HEAD
    assert sum(params.values()) == r * per_layer * LAYERS + pooler + HEAD
    # Everything else (embeddings, the pretrained encoder weights) is frozen.
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    assert any("word_embeddings" in name for name in frozen)
    assert any(name.endswith(f"{targets[0]}.base_layer.weight") for name in frozen)
    assert any(name.endswith("attention.output.LayerNorm.weight") for name in frozen)


def test_unknown_target_module_names_the_available_ones(tiny_teacher):
    with pytest.raises(ValueError, match=r"LoRA target 'nope' matches no module .*: classifier, dense, key, query"):
        build_lora_model(str(tiny_teacher), LABELS, LoraConfig(target_modules=("nope",)))


def test_merged_saved_model_predicts_like_the_peft_model(tiny_teacher, tmp_path):
    model = build_lora_model(str(tiny_teacher), LABELS, LoraConfig(r=4, alpha=8, dropout=0.1))
    # LoRA's B starts at zero (a no-op): give adapters and head trained-looking values so merging matters.
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.5)
    model.eval()
    inputs = batch()
    with torch.no_grad():
        peft_logits = model(**inputs).logits.clone()
        with model.disable_adapter():
            base_logits = model(**inputs).logits.clone()
    assert not torch.allclose(peft_logits, base_logits, atol=1e-3), "the adapters must change the predictions"

    save_lora(model, tmp_path)
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(merged).__name__ == "BertForSequenceClassification"
    assert not any("lora" in name or "modules_to_save" in name for name, _ in merged.named_parameters())
    assert merged.config.id2label == dict(enumerate(LABELS))
    with torch.no_grad():
        merged_logits = merged(**inputs).logits
    torch.testing.assert_close(merged_logits, peft_logits, atol=1e-5, rtol=1e-4)


def test_run_lora_adapter_and_merged_model_agree(tiny_run, tiny_teacher):
    """In a finished run, the saved adapter on the pretrained model predicts what the merged ``lora/`` model does."""
    from peft import PeftModel

    from distilora.models.pretrained import load_pretrained_classifier

    merged = AutoModelForSequenceClassification.from_pretrained(tiny_run / "lora").eval()
    labels = [merged.config.id2label[i] for i in range(merged.config.num_labels)]
    base = load_pretrained_classifier(str(tiny_teacher), labels)
    adapted = PeftModel.from_pretrained(base, tiny_run / "lora" / "adapter").eval()
    inputs = batch()
    with torch.no_grad():
        torch.testing.assert_close(merged(**inputs).logits, adapted(**inputs).logits, atol=1e-5, rtol=1e-4)
    # the pretrained encoder was frozen: merging changed the query / value weights, and the pooler trained in full
    teacher_base = AutoModelForSequenceClassification.from_pretrained(tiny_teacher)
    base_state, merged_state = teacher_base.state_dict(), merged.state_dict()
    changed = {k for k in base_state
               if not k.startswith("classifier.") and not torch.equal(base_state[k], merged_state[k])}
    assert changed, "LoRA training changed nothing"
    assert all(k.endswith(("query.weight", "value.weight")) or k.startswith("bert.pooler.") for k in changed), changed
    assert any(k.startswith("bert.pooler.") for k in changed)
