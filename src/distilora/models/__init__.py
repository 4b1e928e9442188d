"""Models: the pretrained teacher, layer-selected students, and LoRA."""

from distilora.models.lora import build_lora_model
from distilora.models.pretrained import load_pretrained_classifier, load_tokenizer, resolve_checkpoint
from distilora.models.students import build_student, parse_layer_spec, student_name

__all__ = [
    "build_lora_model",
    "build_student",
    "load_pretrained_classifier",
    "load_tokenizer",
    "parse_layer_spec",
    "resolve_checkpoint",
    "student_name",
]
