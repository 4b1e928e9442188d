"""The distillation loss equals a hand computation with explicit formulas (no torch loss functions)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from distilora.config import DistillationConfig
from distilora.training.losses import (
    TEACHER_CLS,
    TEACHER_LOGITS,
    CrossEntropyObjective,
    DistillationObjective,
    distillation_loss,
)

STUDENT_LOGITS = [[1.0, -0.5, 0.2], [0.3, 0.8, -1.2], [-2.0, 0.5, 1.5]]
TEACHER_LOGITS_ = [[2.5, -1.0, 0.0], [0.1, 1.9, -0.4], [-1.0, -0.2, 3.0]]
LABELS = [0, 2, 1]
STUDENT_CLS = [[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0], [-0.3, 0.2, 0.9, -1.5]]
TEACHER_CLS_ = [[1.0, -0.5, 1.5, 0.5], [-1.0, 2.0, 0.5, 1.0], [0.3, -0.2, -0.9, 1.5]]


# ---- by hand: plain Python floats, textbook formulas ----------------------------------------------------------------

def softmax(row: list[float], temperature: float = 1.0) -> list[float]:
    exps = [math.exp(v / temperature) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def hand_ce(logits, labels) -> float:
    return sum(-math.log(softmax(row)[y]) for row, y in zip(logits, labels, strict=True)) / len(labels)


def hand_kd(student, teacher, temperature) -> float:
    """T² · mean over the batch of KL(p_t ‖ p_s) = Σ p_t · (log p_t − log p_s)."""
    total = 0.0
    for s_row, t_row in zip(student, teacher, strict=True):
        p_s, p_t = softmax(s_row, temperature), softmax(t_row, temperature)
        total += sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s, strict=True))
    return temperature**2 * total / len(student)


def hand_cos(student, teacher) -> float:
    """mean over the batch of 1 − (h_t · h_s) / (|h_t| |h_s|)."""
    total = 0.0
    for s, t in zip(student, teacher, strict=True):
        dot = sum(a * b for a, b in zip(s, t, strict=True))
        total += 1 - dot / (math.sqrt(sum(a * a for a in s)) * math.sqrt(sum(b * b for b in t)))
    return total / len(student)


def computed(config: DistillationConfig) -> dict[str, float]:
    out = distillation_loss(torch.tensor(STUDENT_LOGITS), torch.tensor(TEACHER_LOGITS_), torch.tensor(LABELS),
                            torch.tensor(STUDENT_CLS), torch.tensor(TEACHER_CLS_), config)
    assert set(out) == {"loss", "ce", "kd", "cos"}
    assert all(v.dim() == 0 for v in out.values()), "every component is a batch-averaged scalar"
    return {k: float(v) for k, v in out.items()}


@pytest.mark.parametrize(
    ("w_ce", "w_kd", "w_cos", "temperature"),
    [
        (1 / 3, 1 / 3, 1 / 3, 2.0),  # the defaults
        (0.5, 0.3, 0.2, 4.0),
        (0.1, 2.0, 0.7, 1.0),
        (0.0, 1.0, 0.0, 3.5),
        (1.0, 0.0, 0.0, 2.0),
        (0.0, 0.0, 1.0, 0.5),
    ],
)
def test_distillation_loss_matches_hand_computation(w_ce, w_kd, w_cos, temperature):
    config = DistillationConfig(w_ce=w_ce, w_kd=w_kd, w_cos=w_cos, temperature=temperature)
    got = computed(config)
    ce = hand_ce(STUDENT_LOGITS, LABELS)
    kd = hand_kd(STUDENT_LOGITS, TEACHER_LOGITS_, temperature)
    cos = hand_cos(STUDENT_CLS, TEACHER_CLS_)
    assert got["ce"] == pytest.approx(ce, rel=1e-5)
    assert got["kd"] == pytest.approx(kd, rel=1e-5)
    assert got["cos"] == pytest.approx(cos, rel=1e-5)
    assert got["loss"] == pytest.approx(w_ce * ce + w_kd * kd + w_cos * cos, rel=1e-5, abs=1e-7)


def test_defaults_are_equal_weights_and_temperature_two():
    config = DistillationConfig()
    assert (config.w_ce, config.w_kd, config.w_cos, config.temperature) == pytest.approx((1 / 3, 1 / 3, 1 / 3, 2.0))


def test_hand_example_is_discriminating():
    """The fixed tensors tell the KL direction, the T² factor and the batch mean apart (so the test above can fail)."""
    kl_t_s = hand_kd(STUDENT_LOGITS, TEACHER_LOGITS_, 2.0)
    kl_s_t = hand_kd(TEACHER_LOGITS_, STUDENT_LOGITS, 2.0)
    assert abs(kl_t_s - kl_s_t) > 1e-2
    got = computed(DistillationConfig(temperature=2.0))["kd"]
    assert got != pytest.approx(kl_s_t, rel=1e-3)
    assert got != pytest.approx(kl_t_s / 4, rel=1e-3)  # without T²
    assert got != pytest.approx(kl_t_s * 3, rel=1e-3)  # summed instead of averaged over the batch


def test_identical_student_and_teacher_give_zero_kd_and_cos():
    logits = torch.tensor(TEACHER_LOGITS_)
    cls = torch.tensor(TEACHER_CLS_)
    out = distillation_loss(logits, logits, torch.tensor(LABELS), 3 * cls, cls, DistillationConfig(temperature=3.0))
    assert float(out["kd"]) == pytest.approx(0.0, abs=1e-6)
    assert float(out["cos"]) == pytest.approx(0.0, abs=1e-6)  # cosine ignores the norm
    assert float(out["loss"]) == pytest.approx(hand_ce(TEACHER_LOGITS_, LABELS) / 3, rel=1e-5)


def test_gradients_flow_to_the_student_only():
    student_logits = torch.tensor(STUDENT_LOGITS, requires_grad=True)
    student_cls = torch.tensor(STUDENT_CLS, requires_grad=True)
    out = distillation_loss(student_logits, torch.tensor(TEACHER_LOGITS_), torch.tensor(LABELS), student_cls,
                            torch.tensor(TEACHER_CLS_), DistillationConfig())
    out["loss"].backward()
    assert student_logits.grad is not None and student_logits.grad.abs().sum() > 0
    assert student_cls.grad is not None and student_cls.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs",
    [dict(w_ce=-0.1), dict(w_ce=0, w_kd=0, w_cos=0), dict(temperature=0), dict(temperature=-1.0)],
)
def test_invalid_distillation_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        DistillationConfig(**kwargs)


def fake_outputs():
    """What a BERT forward with ``output_hidden_states=True`` returns: logits and (batch, seq, hidden) states."""
    hidden = torch.zeros(3, 5, 4)
    hidden[:, 0] = torch.tensor(STUDENT_CLS)  # [CLS] is position 0 of the *last* hidden state
    hidden[:, 1:] = 7.0
    first_layer = torch.randn(3, 5, 4)
    return SimpleNamespace(logits=torch.tensor(STUDENT_LOGITS), hidden_states=(first_layer, hidden))


def test_distillation_objective_uses_final_cls_state():
    config = DistillationConfig(w_ce=0.2, w_kd=0.5, w_cos=0.3, temperature=3.0)
    teacher = {TEACHER_LOGITS: torch.tensor(TEACHER_LOGITS_), TEACHER_CLS: torch.tensor(TEACHER_CLS_)}
    out = DistillationObjective(config)(fake_outputs(), torch.tensor(LABELS), teacher)
    assert float(out["cos"]) == pytest.approx(hand_cos(STUDENT_CLS, TEACHER_CLS_), rel=1e-5)
    assert float(out["loss"]) == pytest.approx(computed(config)["loss"], rel=1e-6)


def test_objectives_without_teacher_targets_are_cross_entropy():
    """Validation batches carry no teacher targets: every model's validation loss is the same plain CE."""
    ce = hand_ce(STUDENT_LOGITS, LABELS)
    distil = DistillationObjective(DistillationConfig())(fake_outputs(), torch.tensor(LABELS), {})
    plain = CrossEntropyObjective()(fake_outputs(), torch.tensor(LABELS), {})
    assert set(distil) == set(plain) == {"loss"}
    assert float(distil["loss"]) == pytest.approx(ce, rel=1e-6)
    assert float(plain["loss"]) == pytest.approx(ce, rel=1e-6)
