"""LoRA adapters (PEFT) on the full-depth pretrained model."""

from __future__ import annotations

from peft import LoraConfig, PeftModel, TaskType, get_peft_model

from distilora.config import LoraSettings
from distilora.models.pretrained import load_pretrained_classifier


def build_lora_model(checkpoint: str, labels: list[str], settings: LoraSettings) -> PeftModel:
    """Wrap the *pretrained* checkpoint with LoRA; the classification head trains alongside (``modules_to_save``)."""
    base = load_pretrained_classifier(checkpoint, labels)
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
    )
    try:
        return get_peft_model(base, config)
    except ValueError as error:
        names = sorted({name.rsplit(".", 1)[-1] for name, _ in base.named_modules() if name})
        raise ValueError(
            f"LoRA target modules {list(settings.target_modules)}: {error}. Module names: {names}"
        ) from error
