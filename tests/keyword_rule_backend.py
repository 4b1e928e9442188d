"""A backend added in one module, as a user would write one: a rule that calls a text ``toxic`` when one of its token
windows holds a keyword, for directories holding ``keyword_rule.json``. Its texts are read by a real tokenizer (the
keyword model's), so long texts go through the same windows as every model's; importing the module registers it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from distilora.artifacts import write_manifest
from distilora.inference import Classifier, LoadOptions, register_backend

BACKEND = "keyword-rule"
RULE_FILE = "keyword_rule.json"
LOGITS_FILE = "rule.safetensors"


class KeywordRuleClassifier(Classifier):
    """Row 1 of ``logits`` for a window that holds the keyword's token, row 0 for one that does not."""

    backend = BACKEND

    def __init__(self, tokenizer: PreTrainedTokenizerBase, keyword: str, labels: list[str], logits: np.ndarray,
                 name: str = "model"):
        super().__init__(labels, name=name, tokenizer=tokenizer)
        self.keyword_id = tokenizer.convert_tokens_to_ids(keyword)
        self.table = logits

    def forward(self, rows: list[dict[str, list[int]]]) -> np.ndarray:
        held = np.array([self.keyword_id in row["input_ids"] for row in rows], dtype=np.int64)
        return self.table[held]

    @classmethod
    def from_directory(cls, directory: Path, options: LoadOptions) -> KeywordRuleClassifier:
        rule = json.loads((directory / RULE_FILE).read_text())
        return cls(AutoTokenizer.from_pretrained(directory), rule["keyword"], rule["labels"],
                   load_file(str(directory / LOGITS_FILE))["logits"], name=options.name)


def save_rule(directory: Path, tokenizer_source: Path, keyword: str, labels: list[str]) -> Path:
    """A finished rule directory: the rule, its logits, the tokenizer and a distilora manifest."""
    directory.mkdir(parents=True)
    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(directory)
    (directory / RULE_FILE).write_text(json.dumps({"keyword": keyword, "labels": labels}))
    save_file({"logits": np.array([[2.0, -2.0], [-2.0, 2.0]], dtype=np.float32)}, str(directory / LOGITS_FILE))
    write_manifest(directory, {"name": directory.name})
    return directory


register_backend(BACKEND, lambda directory: (directory / RULE_FILE).is_file(), KeywordRuleClassifier.from_directory)
