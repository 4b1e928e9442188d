"""What the routes besides teacher / odd / even / LoRA are made of: importance-based layer choice, the no-teacher
ablation, intermediate-layer matching, LoRA variants, hybrids, text baselines, class weights and the collapse flag."""

from __future__ import annotations

import json

import numpy as np
import peft
import pytest
import torch
from conftest import tiny_experiment_config
from transformers import AutoModelForSequenceClassification

from distilora.config import DistillationConfig, LoraConfig, TfidfConfig, TrainConfig
from distilora.evaluation.collapse import collapse_check
from distilora.models.layer_selection import greedy_layer_elimination
from distilora.models.students import build_student
from distilora.models.text_baselines import TextBaseline, fit_majority, fit_tfidf
from distilora.routes.lora import build_lora_model
from distilora.training.losses import (
    TEACHER_CLS,
    TEACHER_LAYER_CLS,
    TEACHER_LOGITS,
    CrossEntropyObjective,
    DistillationObjective,
    hidden_matching_loss,
)

LABELS = ["neutral", "toxic"]


# ---- importance-based layer selection ----------------------------------------------------------------------------
def test_greedy_elimination_removes_the_cheapest_layer_each_step():
    cost = {1: 5.0, 2: 0.1, 3: 3.0, 4: 0.2, 5: 1.0, 6: 4.0}  # what removing each layer costs, by construction

    def score(kept):
        return sum(cost[n] for n in cost if n not in kept), 1.0

    chosen, steps = greedy_layer_elimination(6, 3, score)
    assert chosen == [1, 3, 6]
    assert [s["removed"] for s in steps] == [2, 4, 5]
    assert [len(s["candidates"]) for s in steps] == [6, 5, 4]
    assert steps[1]["kept"] == [1, 3, 4, 5, 6]
    # Ties on loss go to the higher macro-F1.
    tie = greedy_layer_elimination(3, 2, lambda kept: (0.0, 1.0 if kept == [1, 2] else 0.5))[0]
    assert tie == [1, 2]


def _identity_layer(layer) -> None:
    """Zero the attention-output and FFN-output projections: the layer then passes its (already normalised) input
    through its two LayerNorms unchanged."""
    with torch.no_grad():
        for linear in (layer.attention.output.dense, layer.output.dense):
            linear.weight.zero_()
            linear.bias.zero_()


def test_importance_keeps_the_layers_that_matter_on_a_teacher_built_to_know_the_answer(tiny_teacher):
    """Layers 2 and 4 of a 4-layer teacher are identities: removing them changes nothing, so they go first
    (scored against the teacher's own output, which no other change can match)."""
    torch.manual_seed(0)
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher, num_labels=2).eval()
    with torch.no_grad():
        teacher.classifier.weight.mul_(500)  # a head that reacts to its [CLS] state (random init is near-flat)
    for index in (1, 3):
        _identity_layer(teacher.bert.encoder.layer[index])
    ids = torch.randint(1000, 5000, (64, 12))
    with torch.no_grad():
        target = torch.softmax(teacher(input_ids=ids).logits, -1)

    def score(kept):
        """Cross-entropy against the teacher's own distribution: smallest exactly where the output is unchanged."""
        with torch.no_grad():
            logits = build_student(teacher, kept).eval()(input_ids=ids).logits
        return float(-(target * torch.log_softmax(logits, -1)).sum(-1).mean()), 0.0

    full_loss = score([1, 2, 3, 4])[0]
    chosen, steps = greedy_layer_elimination(4, 2, score)
    assert chosen == [1, 3]
    assert sorted(s["removed"] for s in steps) == [2, 4]
    first = {c["layer"]: c["loss"] for c in steps[0]["candidates"]}
    assert first[2] == pytest.approx(full_loss, abs=5e-5) and first[4] == pytest.approx(full_loss, abs=5e-5)
    assert min(first[1], first[3]) > full_loss + 1e-6


# ---- losses -------------------------------------------------------------------------------------------------------
def test_hidden_matching_loss_against_a_hand_computation():
    torch.manual_seed(0)
    student = [torch.randn(3, 5) for _ in range(3)]  # embeddings + 2 layers
    teacher = torch.randn(3, 5, 5)  # embeddings + 4 layers
    layer_map = [2, 4]
    hand = []
    for j, t_layer in enumerate(layer_map, start=1):
        per_example = []
        for b in range(3):
            s = student[j][b].numpy() / np.linalg.norm(student[j][b].numpy())
            t = teacher[b, t_layer].numpy() / np.linalg.norm(teacher[b, t_layer].numpy())
            per_example.append(((s - t) ** 2).sum())
        hand.append(np.mean(per_example))
    assert float(hidden_matching_loss(student, teacher, layer_map)) == pytest.approx(np.mean(hand), rel=1e-5)


def test_w_hidden_adds_its_term_and_is_logged_as_its_own_component():
    torch.manual_seed(1)

    class Out:
        logits = torch.randn(4, 2)
        hidden_states = tuple(torch.randn(4, 6, 8) for _ in range(3))

    teacher = {TEACHER_LOGITS: torch.randn(4, 2), TEACHER_LAYER_CLS: torch.randn(4, 5, 8)}
    teacher[TEACHER_CLS] = teacher[TEACHER_LAYER_CLS][:, -1]
    labels = torch.tensor([0, 1, 1, 0])
    plain = DistillationObjective(DistillationConfig())(Out, labels, teacher)
    with_hidden = DistillationObjective(DistillationConfig(w_hidden=2.0), [1, 3])(Out, labels, teacher)
    expected = hidden_matching_loss([h[:, 0] for h in Out.hidden_states], teacher[TEACHER_LAYER_CLS], [1, 3])
    assert "hidden" not in plain and float(with_hidden["hidden"]) == pytest.approx(float(expected))
    assert float(with_hidden["loss"]) == pytest.approx(float(plain["loss"]) + 2.0 * float(expected), rel=1e-6)
    with pytest.raises(ValueError, match="needs the map"):
        DistillationObjective(DistillationConfig(w_hidden=1.0))


def test_class_weights_weight_the_cross_entropy_of_every_objective():
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), torch.tensor([0, 1, 1])
    weights = torch.tensor([0.25, 3.0])
    log_p = torch.log_softmax(logits, -1)[torch.arange(3), labels]
    hand = float(-(weights[labels] * log_p).sum() / weights[labels].sum())

    class Out:
        pass

    Out.logits = logits
    assert float(CrossEntropyObjective(weights)(Out, labels, {})["loss"]) == pytest.approx(hand, rel=1e-6)
    # Distillation falls back to the same weighted CE where no teacher targets are in the batch (validation).
    distil = DistillationObjective(DistillationConfig(), class_weights=weights)(Out, labels, {})
    assert float(distil["loss"]) == pytest.approx(hand, rel=1e-6)


# ---- collapse -----------------------------------------------------------------------------------------------------
def test_a_model_that_answers_one_class_or_no_better_than_the_majority_is_flagged():
    y_true, y_train = [0] * 9 + [1], [0] * 8 + [1] * 2
    one_class = collapse_check(y_true, [0] * 10, y_train, LABELS, 0.98)
    assert one_class["collapsed"] and one_class["top_class_share"] == 1.0 and len(one_class["reasons"]) == 2
    assert "answers 'neutral' for 100.0% of validation" in one_class["reasons"][0]
    learned = collapse_check(y_true, [0] * 8 + [1, 1], y_train, LABELS, 0.98)
    assert not learned["collapsed"] and learned["reasons"] == []
    worse = collapse_check(y_true, [1] + [0] * 8 + [0], y_train, LABELS, 0.98)
    assert worse["collapsed"] and "not above the majority baseline" in worse["reasons"][0]


# ---- text baselines ----------------------------------------------------------------------------------------------
def test_tfidf_chooses_c_on_validation_and_reloads_to_the_same_scores(tmp_path):
    train = (["you are awful", "lovely day", "awful awful people", "nice and lovely"] * 5, [1, 0, 1, 0] * 5)
    validation = (["awful", "lovely", "so awful", "so lovely"], [1, 0, 1, 0])
    model, search = fit_tfidf(LABELS, train, validation, TfidfConfig(c_grid=(0.01, 10.0)))
    assert set(search["validation_macro_f1_by_C"]) == {"0.01", "10.0"}
    assert search["C"] == max((0.01, 10.0), key=lambda c: (search["validation_macro_f1_by_C"][str(c)], -c))
    assert model.logits(validation[0]).argmax(1).tolist() == [1, 0, 1, 0]
    model.save(tmp_path / "tfidf")
    assert sorted(p.name for p in (tmp_path / "tfidf").iterdir()) == ["config.json", "model.safetensors", "vocab.json"]
    again = TextBaseline.load(tmp_path / "tfidf")
    np.testing.assert_allclose(again.logits(["awful day", "nice"]), model.logits(["awful day", "nice"]), rtol=1e-6)


def test_majority_answers_the_most_frequent_training_class():
    model = fit_majority(LABELS, [1, 1, 0])
    assert model.logits(["anything", "at all"]).argmax(1).tolist() == [1, 1]
    assert np.exp(model.logits(["x"])[0]).tolist() == pytest.approx([1 / 3, 2 / 3])


# ---- LoRA variants and hybrids -----------------------------------------------------------------------------------
def test_adalora_reallocates_ranks_during_training(tiny_teacher, tiny_dataset, tmp_path):
    from distilora.data import encode_splits, load_task_data
    from distilora.models import load_tokenizer
    from distilora.routes.lora import AdaLoraRankAllocation
    from distilora.training.trainer import num_training_steps, train_model

    data = load_task_data(tiny_experiment_config(tiny_dataset, tiny_teacher, tmp_path).data)
    tokenizer = load_tokenizer(str(tiny_teacher))
    encoded = encode_splits(data.splits, tokenizer, 32)
    training = TrainConfig(epochs=4, learning_rate=1e-2, batch_size=8, eval_batch_size=32, logging_steps=4)
    steps = num_training_steps(training, len(encoded["train"]))
    model = build_lora_model(str(tiny_teacher), data.labels, LoraConfig(r=8, adalora_target_r=2), "adalora", steps)
    config = model.peft_config["default"]
    assert isinstance(config, peft.AdaLoraConfig) and config.total_step == steps and config.rank_pattern is None
    train_model(model, tokenizer, encoded["train"], encoded["validation"], CrossEntropyObjective(), training,
                tmp_path / "work", 0, data.labels, callbacks=[AdaLoraRankAllocation(model)], restore_best=False)
    pattern = model.peft_config["default"].rank_pattern
    assert pattern, "update_and_allocate never set a rank pattern"
    ranks = [int(np.sum(mask)) for mask in pattern.values()]
    assert min(ranks) < 8, f"no adapter lost rank: {ranks}"
    assert sum(ranks) <= 2 * len(ranks) + 1e-9, "the final budget is target_r per adapter on average"


def test_pissa_saves_the_merged_model_that_predicts_like_the_trained_one(tiny_teacher, tmp_path):
    from distilora.config import ExperimentConfig
    from distilora.routes import RouteSetup, create_route

    route = create_route("lora-pissa", RouteSetup(4, 2))

    class Ctx:
        config = ExperimentConfig(lora=LoraConfig(r=4))
        checkpoint = str(tiny_teacher)
        labels = LABELS
        multi_label = False
        encoded = {"train": list(range(16))}

    torch.manual_seed(0)
    model = route.build(Ctx)
    with torch.no_grad():  # stand-in for training: move the adapters away from their initialisation
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.add_(0.05 * torch.randn_like(param))
    ids = torch.randint(1000, 5000, (2, 9))
    with torch.no_grad():
        trained = model.eval()(input_ids=ids).logits
    route.save(model, tmp_path / "pissa")
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "pissa").eval()
    assert not (tmp_path / "pissa" / "adapter").exists(), "a PiSSA adapter does not apply to the original weights"
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, trained, atol=1e-4, rtol=1e-4)


def test_lora_trains_the_pooler_by_default_and_odd_lora_only_adapters_and_head(tiny_teacher):
    model = build_lora_model(str(tiny_teacher), LABELS, LoraConfig())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("pooler" in n for n in trainable) and any("classifier" in n for n in trainable)
    assert all("lora_" in n or "pooler" in n or "classifier" in n for n in trainable)

    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher, num_labels=2)
    from distilora.routes.lora import wrap_with_lora

    student = wrap_with_lora(build_student(teacher, [1, 3]), LoraConfig(modules_to_save=()))
    trainable = {n: p.numel() for n, p in student.named_parameters() if p.requires_grad}
    adapters = sum(v for n, v in trainable.items() if "lora_" in n)
    assert adapters == 2 * 2 * 16 * (32 + 32)  # 2 layers × (query, value) × r·(in + out)
    assert sum(trainable.values()) == adapters + 32 * 2 + 2  # + the head


# ---- end to end on the tiny teacher --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_run(tmp_path_factory, tiny_teacher, tiny_dataset):
    """The default group (teacher, odd, even, lora, odd-no-kd, tfidf, majority) on the tiny teacher."""
    from distilora import run_experiment

    output = tmp_path_factory.mktemp("default-run") / "run"
    run_experiment(tiny_experiment_config(tiny_dataset, tiny_teacher, output, measure_speed=True))
    return output


def test_the_default_group_trains_the_ablation_and_baselines_beside_the_students(default_run):
    from distilora.inference import load_classifier
    from distilora.serve import ModelRegistry

    results = json.loads((default_run / "results.json").read_text())
    models = results["models"]
    assert list(models) == ["teacher", "odd", "even", "lora", "odd-no-kd", "tfidf", "majority"]
    # The ablation starts from the odd student's exact layers and trains on the labels alone: no teacher term.
    assert models["odd-no-kd"]["layers"] == models["odd"]["layers"] and models["odd-no-kd"]["ablation_of"] == "odd"
    logged = [h for h in models["odd-no-kd"]["history"] if "loss" in h]
    assert logged and not any(k.startswith("loss_") for h in logged for k in h)
    assert any("loss_kd" in h for h in models["odd"]["history"])
    assert (models["tfidf"]["num_layers"], models["tfidf"]["history"]) == (0, [])
    assert "validation_macro_f1_by_C" in models["tfidf"]["tfidf_search"]
    assert models["majority"]["collapse"] is None
    assert all(isinstance(models[n]["collapse"]["collapsed"], bool) for n in models if n != "majority")
    assert all(models[n]["description"] for n in models)
    assert set(results["speed"]["models"]) == set(models)
    tfidf = load_classifier(default_run, "tfidf")
    texts = ["you are awful", "what a lovely day"]
    assert [p.label for p in tfidf.predict(texts, calibrated=False)] == [tfidf.labels[i]
                                                                         for i in tfidf.logits(texts).argmax(1)]
    # Calibrated: the tuned threshold on the temperature-scaled scores, the same path as the transformer models.
    assert tfidf.calibration is not None
    decided = tfidf.calibration.decide(tfidf.calibration.probabilities(tfidf.logits(texts)))
    assert [p.label for p in tfidf.predict(texts)] == [tfidf.labels[i] for i in decided]
    registry = ModelRegistry.load(default_run)
    assert {"tfidf", "majority", "odd-no-kd"} <= set(registry.names)


def test_importance_and_hybrids_run_end_to_end_and_a_rerun_restores_the_chosen_layers(tiny_teacher, tiny_dataset,
                                                                                       tmp_path):
    from distilora import run_experiment

    config = tiny_experiment_config(tiny_dataset, tiny_teacher, tmp_path / "run", report=False,
                                    routes=("importance", "odd-lora", "lora-kd"), student_depth=2)
    config.distillation.w_hidden = 1.0
    results = run_experiment(config)
    importance = results["models"]["importance"]
    assert importance["layers"] == importance["importance"]["chosen"] and len(importance["layers"]) == 2
    assert [len(s["candidates"]) for s in importance["importance"]["steps"]] == [4, 3]
    assert any("loss_hidden" in h for h in importance["history"])
    assert any("loss_hidden" in h for h in results["models"]["lora-kd"]["history"])
    odd_lora = results["models"]["odd-lora"]
    assert (odd_lora["route"], odd_lora["layers"]) == ("hybrid", [1, 3])
    assert odd_lora["trainable_params"] < results["models"]["lora-kd"]["trainable_params"]
    assert (tmp_path / "run" / "odd-lora" / "adapter" / "adapter_config.json").is_file()
    again = run_experiment(config)
    assert again["reused_stages"] == ["teacher", "importance", "odd-lora", "lora-kd"]
    assert again["models"]["importance"]["layers"] == importance["layers"]
