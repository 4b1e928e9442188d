"""Models: load the pretrained checkpoint, and build layer-selected students from a fine-tuned teacher."""

from distilora.models.architectures import lora_target_modules
from distilora.models.pretrained import load_pretrained_classifier, load_tokenizer, resolve_checkpoint
from distilora.models.students import LayerSpecError, build_student, parse_layer_spec, student_name

__all__ = [
    "LayerSpecError",
    "build_student",
    "load_pretrained_classifier",
    "load_tokenizer",
    "lora_target_modules",
    "parse_layer_spec",
    "resolve_checkpoint",
    "student_name",
]
